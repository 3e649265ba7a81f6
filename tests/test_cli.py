"""``textgym train`` and ``textgym list`` as a user runs them: in a subprocess, in a scratch directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICK = ["algorithm.episodes=300", "algorithm.eval_every=100", "eval.episodes=40"]


def textgym(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["HOME"] = str(cwd)  # no W&B credentials: must go offline, never prompt
    return subprocess.run(
        [sys.executable, "-m", "textgym", *args], cwd=cwd, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=300,
    )


def test_train_writes_results_config_table_and_offline_wandb(tmp_path: Path) -> None:
    run = textgym("train", *QUICK, "reward.step=-0.01", "hydra.run.dir=run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "final success rate" in run.stdout
    out = tmp_path / "run"
    results = json.loads((out / "results.json").read_text())
    assert results["env"] == "textgym/FrozenLake-v0" and results["metrics"]["episodes"] == 40
    assert "reward:\n  success: 1.0\n  failure: 0.0\n  step: -0.01" in (out / "config.yaml").read_text()
    assert (out / "q_table.json").exists()
    [wandb_file] = (out / "wandb").glob("offline-run-*/run-*.wandb")
    data = wandb_file.read_bytes()
    for key in [b"eval/success_rate", b"rollout/mean_return", b"final/success_rate"]:
        assert key in data
    assert json.dumps(results["metrics"]["success_rate"]).encode() in data


def test_misspelt_overrides_name_the_key(tmp_path: Path) -> None:
    run = textgym("train", "algorithm.alpah=0.1", "logger=none", cwd=tmp_path)
    assert run.returncode != 0 and "alpah" in run.stderr
    run = textgym("train", "reward.stpe=0.1", "logger=none", cwd=tmp_path)
    assert run.returncode != 0 and "stpe" in run.stderr
    run = textgym("train", "algorithm.alpha=fast", "logger=none", cwd=tmp_path)
    assert run.returncode != 0 and "alpha" in run.stderr


def test_multirun_sweep_writes_one_result_per_job(tmp_path: Path) -> None:
    run = textgym(
        "train", "-m", "algorithm.gamma=0.9,0.99", "reward.step=0,-0.01", *QUICK,
        "hydra.sweep.dir=sweep", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    results = sorted((tmp_path / "sweep").glob("*/results.json"))
    assert len(results) == 4
    swept = {
        tuple(o for o in json.loads(r.read_text())["overrides"] if o.startswith(("algorithm.gamma", "reward.step")))
        for r in results
    }
    assert swept == {(f"algorithm.gamma={g}", f"reward.step={s}") for g in ("0.9", "0.99") for s in ("0", "-0.01")}
    groups = {b"sweep" in f.read_bytes() for f in (tmp_path / "sweep").glob("*/wandb/offline-run-*/run-*.wandb")}
    assert groups == {True}  # every job's W&B run carries the sweep's group


def test_list_shows_every_env(tmp_path: Path) -> None:
    run = textgym("list", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "textgym/FrozenLake-v0" in run.stdout and "Cross a frozen lake" in run.stdout


def test_fresh_interpreter_makes_env_by_module_prefix(tmp_path: Path) -> None:
    code = "import gymnasium as gym; env = gym.make('textgym:textgym/FrozenLake-v0'); print(env.reset(seed=0)[0])"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "You are at row 1, column 1." in run.stdout


@pytest.mark.parametrize("command", [[], ["bogus"]])
def test_usage(tmp_path: Path, command: list[str]) -> None:
    run = textgym(*command, cwd=tmp_path)
    assert run.returncode == 2 and "usage: textgym" in run.stderr


def test_users_env_trains_from_its_own_config_dir(tmp_path: Path) -> None:
    examples = Path(__file__).parent / "examples"
    env = {**os.environ, "PYTHONPATH": str(examples), "HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "textgym", "train", f"hydra.searchpath=[file://{examples / 'conf'}]", "env=ladder",
         "reward.slip=-0.1", "algorithm.episodes=300", "eval.episodes=50", "logger=none", "hydra.run.dir=out"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["env"] == "ladder:example/Ladder-v0" and "regret" in results["metrics"]
