"""GuessNumber's own properties: binary search always wins, the parser, reward terms, knobs, ground truth."""

from __future__ import annotations

import math
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from episodes import oracle, oracle_observations, play, random_valid, success_rate

from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.envs.base import InvalidAction
from textgym.envs.checker import check_tabular_mdp
from textgym.envs.guess_number import GuessNumberEnv, Knowledge
from textgym.envs.mdp import Objective, solve, start_value
from textgym.policies.oracle import OraclePolicy
from textgym.policies.random import RandomPolicy

ID = "textgym/GuessNumber-v0"


@pytest.mark.parametrize(("low", "high", "max_guesses"), [(1, 16, 6), (1, 8, 4), (1, 100, 7), (-5, 5, 4)])
def test_binary_search_oracle_always_wins(low: int, high: int, max_guesses: int) -> None:
    env = gym.make(ID, low=low, high=high, max_guesses=max_guesses)
    episodes = [play(env, seed, oracle) for seed in range(200)]
    assert all(episode[-1].info["success"] for episode in episodes)
    assert max(len(episode) for episode in episodes) <= math.ceil(math.log2(high - low + 2))


def test_random_policy_is_near_chance() -> None:
    """Uniform guesses over the listed whole range win about 1 - (15/16)**6 = 0.32 of the time."""
    rate = success_rate(gym.make(ID), random_valid(np.random.default_rng(0)), 400)
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


def test_out_of_guesses_reveals_the_number_in_the_feedback() -> None:
    env = gym.make(ID, max_guesses=1)
    _, info = env.reset(seed=0)
    assert info["state"] == Knowledge(1, 16, 1) and env.unwrapped.target == 14
    observation, *_, info = env.step("8")
    assert observation == (
        "8 is too low: the number is higher. You are out of guesses: the number was 14.\nThe game is over."
    )
    assert info["state"] == Knowledge(9, 16, 0)


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
    assert oracle_observations(ID, 0, 3) == [
        "The number is between 1 and 16. 6 guesses left.",
        "8 is too low: the number is higher.\nThe number is between 9 and 16. 5 guesses left.",
        "12 is too low: the number is higher.\nThe number is between 13 and 16. 4 guesses left.",
        "14 is correct! You found it in 3 guesses.\nThe game is over. The number was 14.",
    ]


# ---- ground truth: the exact MDP over what the agent knows ------------------------------------------
@pytest.mark.parametrize("env_id", [ID, "textgym/GuessNumber8-v0"])
def test_tabular_mdp_matches_sampling(env_id: str) -> None:
    check_tabular_mdp(env_id, seed=0)


@pytest.mark.parametrize(
    ("max_guesses", "success"), [(1, 1 / 16), (2, 3 / 16), (3, 7 / 16), (4, 15 / 16), (5, 1.0), (6, 1.0)]
)
def test_optimal_success_is_what_k_guesses_can_cover(max_guesses: int, success: float) -> None:
    """k guesses tell apart at most 2**k - 1 numbers (a binary search tree of depth k)."""
    mdp = GuessNumberEnv(max_guesses=max_guesses).tabular_mdp()
    assert start_value(mdp, solve(mdp, objective=Objective.success)) == pytest.approx(success, abs=1e-12)


def test_uniform_guessing_wins_with_chance_one_in_sixteen_per_guess() -> None:
    mdp = GuessNumberEnv().tabular_mdp()
    uniform = [np.full(len(actions), 1 / len(actions)) if actions else np.zeros(0) for actions in mdp.actions]
    value = start_value(mdp, solve(mdp, horizon=50, objective=Objective.success, policy=uniform))
    assert value == pytest.approx(1 - (15 / 16) ** 6, abs=1e-12)


def test_step_cost_prices_the_expected_number_of_guesses() -> None:
    """The best search tree over 16 numbers has depths 1, 2 x2, 3 x4, 4 x8 and 5: 54/16 guesses on average."""
    assert GroundTruth.of(gym.make(ID)).optimal_return == 1.0
    costly = GroundTruth.of(gym.make(ID, reward={"step": -0.01}))
    assert costly.optimal_return == pytest.approx(1 - 0.01 * 54 / 16, abs=1e-12)


def test_oracle_has_no_regret_and_random_has_some() -> None:
    env_fn = partial(gym.make, ID)
    optimum = GroundTruth.of(env_fn()).optimal_return
    oracle = evaluate(vector_env(env_fn, 8), OraclePolicy(), 200, seed=0, optimal_return=optimum).metrics()
    random = evaluate(vector_env(env_fn, 8), RandomPolicy(seed=1234), 400, seed=0, optimal_return=optimum)
    assert oracle["regret"] == 0.0
    assert random.metrics()["regret"] == pytest.approx((15 / 16) ** 6, abs=0.08)  # 0.679 in expectation
