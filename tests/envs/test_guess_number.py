"""GuessNumber's own properties: binary search always wins, the parser, reward terms and knobs."""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest

from textgym.envs.base import InvalidAction
from textgym.envs.guess_number import GuessNumberEnv

ID = "textgym/GuessNumber-v0"


def play(env: gym.Env, seed: int, choose: Callable[[dict], str]) -> tuple[bool, int]:
    """Play one episode with ``choose(info)``; return success and the number of steps."""
    _, info = env.reset(seed=seed)
    for steps in range(1, 100):
        *_, terminated, truncated, info = env.step(choose(info))
        if terminated or truncated:
            return info["success"], steps
    raise AssertionError("episode did not end")


@pytest.mark.parametrize(("low", "high", "max_guesses"), [(1, 16, 6), (1, 8, 4), (1, 100, 7), (-5, 5, 4)])
def test_binary_search_oracle_always_wins(low: int, high: int, max_guesses: int) -> None:
    env = gym.make(ID, low=low, high=high, max_guesses=max_guesses)
    results = [play(env, seed, lambda info: env.unwrapped.oracle_action()) for seed in range(200)]
    assert all(success for success, _ in results)
    assert max(steps for _, steps in results) <= math.ceil(math.log2(high - low + 2))


def test_random_policy_is_near_chance() -> None:
    """Uniform guesses over the listed whole range win about 1 - (15/16)**6 = 0.32 of the time."""
    env = gym.make(ID)
    rng = np.random.default_rng(0)
    def choose(info: dict) -> str:
        return str(rng.choice(info["valid_actions"]))

    rate = np.mean([play(env, seed, choose)[0] for seed in range(400)])
    assert 0.2 < rate < 0.45


@pytest.mark.parametrize(
    ("text", "number"),
    [("8", 8), (" 8\n", 8), ("guess 8", 8), ("GUESS   12", 12), ("Guess 1", 1), ("016", 16)],
)
def test_parser_accepts(text: str, number: int) -> None:
    assert GuessNumberEnv().parse_action(text) == number


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "whole number"), ("eight", "whole number"), ("8.0", "whole number"), ("guess8", "whole number"),
     ("guess", "whole number"), ("8 9", "whole number"), ("\u0663", "whole number"),
     ("9" * 50, "whole number"),
     ("17", "outside the range 1 to 16"), ("0", "outside"), ("-3", "outside")],
)
def test_parser_rejects_with_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAction, match=reason):
        GuessNumberEnv().parse_action(text)


def test_interval_and_feedback_track_the_secret() -> None:
    env = gym.make(ID, max_guesses=16)
    for seed in range(20):
        _, info = env.reset(seed=seed)
        target = env.unwrapped.target
        for guess in (1, 16, 5, 9):
            observation, *_, terminated, _, info = env.step(str(guess))
            if terminated:
                break
            lo, hi = info["interval"]
            assert lo <= target <= hi
            assert ("higher" if guess < target else "lower") in observation
            assert f"between {lo} and {hi}" in observation or f"is {lo}." in observation


def test_reward_terms() -> None:
    env = gym.make(ID, reward={"ruled_out": -0.2, "failure": -1.0}, max_guesses=3)
    env.reset(seed=0)
    target = env.unwrapped.target  # 14 under seed 0
    below = str(target - 2)
    assert "ruled_out" not in env.step(below)[4]["reward_terms"]
    _, reward, *_, info = env.step(below)  # a repeat is ruled out
    assert info["reward_terms"] == {"step": 0.0, "ruled_out": -0.2} and reward == pytest.approx(-0.2)
    _, reward, terminated, _, info = env.step("guess 1")
    assert terminated and not info["success"] and info["guesses_left"] == 0
    assert info["reward_terms"] == {"step": 0.0, "ruled_out": -0.2, "failure": -1.0}
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(str(target))
    assert terminated and info["success"] and reward == 1.0


def test_invalid_action_uses_no_guess() -> None:
    env = gym.make(ID)
    env.reset(seed=0)
    observation, *_, info = env.step("17")
    assert observation.startswith("Invalid action '17': 17 is outside the range 1 to 16.")
    assert info["guesses_left"] == 6 and info["interval"] == (1, 16)


def test_knobs_change_the_game() -> None:
    env = gym.make(ID, low=10, high=20, max_guesses=1)
    observation, info = env.reset(seed=0)
    assert info["valid_actions"] == [str(n) for n in range(10, 21)]
    assert "from 10 to 20" in info["instructions"] and "at most 1 guess." in info["instructions"]
    assert observation == "The number is between 10 and 20. 1 guess left."
    wrong = "10" if env.unwrapped.target != 10 else "11"
    *_, terminated, _, info = env.step(wrong)
    assert terminated and not info["success"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"low": 5, "high": 5}, "low < high"), ({"max_guesses": 0}, "max_guesses"),
     ({"high": 10**9}, "10\\*\\*8")],
)
def test_bad_kwargs_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GuessNumberEnv(**kwargs)


def test_fixed_seed_transcript() -> None:
    env = gym.make(ID)
    observation, _ = env.reset(seed=0)
    transcript = [observation]
    for _ in range(3):
        transcript.append(env.step(env.unwrapped.oracle_action())[0])
    assert transcript == [
        "The number is between 1 and 16. 6 guesses left.",
        "8 is too low: the number is higher.\nThe number is between 9 and 16. 5 guesses left.",
        "12 is too low: the number is higher.\nThe number is between 13 and 16. 4 guesses left.",
        "14 is correct! You found it in 3 guesses.\nThe game is over. The number was 14.",
    ]
