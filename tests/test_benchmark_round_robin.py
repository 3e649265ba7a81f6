"""``textgym benchmark`` on two-player envs: the round robin's ratings, and trained policies as opponents."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from test_cli import textgym

from textgym.factory import make_env
from textgym.policies.tabular import TabularPolicy

QUICK_TABULAR = 'setup.tabular.overrides=["algorithm.episodes=400","algorithm.eval_every=0"]'
"""Q-learning for 400 episodes instead of the default 10,000."""
QUICK_TRAIN = ("algorithm.episodes=300", "algorithm.eval_every=0", "eval.episodes=10", "logger=none")


def ratings(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as file:
        return {row["player"]: row for row in csv.DictReader(file)}


def test_round_robin_rates_the_policies_on_each_two_player_env(tmp_path: Path) -> None:
    run = textgym(
        "benchmark", "policies=[random,oracle]", "envs=[tic_tac_toe,guess_number]", "seeds=[0]", "tasks=3",
        "trials=2", "num_envs=4", "resamples=200", "logger=none", "round_robin.games=6", "hydra.run.dir=bench",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "bench"
    table = ratings(out / "ratings_tic_tac_toe.csv")
    assert set(table) == {"random", "oracle", "scripted_random"}  # the policies and the env's own opponent
    for row in table.values():
        assert float(row["sigma"]) > 0 and int(row["games"]) == 2 * 4 * 6  # 2 others x 2 seats x 2 move orders
        assert sum(float(row[k]) for k in ("win_rate", "draw_rate", "loss_rate")) == pytest.approx(1.0, abs=2e-4)
    assert float(table["oracle"]["ordinal"]) > float(table["random"]["ordinal"])
    assert float(table["oracle"]["mu"]) > float(table["random"]["mu"])
    assert float(table["oracle"]["exploitability"]) == pytest.approx(0.0, abs=1e-9)  # the game's optimal player
    assert float(table["scripted_random"]["exploitability"]) == pytest.approx(0.4799, abs=1e-4)  # solved exactly
    assert float(table["random"]["exploitability"]) > 0.3  # the RandomPolicy, tabulated from 16 answers a state
    with open(out / "matches_tic_tac_toe.csv", newline="") as file:
        assert len(list(csv.DictReader(file))) == 3 * 2 * 2  # ordered pairs x move orders
    assert not (out / "ratings_guess_number.csv").exists()  # a single-agent env: no round robin
    printed = run.stdout.split("round robin on tic_tac_toe", 1)[1]
    assert "| oracle |" in printed and "| scripted_random |" in printed

    off = textgym("benchmark", "policies=[random]", "envs=[nim]", "seeds=[0]", "tasks=2", "trials=1", "resamples=200",
                  "logger=none", "round_robin.enabled=false", "hydra.run.dir=off", cwd=tmp_path)
    assert off.returncode == 0, off.stderr
    assert (tmp_path / "off" / "results.csv").exists() and not list((tmp_path / "off").glob("ratings_*"))
    assert "round robin" not in off.stdout


def test_trained_policies_play_and_failed_cells_sit_out(tmp_path: Path) -> None:
    run = textgym(
        "benchmark", "policies=[random,tabular,walker]", "envs=[nim]", "seeds=[3]", "tasks=2", "trials=1",
        "resamples=200", "logger=none", "round_robin.games=4", QUICK_TABULAR,
        "+setup.walker={policy: tabular, checkpoint: nowhere}", "hydra.run.dir=bench", cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "bench"
    table = ratings(out / "ratings_nim.csv")
    assert set(table) == {"random", "tabular", "scripted_random"}  # walker's cell failed: no checkpoint
    assert "walker'] left out" in (out / "benchmark.log").read_text()
    assert all(row["exploitability"] != "" for row in table.values())
    trained = out / "trained" / "nim" / "tabular"  # the first seed's Q-table, as a textgym train run dir
    assert OmegaConf.load(trained / "config.yaml").seed == 3
    assert TabularPolicy.load(trained).q  # it learned something to play with


def test_a_train_run_dir_is_the_opponent(tmp_path: Path) -> None:
    trained = textgym("train", "env=nim", *QUICK_TRAIN, "hydra.run.dir=q", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr

    # the env gets the policy that the run saved
    node = OmegaConf.create({"id": "textgym/Nim-v0", "max_episode_steps": None,
                             "kwargs": {"opponent": str(tmp_path / "q"), "first_player": "opponent"}})
    opponent = make_env(node).unwrapped.opponent
    assert isinstance(opponent, TabularPolicy) and opponent.q == TabularPolicy.load(tmp_path / "q").q

    # from the command line, for training and for the benchmark (a path is a string with a /)
    second = textgym("train", "env=nim", "env.kwargs.opponent=./q", *QUICK_TRAIN, "hydra.run.dir=second", cwd=tmp_path)
    assert second.returncode == 0 and "final success rate" in second.stdout, second.stderr
    bench = textgym("benchmark", "policies=[random]", "envs=[nim]", "seeds=[0]", "tasks=2", "trials=1",
                    "resamples=200", "logger=none", 'overrides=["env.kwargs.opponent=./q"]', "round_robin.games=2",
                    "hydra.run.dir=bench", cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr
    assert (tmp_path / "bench" / "results.csv").exists()
    assert not (tmp_path / "bench" / "ratings_nim.csv").exists()  # one policy, and the env's opponent is no script

    # a dir that holds no policy: one line naming the key, before anything is written
    (tmp_path / "empty").mkdir()
    (tmp_path / "config_only").mkdir()
    shutil.copy(tmp_path / "q" / "config.yaml", tmp_path / "config_only")
    for command, directory, says in [
        (["train", "env=nim", "env.kwargs.opponent=./empty"], "./empty", "has no config.yaml"),
        (["benchmark", "envs=[nim]", "policies=[random]", 'overrides=["env.kwargs.opponent=./config_only"]'],
         "./config_only", "holds no saved policy"),
    ]:
        run = textgym(*command, "logger=none", "hydra.run.dir=failed", cwd=tmp_path)
        assert run.returncode != 0, run.stdout
        lines = [line for line in run.stderr.strip().splitlines() if "HYDRA_FULL_ERROR" not in line]
        assert len(lines) == 1 and f"env.kwargs.opponent={directory}: " in lines[0] and says in lines[0], run.stderr
        assert not (tmp_path / "failed" / "config.yaml").exists() and not list((tmp_path / "failed").rglob("*.csv"))


def test_llm_players_share_the_base_model_as_far_as_they_can(tmp_path: Path, one_thread) -> None:
    """The first LLM player borrows the benchmark's base; the second, if it borrowed it too, would unload the
    first one's adapters: it loads its own, and the round robin plays as with a base per player."""
    import torch
    from hydra import initialize_config_module
    from tiny_llm import save_tiny

    from textgym.factory import BaseModels
    from textgym.policies.llm import LLMPolicy
    from textgym.policies.llm_config import LLMPolicyConfig
    from textgym.tournament import Entrant, TournamentConfig, run_tournament

    model = save_tiny(tmp_path / "tiny", layers=3)
    trained = LLMPolicy(LLMPolicyConfig(model=str(model), trainable_layers=2, seed=3))
    torch.manual_seed(1)
    with torch.no_grad():  # adapters far from zero: it plays unlike the base
        for name, parameter in trained.lm.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    trained.save(tmp_path / "trained")
    llm = [f"policy.model={model}", "policy.trainable_layers=2"]
    config = TournamentConfig(game="nim", games=2, num_envs=2, exploitability_samples=2, players={
        "trained": Entrant(policy="llm", checkpoint=str(tmp_path / "trained"), overrides=llm),  # borrows the base
        "zero_shot": Entrant(policy="llm", overrides=llm),  # sharing it would unload the trained adapters
        "scripted_random": Entrant(scripted="random"),
    })
    with initialize_config_module("textgym.conf", version_base="1.3"):
        models = BaseModels()
        shared = run_tournament(config, models=models)
        alone = run_tournament(config)
    assert shared == alone
    assert models.lends == 1 and len(models) == 1
    by_name = {standing.name: standing for standing in shared[0]}
    assert by_name["zero_shot"].rates != by_name["trained"].rates  # two different players


def test_a_loaded_table_breaks_ties_as_its_config_seeds_it(tmp_path: Path) -> None:
    """A round robin's trained players are loaded from disk: their randomness must follow the run's seed."""
    from textgym.factory import load_policy

    TabularPolicy().save(tmp_path)  # an empty table: every move is a tie
    node = OmegaConf.create({"_target_": "textgym.policies.tabular.TabularPolicy", "state_key": "state", "seed": 5})
    infos = [{"state": 0, "valid_actions": [str(cell) for cell in range(9)]}] * 30
    first, again = (load_policy(node, tmp_path).act([""] * 30, infos) for _ in range(2))
    assert first == again and len(set(first)) > 1
