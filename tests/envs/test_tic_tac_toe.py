"""TicTacToe-specific properties: the minimax oracle, the parser, results and reward terms, the knobs."""

from __future__ import annotations

from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

from textgym.envs.base import InvalidAction
from textgym.envs.tic_tac_toe import AGENT, CELLS, EMPTY, OPPONENT, best_cells, negamax, parse_cell

ENV_ID = "textgym/TicTacToe-v0"


def play(env: gym.Env, seed: int, policy: str, rng: np.random.Generator | None = None) -> list[tuple]:
    """One episode of the oracle or of random valid actions, as (action, observation, reward, info) steps."""
    _, info = env.reset(seed=seed)
    steps = []
    while True:
        if policy == "oracle":
            action = env.unwrapped.oracle_action()
        else:
            action = str(rng.choice(info["valid_actions"]))
        observation, reward, terminated, truncated, info = env.step(action)
        steps.append((action, observation, reward, info))
        if terminated or truncated:
            return steps


def outcomes(policy: str, episodes: int = 200, **kwargs: object) -> Counter:
    env = gym.make(ENV_ID, **kwargs)
    rng = np.random.default_rng(0)
    return Counter(play(env, seed, policy, rng)[-1][3]["outcome"] for seed in range(episodes))


def test_oracle_beats_random_opponent() -> None:
    assert outcomes("oracle", 300) == {"win": 300}  # measured 0.999 over 1000 seeds
    second = outcomes("oracle", 300, first_player="opponent")
    assert second["loss"] == 0 and second["win"] >= 0.75 * 300  # measured 0.81-0.83


def test_oracle_draws_against_minimax() -> None:
    for first in ["agent", "opponent"]:
        assert outcomes("oracle", first_player=first, opponent="minimax") == {"draw": 200}


def test_random_policy_does_clearly_worse() -> None:
    versus_random = outcomes("random", 300)
    assert 0.4 <= versus_random["win"] / 300 <= 0.75 and versus_random["loss"] > 0  # measured 0.58
    assert outcomes("random", opponent="minimax")["win"] == 0  # a perfect opponent never loses


def test_epsilon_makes_minimax_beatable() -> None:
    assert outcomes("oracle", opponent="minimax", opponent_epsilon=0.5)["win"] > 20


@pytest.mark.parametrize("text", ["b2", "B2", " b2 ", "b 2", "\tB2\n"])
def test_parse_cell_accepts_case_and_whitespace(text: str) -> None:
    assert parse_cell(text) == 4


def test_parse_cell_corners() -> None:
    assert [parse_cell(name) for name in ["a1", "c1", "a3", "c3"]] == [0, 2, 6, 8]


@pytest.mark.parametrize("text", ["", "b", "b22", "d1", "a4", "a0", "centre", "b2!"])
def test_parse_cell_rejects_near_misses(text: str) -> None:
    with pytest.raises(InvalidAction, match="column letter a-c"):
        parse_cell(text)


def test_parse_cell_hints_at_swapped_order() -> None:
    with pytest.raises(InvalidAction, match="column letter first, as in b3"):
        parse_cell("3B")


def test_occupied_cell_is_inadmissible() -> None:
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    observation, *_, info = env.step("b2")
    taken = next(cell for cell in CELLS if cell != "b2" and cell not in info["valid_actions"])
    board = env.unwrapped.board
    for cell, owner in [("b2", "X"), (taken, "O")]:
        observation, reward, terminated, _, info = env.step(cell)
        assert f"{cell} is taken by {owner}" in observation
        assert info["reward_terms"]["invalid_action"] == -0.1 and not terminated
    assert env.unwrapped.board == board  # the opponent did not move either


def test_minimax_values() -> None:
    assert negamax(EMPTY * 9, AGENT) == 0  # perfect play draws
    assert best_cells("XX.OO....", AGENT) == (2,)  # take the win rather than block
    assert best_cells("XX.O.....", OPPONENT) == (2,)  # block the threat
    assert negamax("XX.OO....", OPPONENT) == 5  # O to move wins at once: 4 cells left + 1


def test_result_terms_and_outcome() -> None:
    env = gym.make(ENV_ID, opponent="minimax")
    _, info = env.reset(seed=0)
    assert info["outcome"] is None
    seen = {}
    rng = np.random.default_rng(1)
    for seed in range(40):
        *_, (_, observation, reward, info) = play(env, seed, "random", rng)
        seen[info["outcome"]] = (reward, info["reward_terms"], info["success"], observation.splitlines()[-1])
    assert seen["loss"] == (0.0, {"step": 0.0, "failure": 0.0}, False, "Game over: you lost.")
    assert seen["draw"] == (0.5, {"step": 0.0, "draw": 0.5}, False, "Game over: it is a draw.")
    *_, (_, observation, reward, info) = play(gym.make(ENV_ID), 0, "oracle")
    assert (reward, info["reward_terms"], info["outcome"]) == (1.0, {"step": 0.0, "success": 1.0}, "win")
    assert info["success"]
    assert info["valid_actions"] == []


def test_draw_weight_override() -> None:
    env = gym.make(ENV_ID, opponent="minimax", reward={"draw": 0.0, "failure": -1.0})
    *_, (_, _, reward, info) = play(env, 0, "oracle")
    assert info["outcome"] == "draw" and reward == 0.0


def test_first_player_knob() -> None:
    def opening_marks(**kwargs: object) -> list[int]:
        env = gym.make(ENV_ID, **kwargs)
        return [9 - len(env.reset(seed=seed)[1]["valid_actions"]) for seed in range(20)]

    assert opening_marks() == [0] * 20
    assert opening_marks(first_player="opponent") == [1] * 20
    assert set(opening_marks(first_player="random")) == {0, 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opponent": "perfect"}, r"opponent='perfect' is not supported; use one of \['random', 'minimax'\]"),
        ({"first_player": "me"}, r"first_player='me'.*'agent', 'opponent', 'random'"),
        ({"opponent_epsilon": 1.5}, r"opponent_epsilon=1.5 is a probability"),
    ],
)
def test_bad_kwargs_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make(ENV_ID, **kwargs)


def test_fixed_seed_transcript() -> None:
    steps = play(gym.make(ENV_ID), 0, "oracle")
    assert [action for action, *_ in steps] == ["a1", "c1", "b1"]
    assert steps[0][1].startswith("You marked a1; O replied ")
    assert steps[-1][1] == (
        "You marked b1 and completed a line: you win!\n"
        "   a b c\n1  X X X\n2  . . O\n3  . O .\nGame over: you won."
    )
    assert play(gym.make(ENV_ID), 0, "oracle") == steps
