"""Bad settings of ``textgym train``: one line naming the key, before the run writes anything.

Each case runs the installed console script from a scratch directory, as a user types it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TEXTGYM = str(Path(sys.executable).parent / "textgym")


def train(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "HYDRA_"))}
    return subprocess.run([TEXTGYM, "train", *args, "hydra.run.dir=run"], cwd=cwd, stdin=subprocess.DEVNULL,
                          env=environment | {"HOME": str(cwd)} | (env or {}), capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.episodes=0", "eval.episodes=0 must be an integer >= 1"),
        ("eval.episodes=-5", "eval.episodes=-5 must be an integer >= 1"),
        ("eval.episodes=abc", "eval.episodes='abc' must be an integer >= 1"),
        ("eval.num_envs=0", "eval.num_envs=0 must be an integer >= 1"),
        ("algorithm.gamma=1.5", "algorithm.gamma=1.5 must be in [0, 1]"),
        ("reward.step=abc", "reward.step='abc' must be a finite number"),
        ("reward.step=nan", "reward.step=nan must be a finite number"),
        ("policy=tabular algorithm=ppo", "PPO trains an LLM policy (policy=llm), not TabularPolicy"),
        ("policy=tabular algorithm=dqn", "dqn trains a stable-baselines3 policy (policy=sb3), not TabularPolicy"),
        ("algorithm=bc algorithm.dataset=data algorithm.lr_scheduler=linar",
         "lr_scheduler='linar': choose one of constant, linear, cosine"),
    ],
)
def test_a_bad_setting_is_one_line_before_any_side_effect(tmp_path: Path, override: str, message: str) -> None:
    result = train(*override.split(), cwd=tmp_path)
    assert result.returncode == 2
    first, hint = result.stderr.strip().splitlines()[-2:]
    assert first.startswith("textgym: error: ") and message in first, result.stderr
    assert "HYDRA_FULL_ERROR=1" in hint and "Traceback" not in result.stderr
    out = tmp_path / "run"
    assert not (out / "config.yaml").exists() and not (out / "results.json").exists() and not (out / "wandb").exists()


def test_hydra_full_error_still_shows_the_traceback(tmp_path: Path) -> None:
    result = train("eval.episodes=0", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.parametrize("algorithm", ["ppo", "sft", "grpo", "dqn"])
def test_an_algorithm_selects_the_policy_it_trains(tmp_path: Path, algorithm: str) -> None:
    result = subprocess.run([TEXTGYM, "train", f"algorithm={algorithm}", "--cfg", "job", "--package", "policy"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    expected = "textgym.policies.sb3" if algorithm == "dqn" else "model: SmolLM2-135M-Instruct"
    assert result.returncode == 0 and expected in result.stdout, result.stderr


def test_off_a_terminal_progress_is_a_log_line_per_evaluation(tmp_path: Path) -> None:
    result = train("algorithm.episodes=3000", "algorithm.eval_every=1000", "algorithm.eval_episodes=20",
                   "eval.episodes=20", "logger=none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.count("eval at episode") == 3 and "eval at episode 3000" in result.stdout
