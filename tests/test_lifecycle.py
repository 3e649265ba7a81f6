"""The run lifecycle every algorithm shares: checkpoints, resume, signals, and runs killed as users kill them.

The subprocess tests run the installed ``textgym`` console script from a scratch directory, and stop it
with the signals that SLURM, ``timeout``, Ctrl-C and the OOM killer send.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from textgym.algorithms.base import Algorithm, Interrupted, checkpoints
from textgym.algorithms.callbacks import Callback, TrainingContext
from textgym.algorithms.tabular import TabularConfig, TabularLearner
from textgym.policies.tabular import TabularPolicy

TEXTGYM = str(Path(sys.executable).parent / "textgym")
"""The installed console script, as a user types it."""


def lake() -> gym.Env:
    return gym.make("textgym/FrozenLake-v0")


def user_env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return env | {"HOME": str(cwd), "WANDB_MODE": "offline"}


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([TEXTGYM, "train", *args], cwd=cwd, env=user_env(cwd), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([TEXTGYM, "train", *args], cwd=cwd, env=user_env(cwd), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)


def wait_for_checkpoint(root: Path, process: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = checkpoints(root)
        if found:
            return found[-1]
        if process.poll() is not None:
            raise AssertionError(f"the run ended before its first checkpoint: {process.communicate()[1][-2000:]}")
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


# ---- in-process: the base class's bookkeeping ---------------------------------------------------
def test_intervals_checkpoints_and_pruning(tmp_path: Path) -> None:
    config = TabularConfig(episodes=250, eval_every=100, eval_episodes=10, checkpoint_every=60, keep_checkpoints=2)
    evals: list[int] = []

    class Evals(Callback):
        def on_eval(self, ctx: TrainingContext) -> None:
            evals.append(ctx.episode)

    TabularLearner(config, seed=0, checkpoint_dir=tmp_path).learn(lake, TabularPolicy(seed=0), [Evals()])
    assert evals == [100, 200]
    assert [p.name for p in checkpoints(tmp_path)] == ["episode-000240", "episode-000250"]  # newest two, the end's last
    assert not list(tmp_path.glob(".*partial"))
    counters = json.loads((tmp_path / "episode-000250" / "counters.json").read_text())
    assert counters["episode"] == 250 and counters["progress"] == 250


def test_a_signal_stops_at_the_next_safe_point_with_a_checkpoint(tmp_path: Path) -> None:
    class SendSigterm(Callback):
        def on_episode_end(self, ctx: TrainingContext) -> bool:
            if ctx.episode == 37:
                os.kill(os.getpid(), signal.SIGTERM)
            return True

    previous = signal.getsignal(signal.SIGTERM)
    learner = TabularLearner(TabularConfig(episodes=1_000, eval_every=0), seed=0, checkpoint_dir=tmp_path)
    with pytest.raises(Interrupted, match="SIGTERM after 37 episodes") as stopped:
        learner.learn(lake, TabularPolicy(seed=0), [SendSigterm()])
    assert stopped.value.exit_code == 143 and stopped.value.checkpoint == tmp_path / "episode-000037"
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored, envs closed
    resumed = TabularLearner(TabularConfig(episodes=1_000, eval_every=0), seed=0, checkpoint_dir=tmp_path, resume=True)
    whole = TabularLearner(TabularConfig(episodes=1_000, eval_every=0), seed=0)
    assert resumed.learn(lake, TabularPolicy(seed=0)).q == whole.learn(lake, TabularPolicy(seed=0)).q


def test_every_learner_subclasses_the_base_and_every_config_names_it() -> None:
    from textgym.algorithms.grpo_config import GRPOConfig
    from textgym.algorithms.ppo_config import PPOConfig
    from textgym.algorithms.sb3 import DQNConfig, MaskablePPOConfig
    from textgym.algorithms.sft_config import SFTConfig

    for config in (TabularConfig(), DQNConfig(), MaskablePPOConfig(), PPOConfig(), SFTConfig(dataset="d"), GRPOConfig()):
        assert isinstance(config.build(seed=0), Algorithm)
    with pytest.raises(ValueError, match="cannot checkpoint"):
        GRPOConfig(checkpoint_every=5)


def imports(path: Path) -> set[str]:
    return set(re.findall(r"^\s*(?:from|import) (textgym\.\w+)", path.read_text(), flags=re.MULTILINE))


def test_envs_and_algorithms_import_in_one_direction() -> None:
    root = Path(__file__).parents[1]
    for path in (root / "envs").rglob("*.py"):
        assert "textgym.policies" not in imports(path), path
    glue = {"textgym.plots", "textgym.cli", "textgym.train", "textgym.factory", "textgym.benchmark", "textgym.loggers",
            "textgym.settings", "textgym.collect", "textgym.sweep_summary"}
    for path in (root / "algorithms").rglob("*.py"):
        assert not imports(path) & glue, path


# ---- the installed command, killed as users kill it ------------------------------------------------
TABULAR = ["algorithm.episodes=20000", "algorithm.eval_every=2000", "algorithm.eval_episodes=50",
           "algorithm.checkpoint_every=1000", "eval.episodes=200", "logger=none"]


def test_a_sigkilled_tabular_run_resumes_to_the_same_table_and_results(tmp_path: Path) -> None:
    whole = run([*TABULAR, "hydra.run.dir=whole"], tmp_path)
    assert whole.returncode == 0, whole.stderr[-2000:]
    process = start([*TABULAR, "hydra.run.dir=killed"], tmp_path)
    wait_for_checkpoint(tmp_path / "killed" / "checkpoints", process)
    time.sleep(np.random.default_rng().uniform(0.0, 1.0))  # a random point between checkpoints
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not (tmp_path / "killed" / "results.json").exists()
    resumed = run([*TABULAR, "hydra.run.dir=killed", "resume=true"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in (tmp_path / "killed" / "train.log").read_text()
    assert (tmp_path / "killed" / "q_table.json").read_text() == (tmp_path / "whole" / "q_table.json").read_text()
    metrics = [json.loads((tmp_path / d / "results.json").read_text())["metrics"] for d in ("whole", "killed")]
    assert metrics[0] == metrics[1]
    again = run([*TABULAR, "hydra.run.dir=killed", "resume=true"], tmp_path)  # finished: not run again
    assert again.returncode == 0 and "already finished" in (tmp_path / "killed" / "train.log").read_text()


def test_sigterm_checkpoints_finishes_wandb_and_exits_143(tmp_path: Path) -> None:
    args = ["algorithm.episodes=2000000", "algorithm.eval_every=1000", "algorithm.eval_episodes=20",
            "algorithm.checkpoint_every=100000", "hydra.run.dir=run"]
    process = start(args, tmp_path)
    out = tmp_path / "run"
    deadline = time.monotonic() + 120
    while "eval at episode" not in ((out / "train.log").read_text() if (out / "train.log").exists() else ""):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.1)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-2000:]
    assert time.monotonic() - sent < 30
    assert "stopped by SIGTERM after" in stderr and "Traceback" not in stderr
    assert checkpoints(out / "checkpoints")  # the stop wrote one, though the interval was far off
    [wandb_file] = (out / "wandb").glob("offline-run-*/run-*.wandb")
    data = wandb_file.read_bytes()
    assert b"eval/success_rate" in data and b"rollout/mean_return" in data
    resumed = run([*args[:-1], "algorithm.episodes=3000", "hydra.run.dir=run", "resume=true"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]


def test_sigint_is_one_line_and_exit_130(tmp_path: Path) -> None:
    process = start(["algorithm.episodes=2000000", "algorithm.eval_every=0", "logger=none", "hydra.run.dir=run"], tmp_path)
    wait_for_checkpoint(tmp_path / "run" / "checkpoints", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "stopped by SIGINT" in stderr and "Traceback" not in stderr


DQN = ["env.kwargs.is_slippery=false", "algorithm=dqn", "algorithm.total_timesteps=12000", "algorithm.eval_every=0",
       "algorithm.checkpoint_every=2000", "eval.episodes=50", "logger=none"]


@pytest.mark.slow
def test_a_sigkilled_dqn_run_resumes_and_learns_as_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = run([*DQN, "hydra.run.dir=whole"], tmp_path)
    assert whole.returncode == 0, whole.stderr[-2000:]
    process = start([*DQN, "hydra.run.dir=killed"], tmp_path)
    first = wait_for_checkpoint(tmp_path / "killed" / "checkpoints", process)
    assert (first / "replay_buffer.npz").exists() and (first / "sb3_weights.safetensors").exists()
    process.send_signal(signal.SIGKILL)
    process.communicate()
    resumed = run([*DQN, "hydra.run.dir=killed", "resume=true"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = (tmp_path / "killed" / "train.log").read_text()
    assert "resumed from" in log
    success = [json.loads((tmp_path / d / "results.json").read_text())["metrics"]["success_rate"] for d in ("whole", "killed")]
    assert success[0] == 1.0 and abs(success[0] - success[1]) <= 0.1


@pytest.mark.slow
def test_a_submitit_multirun_with_a_killed_job_completes_on_resume(tmp_path: Path) -> None:
    args = ["-m", "launcher=submitit_local", "seed=0,1", "algorithm.episodes=60000", "algorithm.eval_every=0",
            "algorithm.checkpoint_every=2000", "eval.episodes=50", "logger=none", "hydra.sweep.dir=sweep"]
    process = subprocess.Popen([TEXTGYM, "train", *args], cwd=tmp_path, env=user_env(tmp_path), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_checkpoint(tmp_path / "sweep" / "1" / "checkpoints", process, timeout=300)
    jobs = [p for p in (tmp_path / "sweep" / ".submitit").iterdir() if p.name.isdigit()]
    killed = max(jobs, key=lambda p: int(p.name))  # submitit_local's job id is the job process's pid
    os.kill(int(killed.name), signal.SIGKILL)
    process.communicate(timeout=600)
    resumed = subprocess.run([TEXTGYM, "train", *args, "resume=true"], cwd=tmp_path, env=user_env(tmp_path),
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for job in ("0", "1"):
        assert json.loads((tmp_path / "sweep" / job / "results.json").read_text())["metrics"]["episodes"] == 50


def test_a_doctored_optimizer_file_is_refused_without_running_it(tmp_path: Path) -> None:
    import pickle

    import torch

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "optimizer.pt").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "optimizer.pt", weights_only=True)  # as PPO and SB3 resume read it
    assert not marker.exists()
    import inspect

    from textgym.algorithms import ppo, sb3

    for module in (ppo, sb3):
        source = inspect.getsource(module)
        assert source.count("torch.load(") == source.count("weights_only=True")


def test_a_signal_someone_else_handles_is_handed_over_after_the_checkpoint(tmp_path: Path) -> None:
    """submitit's SLURM jobs requeue on SIGUSR2 through their own handler: textgym checkpoints first, then calls it."""
    handed: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: handed.append(signum))

    class SendSigusr2(Callback):
        def on_episode_end(self, ctx: TrainingContext) -> bool:
            if ctx.episode == 5:
                os.kill(os.getpid(), signal.SIGUSR2)
            return True

    try:
        learner = TabularLearner(TabularConfig(episodes=100, eval_every=0), seed=0, checkpoint_dir=tmp_path)
        with pytest.raises(Interrupted) as stopped:
            learner.learn(lake, TabularPolicy(seed=0), [SendSigusr2()])
        assert handed == [] and stopped.value.checkpoint == tmp_path / "episode-000005"
        with pytest.raises(SystemExit):
            stopped.value.exit()
        assert handed == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)
