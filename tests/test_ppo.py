"""PPO on a tiny random LLM: it learns, two processes equal one, a killed run resumes, configs check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from safetensors.torch import load_file
from tiny_llm import save_tiny, tiny_model, tiny_tokenizer

from textgym.algorithms.callbacks import Callback, TrainingContext
from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.ppo import PPO
from textgym.algorithms.ppo_config import PPOConfig
from textgym.policies.llm import LLMPolicy
from textgym.policies.llm_config import LLMPolicyConfig

frozen_lake = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False)
SCRIPT = str(Path(sys.executable).with_name("textgym"))
"""The installed console script, as a user runs it."""


def tiny_policy(seed: int = 0) -> LLMPolicy:
    tokenizer = tiny_tokenizer()
    return LLMPolicy(LLMPolicyConfig(trainable_layers=None, lora_r=8, seed=seed), tiny_model(tokenizer, seed=seed), tokenizer)


class Metrics(Callback):
    def __init__(self) -> None:
        self.logs: list[dict] = []

    def on_log(self, ctx: TrainingContext, metrics: dict[str, float]) -> None:
        self.logs.append(metrics)


def test_ppo_learns_a_small_lake_from_scratch(one_thread) -> None:
    """A random 2-layer model reaches >= 0.9 sampled success on a 3x3 lake with a hole in 30 updates.

    (On 4x4 the tiny model, unlike SmolLM2, rarely finds the goal before it learns to end episodes in a hole.
    The lake pays no bump cost here: with -0.05 per bump, a hole that ends the episode beats wandering, and PPO
    seeds 0-2 reached 0.70, 0.00 and 1.00; without it 0.95, 1.00, 1.00, 0.97, 1.00 on seeds 0-4.) At learning rate
    5e-3 another machine's floats gave 0.47, 1.00, 0.00, 0.98, 0.98 on seeds 0-4; at 3e-3 1.00, 0.97, 1.00, 1.00, 1.00.
    """
    small_lake = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False, desc=["SFF", "FHF", "FFG"],
                         max_episode_steps=8)
    policy = tiny_policy()
    before = evaluate(vector_env(small_lake, 16), policy, 64, seed=1).metrics()["success_rate"]
    config = PPOConfig(total_updates=30, num_envs=16, num_steps=12, learning_rate=3e-3, entropy_coef=0.03,
                       target_kl=0.03, checkpoint_every=0, cpu=True)
    metrics = Metrics()
    PPO(config, seed=0).learn(small_lake, policy, [metrics])
    after = evaluate(vector_env(small_lake, 16), policy, 64, seed=1).metrics()["success_rate"]
    assert before < 0.5 and after >= 0.9, (before, after)
    assert len(metrics.logs) == 30
    for key in ("train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl", "train/clip_fraction",
                "train/explained_variance", "time/tokens_per_second"):
        assert key in metrics.logs[-1]


def test_two_processes_update_like_one_on_the_same_global_batch(tmp_path: Path) -> None:
    """2 gloo processes, each with half of a fixed global batch, end one update where 1 process with all of it does."""
    script = str(Path(__file__).with_name("distributed_update.py"))
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "PYTHONPATH": str(Path(__file__).parent)}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", "--main_process_port", "0"]
    for command in ([sys.executable, script, str(tmp_path / "1.pt")],
                    [*launch, "--multi_gpu", "--num_processes", "2", script, str(tmp_path / "2.pt")]):
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
    one, two = torch.load(tmp_path / "1.pt"), torch.load(tmp_path / "2.pt")
    assert one["processes"] == 1 and two["processes"] == 2
    assert any(not torch.equal(a, b) for a, b in zip(one["after"], one["before"]))  # the update changed the weights
    for a, b in zip(one["after"], two["after"]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    save_tiny(tmp_path / "tiny")
    args = [sys.executable, "-m", "textgym", "train", "env=frozenlake", "env.kwargs.is_slippery=false",
            "policy=llm", "policy.model=tiny", "policy.trainable_layers=null", "algorithm=ppo",
            "algorithm.total_updates=12", "algorithm.num_envs=4", "algorithm.num_steps=4", "algorithm.checkpoint_every=1",
            "eval.episodes=4", "logger=none", "hydra.run.dir=run"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    run = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "run" / "checkpoints"
    deadline = time.monotonic() + 240
    while not (checkpoints / "update-000002").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    killed_at = sorted(p.name for p in checkpoints.glob("update-*"))
    assert killed_at and killed_at[-1] < "update-000012", killed_at  # killed mid-run, with a checkpoint

    resumed = subprocess.run([*args, "resume=true"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    log = (tmp_path / "run" / "train.log").read_text()
    assert f"resumed from {checkpoints / killed_at[-1]}" in log
    assert (checkpoints / "update-000012").exists() and "final success rate" in resumed.stdout


def test_cli_trains_on_guess_number_and_logs_to_wandb(tmp_path: Path) -> None:
    save_tiny(tmp_path / "tiny")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "textgym", "train", "env=guess_number", "policy=llm", "algorithm=ppo", "policy.model=tiny",
         "algorithm.total_updates=2", "algorithm.num_envs=4", "algorithm.num_steps=6", "eval.episodes=4",
         "hydra.run.dir=run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "run"
    assert (out / "adapter" / "adapter_model.safetensors").exists() and (out / "checkpoints" / "update-000002").exists()
    [wandb_file] = (out / "wandb").glob("offline-run-*/run-*.wandb")
    data = wandb_file.read_bytes()
    for key in [b"train/clip_fraction", b"train/value_loss", b"train/entropy", b"time/tokens_per_second",
                b"rollout/transcripts", b"final/success_rate"]:
        assert key in data, key
    log = (out / "train.log").read_text()  # off a terminal, a line per update
    assert "update 1: " in log and "update 2: " in log and "policy_loss" in log


def test_cli_with_zero_updates_evaluates_the_policy_it_starts_from(tmp_path: Path) -> None:
    save_tiny(tmp_path / "tiny")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"HOME": str(tmp_path)}
    common = ["train", "env=guess_number", "policy=llm", "algorithm=ppo", "policy.model=tiny", "policy.greedy=true",
              "algorithm.num_envs=4", "algorithm.num_steps=4", "eval.episodes=8", "logger=none"]

    def textgym(run_dir: str, *args: str) -> dict:
        run = subprocess.run([SCRIPT, *common, *args, f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert run.returncode == 0, run.stderr[-3000:]
        return json.loads((tmp_path / run_dir / "results.json").read_text())["metrics"]

    trained = textgym("trained", "algorithm.total_updates=1")
    evaluated = textgym("evaluated", "algorithm.total_updates=0", "policy.init_from=trained")
    assert evaluated == trained  # the same greedy policy on the same evaluation tasks
    adapters = [load_file(tmp_path / run / "adapter" / "adapter_model.safetensors") for run in ("trained", "evaluated")]
    assert adapters[0].keys() == adapters[1].keys()
    assert all(torch.equal(adapters[0][k], adapters[1][k]) for k in adapters[0])
    assert "update 1:" not in (tmp_path / "evaluated" / "train.log").read_text()
    # bfloat16 weights: the float32 value head reads their hidden states (this crashed at the first forward)
    half = textgym("half", "algorithm.total_updates=1", "policy.init_from=trained", "policy.dtype=bfloat16")
    assert half["episodes"] == 8 and "update 1:" in (tmp_path / "half" / "train.log").read_text()


def test_config_errors_give_the_reason() -> None:
    with pytest.raises(ValueError, match="split evenly"):
        PPOConfig(num_envs=3, num_steps=3, num_minibatches=2)
    with pytest.raises(ValueError, match="gamma"):
        PPOConfig(gamma=1.5)
    with pytest.raises(ValueError, match="total_updates=-1"):
        PPOConfig(total_updates=-1)
    with pytest.raises(TypeError, match="policy=llm"):
        PPO(PPOConfig()).learn(frozen_lake, object())


def test_cli_under_accelerate_launch_trains_on_two_processes(tmp_path: Path) -> None:
    """``accelerate launch -m textgym train``: the multi-GPU command, here as 2 gloo processes on the CPU."""
    save_tiny(tmp_path / "tiny")
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "PYTHONPATH": str(Path(__file__).parent)}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
              "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0", "-m", "textgym", "train",
              "env=frozenlake", "env.kwargs.is_slippery=false", "policy=llm", "policy.model=tiny", "policy.trainable_layers=null",
              "algorithm=ppo", "algorithm.total_updates=2", "algorithm.num_envs=4", "algorithm.num_steps=4",
              "algorithm.checkpoint_every=1", "eval.episodes=4", "logger=none"]
    run = subprocess.run([*launch, "hydra.run.dir=run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("final success rate") == 1  # only rank 0 evaluates and writes results
    checkpoint = tmp_path / "run" / "checkpoints" / "update-000002"
    assert (checkpoint / "rng-0.json").exists() and (checkpoint / "rng-1.json").exists()  # JSON: loads run no code
    assert (tmp_path / "run" / "results.json").exists()
    unnamed = subprocess.run(launch, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert unnamed.returncode != 0 and "hydra.run.dir" in unnamed.stderr
