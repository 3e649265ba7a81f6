"""The round robin: OpenSkill ratings, outcome rates, exact exploitability; trained policies as players, opponents."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from textgym.envs import connect_four, kuhn_poker
from textgym.policies.base import Policy
from textgym.tournament import Entrant, Result, TournamentConfig, decision_states, rate, tabulate

TEXTGYM = str(Path(sys.executable).with_name("textgym"))
"""The installed console script, beside the interpreter that runs the tests."""


def textgym(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"HOME": str(cwd)}
    run = subprocess.run([TEXTGYM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def read(path: Path) -> dict[str, dict[str, str]]:
    with open(path) as file:
        return {row["player"]: row for row in csv.DictReader(file)}


def test_round_robin_rates_and_measures_exploitability(tmp_path: Path) -> None:
    """A trained Q-table, the random policy and the game's scripted players on Nim, through the installed command."""
    textgym("train", "env=nim", "algorithm.episodes=3000", "algorithm.eval_every=0", "eval.episodes=50",
            "logger=none", "hydra.run.dir=q", cwd=tmp_path)
    run = textgym("tournament", "game=nim", "games=24", "num_envs=4", "+players.q={checkpoint: q}",
                  "hydra.run.dir=out", cwd=tmp_path)
    assert "| optimal |" in run.stdout
    ratings = read(tmp_path / "out" / "ratings.csv")
    assert set(ratings) == {"random", "optimal", "scripted_random", "q"}
    for row in ratings.values():
        assert float(row["sigma"]) > 0 and int(row["games"]) == 3 * 4 * 24
        assert sum(float(row[k]) for k in ("win_rate", "draw_rate", "loss_rate")) == pytest.approx(1.0)
    assert float(ratings["optimal"]["exploitability"]) == pytest.approx(0.0, abs=1e-12)
    assert float(ratings["scripted_random"]["exploitability"]) > 0.3  # exactly 0.463 (solved)
    # the random policy knows its probabilities: tabulated from them, it is exactly the game's uniform player
    exploitability = {name: float(row["exploitability"]) for name, row in ratings.items()}
    assert exploitability["random"] == pytest.approx(exploitability["scripted_random"])
    assert float(ratings["q"]["exploitability"]) < float(ratings["random"]["exploitability"])  # it learned something
    ordinal = {name: float(row["ordinal"]) for name, row in ratings.items()}
    assert ordinal["optimal"] > max(ordinal["random"], ordinal["scripted_random"])
    assert ordinal["q"] > max(ordinal["random"], ordinal["scripted_random"])  # Q-learning plays Nim near-perfectly
    with open(tmp_path / "out" / "matches.csv") as file:
        assert len(list(csv.DictReader(file))) == 4 * 3 * 2  # ordered pairs x move orders
    assert (tmp_path / "out" / "tournament.md").read_text().startswith("# textgym tournament")


def test_a_checkpoint_can_be_the_opponent_of_training(tmp_path: Path) -> None:
    textgym("train", "env=nim", "algorithm.episodes=500", "algorithm.eval_every=0", "eval.episodes=20", "logger=none",
            "hydra.run.dir=first", cwd=tmp_path)
    opponent = "env.kwargs.opponent={_target_: textgym.opponents.load_checkpoint, directory: first}"
    run = textgym("train", "env=nim", opponent,
                  "algorithm.episodes=500", "algorithm.eval_every=0", "eval.episodes=20", "logger=none",
                  "hydra.run.dir=second", cwd=tmp_path)
    assert "final success rate" in run.stdout
    missing = subprocess.run([TEXTGYM, "train", "env=nim", "env.kwargs.opponent={_target_: textgym.opponents."
                              "load_checkpoint, directory: nowhere}", "logger=none"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert missing.returncode != 0 and "nowhere has no config.yaml" in missing.stderr


def test_ratings_follow_results() -> None:
    results = [Result("a", "b", "win", 1.0)] * 30 + [Result("b", "c", "draw", 0.0)] * 30
    ratings = rate(results, ["a", "b", "c"], np.random.default_rng(0))
    assert ratings["a"].mu > ratings["b"].mu > ratings["c"].mu - 3 and ratings["a"].sigma < 8.33


class Deterministic(Policy):
    def act(self, observations: list[str], infos: list[dict]) -> list[str]:
        return [info["valid_actions"][-1] for info in infos]


def test_a_deterministic_policy_is_tabulated_exactly() -> None:
    states = decision_states(kuhn_poker.GAME, 1, 100)
    assert len(states) == 12  # 3 cards x (first to act: 2 histories; second: 2 histories)
    table = tabulate(Deterministic(), kuhn_poker.GAME, states, 1, 4, np.random.default_rng(0)).table
    assert all(distribution == ((1.0, kuhn_poker.GAME.legal(states[key])[-1]),) for key, distribution in table.items())


class Known(Policy):
    """Knows its probabilities (most weight on the last valid action); acting would be an error here."""

    def act(self, observations: list[str], infos: list[dict]) -> list[str]:
        raise AssertionError("a policy that knows its probabilities is not sampled")

    def action_probabilities(self, observations: list[str], infos: list[dict]) -> list[dict[str, float]]:
        return [{a: (0.7 if a == info["valid_actions"][-1] else 0.3 / (len(info["valid_actions"]) - 1))
                 for a in info["valid_actions"]} for info in infos]


def test_known_probabilities_are_tabulated_as_they_are() -> None:
    states = decision_states(kuhn_poker.GAME, 1, 100)
    table = tabulate(Known(), kuhn_poker.GAME, states, 1, 4, np.random.default_rng(0)).table
    assert all(dict((a, p) for p, a in distribution) == pytest.approx(
        {a: 0.7 if a == kuhn_poker.GAME.legal(states[key])[-1] else 0.3 for a in kuhn_poker.GAME.legal(states[key])})
        for key, distribution in table.items())


def test_big_games_are_not_enumerated() -> None:
    assert decision_states(connect_four.GAME, 1, 1000) is None


def test_config_errors_are_named() -> None:
    with pytest.raises(ValueError, match="scripted alone, or policy and/or checkpoint"):
        Entrant(policy="random", scripted="minimax")
    with pytest.raises(ValueError, match="scripted alone, or policy and/or checkpoint; got none"):
        Entrant()
    assert Entrant(policy="tabular", checkpoint="runs/q").checkpoint == "runs/q"  # the config whose class loads it
    with pytest.raises(ValueError, match="at least two players"):
        TournamentConfig(players={"random": {"policy": "random"}})
    with pytest.raises(ValueError, match="players.x: .*unexpected keyword"):
        TournamentConfig(players={"x": {"polciy": "random"}, "y": {"policy": "random"}})


def test_an_llm_config_can_be_the_opponent(tmp_path: Path, one_thread) -> None:
    from omegaconf import OmegaConf
    from tiny_llm import save_tiny

    from textgym.factory import make_env

    model = save_tiny(tmp_path / "tiny")
    node = OmegaConf.create({"id": "textgym/TicTacToe-v0", "max_episode_steps": None, "kwargs": {
        "opponent": {"_target_": "textgym.opponents.llm_policy", "model": str(model), "trainable_layers": None},
        "first_player": "opponent"}})
    env = make_env(node)
    _, info = env.reset(seed=0)
    assert info["opponent_invalid"] == 0 and len(info["valid_actions"]) == 8  # the tiny LLM made a legal first move
