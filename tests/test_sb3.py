"""stable-baselines3 baselines: DQN and MaskablePPO learn text envs through the wrappers, and their
policies are evaluated, saved and loaded like every textgym policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN

from textgym.algorithms.callbacks import Callback, TrainingContext
from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.algorithms.sb3 import DQNConfig, MaskablePPOConfig, SB3Learner
from textgym.envs.features import HashedNgrams
from textgym.envs.frozen_lake import DIRECTIONS
from textgym.policies.sb3 import SB3Policy
from textgym.policies.tabular import TabularPolicy

frozen_lake = partial(gym.make, "textgym/FrozenLake-v0", is_slippery=False)
guess_number = partial(gym.make, "textgym/GuessNumber-v0")  # 1..16, 6 guesses; random play wins ~0.4


def success_rate(env_fn, policy, episodes: int = 500) -> float:
    return evaluate(vector_env(env_fn, 8), policy, episodes, seed=12345).metrics()["success_rate"]


def test_dqn_learns_frozen_lake_non_slippery() -> None:
    policy = SB3Learner(DQNConfig(total_timesteps=8_000, eval_every=0), seed=0).learn(frozen_lake, SB3Policy())
    assert success_rate(frozen_lake, policy, 100) >= 0.9  # a deterministic MDP: greedy play is 0 or 1


@pytest.mark.slow  # about 30 s on 2 idle cores, over a minute on busy ones
def test_dqn_learns_guess_number() -> None:
    untrained = SB3Learner(DQNConfig(total_timesteps=200, eval_every=0), seed=0).learn(guess_number, SB3Policy())
    assert success_rate(guess_number, untrained) < 0.6  # one greedy guess sequence for every secret
    policy = SB3Learner(DQNConfig(total_timesteps=30_000, eval_every=0), seed=0).learn(guess_number, SB3Policy())
    assert success_rate(guess_number, policy) >= 0.8


def test_masked_indices_are_never_chosen_and_invalid_ones_are_handled() -> None:
    """A vocabulary with an action the env never accepts: MaskablePPO never picks it (masks), DQN may,
    and then the env answers an invalid action (penalised), never an exception."""
    vocabulary = [*DIRECTIONS, "fly"]
    played: list[int] = []

    class Invalid(Callback):
        def on_episode_end(self, ctx: TrainingContext) -> bool:
            played.append(ctx.last_episode.invalid_actions)
            return True

    config = MaskablePPOConfig(total_timesteps=1_024, n_envs=4, n_steps=64, batch_size=64, eval_every=0)
    ppo = SB3Learner(config, seed=0).learn(frozen_lake, SB3Policy(vocabulary=vocabulary), [Invalid()])
    assert played and sum(played) == 0
    assert evaluate(vector_env(frozen_lake, 4), ppo, 20, seed=0).metrics()["invalid_action_rate"] == 0.0

    played.clear()
    dqn = SB3Learner(DQNConfig(total_timesteps=600, eval_every=0), seed=0).learn(
        frozen_lake, SB3Policy(vocabulary=vocabulary), [Invalid()])
    assert sum(played) > 0  # random exploration picked "fly": answered as invalid actions
    assert dqn.act(["anything"], [{"valid_actions": list(DIRECTIONS)}])[0] in vocabulary


def test_save_load_in_sb3_format(tmp_path: Path) -> None:
    policy = SB3Learner(DQNConfig(total_timesteps=600, eval_every=0), seed=0).learn(
        frozen_lake, SB3Policy(HashedNgrams(dim=128)))
    policy.save(tmp_path)
    assert isinstance(DQN.load(tmp_path / "sb3_model.zip"), DQN)  # SB3's own format
    loaded = SB3Policy.load(tmp_path)
    env = frozen_lake()
    start, start_info = env.reset(seed=0)
    below, *_, below_info = env.step("down")
    observations, infos = [start, below], [start_info, below_info]
    assert loaded.act(observations, infos) == policy.act(observations, infos)
    assert loaded.features == policy.features and loaded.index == policy.index


def test_callbacks_see_episodes_metrics_and_evaluations_and_can_stop() -> None:
    class Record(Callback):
        def __init__(self) -> None:
            self.episodes, self.logged, self.evals, self.steps = 0, set(), [], 0

        def on_episode_end(self, ctx: TrainingContext) -> bool:
            self.episodes, self.steps = ctx.episode, ctx.env_steps
            return ctx.env_steps < 1_500

        def on_log(self, ctx: TrainingContext, metrics: dict[str, float]) -> None:
            self.logged |= set(metrics)

        def on_eval(self, ctx: TrainingContext) -> None:
            self.evals.append(ctx.last_eval)

    record = Record()
    config = DQNConfig(total_timesteps=5_000, learning_starts=100, log_interval=5, eval_every=500, eval_episodes=4)
    SB3Learner(config, seed=0).learn(frozen_lake, SB3Policy(), [record])
    assert 1_500 <= record.steps < 1_700 and record.episodes > 10  # stopped soon after asking
    assert {"train/loss", "rollout/exploration_rate"} <= record.logged
    assert len(record.evals) == 3 and record.evals[0]["episodes"] == 4


def test_config_errors_give_the_reason() -> None:
    with pytest.raises(ValueError, match="exploration_final_eps"):
        DQNConfig(exploration_initial_eps=0.1, exploration_final_eps=0.5)
    with pytest.raises(ValueError, match="batch_size"):
        MaskablePPOConfig(n_steps=10, n_envs=1, batch_size=64)
    with pytest.raises(ValueError, match="net_arch"):
        DQNConfig(net_arch=[])
    with pytest.raises(TypeError, match="policy=sb3"):
        SB3Learner(DQNConfig()).learn(frozen_lake, TabularPolicy())
    with pytest.raises(RuntimeError, match="no model"):
        SB3Policy().act(["x"], [{"valid_actions": ["a"]}])
    with pytest.raises(ValueError, match="vocabulary"):
        SB3Policy(max_actions=3, vocabulary=["a", "b"])


def textgym(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["HOME"] = str(cwd)  # no W&B credentials: offline
    return subprocess.run([sys.executable, "-m", "textgym", "train", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)


@pytest.mark.parametrize(("env", "algorithm", "budget"), [
    ("frozenlake", "dqn", ["algorithm.total_timesteps=1000", "algorithm.learning_starts=100"]),
    ("guess_number", "maskable_ppo", ["algorithm.total_timesteps=1024", "algorithm.n_envs=2"]),
])
def test_textgym_train(tmp_path: Path, env: str, algorithm: str, budget: list[str]) -> None:
    run = textgym(f"env={env}", f"algorithm={algorithm}", *budget, "algorithm.log_interval=1",
                  "algorithm.eval_every=500", "algorithm.eval_episodes=8", "eval.episodes=16", "hydra.run.dir=run",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "run"
    results = json.loads((out / "results.json").read_text())
    assert results["algorithm"] == algorithm and results["metrics"]["episodes"] == 16
    assert json.loads((out / "sb3_policy.json").read_text())["algorithm"] == algorithm
    assert (out / "sb3_model.zip").exists()
    [wandb_file] = (out / "wandb").glob("offline-run-*/run-*.wandb")
    data = wandb_file.read_bytes()
    for key in [b"train/loss", b"rollout/ep_rew_mean", b"eval/success_rate", b"final/success_rate"]:  # SB3's and ours
        assert key in data
    assert np.isfinite(results["metrics"]["success_rate"])
    assert "ep_rew_mean" in (out / "train.log").read_text()  # off a terminal, a line per SB3 log interval
