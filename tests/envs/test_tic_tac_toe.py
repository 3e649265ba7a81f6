"""TicTacToe's own properties: the minimax oracle, the parser, results, reward terms, knobs, ground truth."""

from __future__ import annotations

from collections import Counter
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from episodes import oracle, play, random_valid

from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.ground_truth import GroundTruth
from textgym.envs.base import InvalidAction
from textgym.envs.checker import check_tabular_mdp
from textgym.envs.mdp import Objective, solve, start_value
from textgym.envs.tic_tac_toe import (
    AGENT,
    CELLS,
    EMPTY,
    OPPONENT,
    Opponent,
    TicTacToeEnv,
    best_cells,
    negamax,
    opponent_distribution,
    parse_cell,
)
from textgym.policies.oracle import OraclePolicy
from textgym.policies.random import RandomPolicy

ENV_ID = "textgym/TicTacToe-v0"
COIN_ID = "tests/TicTacToeCoin-v0"
"""Every knob at once, for the ground-truth checks: a coin picks who starts, a minimax opponent that errs."""
gym.register(COIN_ID, entry_point=TicTacToeEnv, max_episode_steps=50,
             kwargs={"opponent": "minimax", "first_player": "random", "opponent_epsilon": 0.3})


def outcomes(policy: str, episodes: int = 200, **kwargs: object) -> Counter:
    env = gym.make(ENV_ID, **kwargs)
    choose = oracle if policy == "oracle" else random_valid(np.random.default_rng(0))
    return Counter(play(env, seed, choose)[-1].info["outcome"] for seed in range(episodes))


def test_oracle_beats_random_opponent() -> None:
    first = outcomes("oracle", 300)
    assert first["loss"] == 0 and first["win"] >= 0.97 * 300  # exactly 191/192 (solved from tabular_mdp)
    second = outcomes("oracle", 300, first_player="opponent")
    assert second["loss"] == 0 and second["win"] >= 0.75 * 300  # exactly 254/315 = 0.806


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
    choose = random_valid(np.random.default_rng(1))
    for seed in range(40):
        _, observation, reward, *_, info = play(env, seed, choose)[-1]
        seen[info["outcome"]] = (reward, info["reward_terms"], info["success"], observation.splitlines()[-1])
    assert seen["loss"] == (0.0, {"step": 0.0, "failure": 0.0}, False, "Game over: you lost.")
    assert seen["draw"] == (0.5, {"step": 0.0, "draw": 0.5}, False, "Game over: it is a draw.")
    _, observation, reward, *_, info = play(gym.make(ENV_ID), 0, oracle)[-1]
    assert (reward, info["reward_terms"], info["outcome"]) == (1.0, {"step": 0.0, "success": 1.0}, "win")
    assert info["success"]
    assert info["valid_actions"] == []


def test_draw_weight_override() -> None:
    env = gym.make(ENV_ID, opponent="minimax", reward={"draw": 0.0, "failure": -1.0})
    _, _, reward, *_, info = play(env, 0, oracle)[-1]
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
    steps = play(gym.make(ENV_ID), 0, oracle)
    assert [step.action for step in steps] == ["a1", "b1", "c1"]
    assert steps[0].observation == (
        "You marked a1; O replied a3.\n   a b c\n1  X . .\n2  . . .\n3  O . .\nYou are X. Your move."
    )
    assert steps[-1].observation == (
        "You marked c1 and completed a line: you win!\n"
        "   a b c\n1  X X X\n2  O . .\n3  O . .\nGame over: you won."
    )
    assert [step.info["state"] for step in steps] == ["X.....O..", "XX.O..O..", "XXXO..O.."]
    assert play(gym.make(ENV_ID), 0, oracle) == steps


# ---- ground truth: the exact MDP against the env's own opponent --------------------------------------
def test_opponent_distribution_mixes_epsilon_into_its_choices() -> None:
    board = "XX.O....."  # O must block at c1 (index 2)
    assert opponent_distribution(board, Opponent.MINIMAX, 0.0) == ((1.0, 2),)
    mixed = dict((cell, prob) for prob, cell in opponent_distribution(board, Opponent.MINIMAX, 0.3))
    assert mixed[2] == pytest.approx(0.7 + 0.3 / 6) and mixed[4] == pytest.approx(0.3 / 6) and len(mixed) == 6
    assert [cell for _, cell in opponent_distribution(board, Opponent.RANDOM, 0.0)] == [2, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("env_id", [ENV_ID, "textgym/TicTacToeMinimax-v0", COIN_ID])
def test_tabular_mdp_matches_sampling(env_id: str) -> None:
    check_tabular_mdp(env_id, seed=0)


def test_start_distribution_matches_resets() -> None:
    env = gym.make(COIN_ID)
    mdp = env.unwrapped.tabular_mdp()
    seen = Counter(env.reset(seed=seed)[1]["state"] for seed in range(4000))
    assert mdp.start[mdp.index(EMPTY * 9)] == 0.5 and mdp.start.sum() == pytest.approx(1.0)
    assert all(mdp.start[mdp.index(board)] > 0 for board in seen)
    assert max(abs(seen[state] / 4000 - p) for state, p in zip(mdp.states, mdp.start)) < 0.03


@pytest.mark.parametrize("first_player", ["agent", "opponent"])
def test_perfect_opponent_leaves_only_a_draw(first_player: str) -> None:
    env = gym.make(ENV_ID, opponent="minimax", first_player=first_player, reward={"draw": 0.3})
    mdp = env.unwrapped.tabular_mdp()
    assert start_value(mdp, solve(mdp, objective=Objective.success)) == 0.0
    assert GroundTruth.of(env).optimal_return == pytest.approx(0.3, abs=1e-12)  # the draw weight


@pytest.mark.parametrize(("first_player", "success"), [("agent", 191 / 192), ("opponent", 887 / 945)])
def test_random_opponent_can_be_beaten_but_not_surely(first_player: str, success: float) -> None:
    mdp = gym.make(ENV_ID, first_player=first_player).unwrapped.tabular_mdp()
    assert start_value(mdp, solve(mdp, objective=Objective.success)) == pytest.approx(success, abs=1e-12)


def test_best_play_against_random_draws_the_games_it_cannot_win() -> None:
    assert GroundTruth.of(gym.make(ENV_ID)).optimal_return == pytest.approx(191 / 192 + 0.5 / 192, abs=1e-12)


@pytest.mark.parametrize("env_id", [ENV_ID, "textgym/TicTacToeMinimax-v0"])
def test_oracle_has_no_regret_and_random_has_some(env_id: str) -> None:
    env_fn = partial(gym.make, env_id)
    optimum = GroundTruth.of(env_fn()).optimal_return
    oracle = evaluate(vector_env(env_fn, 8), OraclePolicy(), 400, seed=0, optimal_return=optimum).metrics()
    random = evaluate(vector_env(env_fn, 8), RandomPolicy(seed=1234), 400, seed=0, optimal_return=optimum)
    assert abs(oracle["regret"]) < 0.01  # exactly 0: the minimax oracle is optimal when it moves first
    assert random.metrics()["regret"] > 0.25  # exactly 0.349 (random opponent) and 0.389 (minimax)
