"""``textgym train`` and ``textgym list`` as a user runs them: in a subprocess, in a scratch directory."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from textgym.envs.customer_service import POLICY

REPO = Path(__file__).resolve().parents[1]
QUICK = ["algorithm.episodes=300", "algorithm.eval_every=100", "eval.episodes=40"]


SCRIPT = str(Path(sys.executable).with_name("textgym"))
"""The installed console script, which (unlike ``python -m``) gets no working directory on ``sys.path`` from Python."""


def textgym(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the installed ``textgym`` command in ``cwd``, as a user does (no PYTHONPATH, no W&B key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "PYTHONPATH"}
    env["HOME"] = str(cwd)  # no W&B credentials: must go offline, never prompt
    return subprocess.run(
        [SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
    )


def test_train_writes_results_config_table_and_offline_wandb(tmp_path: Path) -> None:
    run = textgym("train", *QUICK, "reward.step=-0.01", "hydra.run.dir=run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "final success rate" in run.stdout
    out = tmp_path / "run"
    results = json.loads((out / "results.json").read_text())
    assert results["env"] == "textgym/FrozenLake-v0" and results["metrics"]["episodes"] == 40
    assert "violations_by_rule" not in results  # FrozenLake has no policy to break
    assert "reward:\n  success: 1.0\n  failure: 0.0\n  step: -0.01" in (out / "config.yaml").read_text()
    assert (out / "q_table.json").exists()
    [wandb_file] = (out / "wandb").glob("offline-run-*/run-*.wandb")
    data = wandb_file.read_bytes()
    for key in [b"eval/success_rate", b"rollout/mean_return", b"final/success_rate"]:
        assert key in data
    assert json.dumps(results["metrics"]["success_rate"]).encode() in data


def test_train_on_customer_service_reports_the_rules_broken(tmp_path: Path) -> None:
    run = textgym("train", "env=customer_service", "policy.state_key=observation", "algorithm.episodes=20",
                  "eval.episodes=40", "logger=none", "hydra.run.dir=run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    by_rule = results["violations_by_rule"]
    assert by_rule and all(0 < share <= results["metrics"]["violation_rate"] for share in by_rule.values())
    assert set(by_rule) <= {rule.name for rule in POLICY}


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


def test_list_shows_textgym_envs_and_all_shows_every_id(tmp_path: Path) -> None:
    run = textgym("list", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "textgym/FrozenLake-v0" in run.stdout and "Cross a frozen lake" in run.stdout
    assert "CartPole-v1" not in run.stdout and "Ant-v2" not in run.stdout  # Gymnasium's own ids
    every = textgym("list", "--all", cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    assert all(name in every.stdout for name in ["textgym/FrozenLake-v0", "CartPole-v1", "Ant-v2"])


def test_fresh_interpreter_makes_env_by_module_prefix(tmp_path: Path) -> None:
    code = "import gymnasium as gym; env = gym.make('textgym:textgym/FrozenLake-v0'); print(env.reset(seed=0)[0])"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "You are at row 1, column 1." in run.stdout


@pytest.mark.parametrize("command", [[], ["bogus"], ["list", "--everything"]])
def test_usage(tmp_path: Path, command: list[str]) -> None:
    run = textgym(*command, cwd=tmp_path)
    assert run.returncode == 2 and "usage: textgym" in run.stderr


def readme_block(section: str, language: str) -> str:
    """The first ``language`` code block under the README's ``## section`` heading."""
    text = (REPO / "README.md").read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return text.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_readme_add_your_own_environment_as_written(tmp_path: Path) -> None:
    """The README's commands, run by the installed script in a dir holding only the user's two files."""
    shutil.copy(REPO / "tests" / "examples" / "ladder.py", tmp_path)
    (tmp_path / "my_conf" / "env").mkdir(parents=True)
    (tmp_path / "my_conf" / "env" / "ladder.yaml").write_text(readme_block("Add your own environment", "yaml"))
    commands = readme_block("Add your own environment", "bash").strip().splitlines()
    assert [c.split()[:2] for c in commands] == [["textgym", "train"], ["textgym", "check"]]
    tiny = ["algorithm.episodes=300", "eval.episodes=50", "logger=none", "hydra.run.dir=out"]

    train = textgym(*shlex.split(commands[0].replace("$PWD", str(tmp_path)))[1:], *tiny, cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["env"] == "ladder:example/Ladder-v0" and "regret" in results["metrics"]
    assert "slip: -0.1" in (tmp_path / "out" / "config.yaml").read_text()

    check = textgym(*shlex.split(commands[1])[1:], cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "tabular_mdp matches sampling" in check.stdout and "FAIL" not in check.stdout
