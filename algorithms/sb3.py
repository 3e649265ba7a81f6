"""stable-baselines3 baselines on text envs: DQN and sb3-contrib's MaskablePPO.

The env is wrapped by the policy (:meth:`textgym.policies.sb3.SB3Policy.wrap`: text → hashed n-gram
vectors, valid actions → ``Discrete`` with masks), SB3 trains its model, and an SB3 callback
(:mod:`textgym.algorithms.sb3_callbacks`) drives textgym's callbacks (episode ends, periodic
evaluations through the shared :func:`evaluate`, SB3's own ``train/*`` metrics), so logging, progress
and ``results.json`` work as for every algorithm. SB3 and torch are imported when training starts,
not with this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from textgym.algorithms.callbacks import Callback, CallbackList, TrainingContext
from textgym.algorithms.evaluation import evaluate, vector_env
from textgym.policies.sb3 import SB3Algorithm, SB3Policy


@dataclass
class SB3Config:
    """What every SB3 baseline shares; the remaining fields of a subclass are SB3's own arguments."""

    algorithm: ClassVar[SB3Algorithm]
    learner_fields: ClassVar[frozenset[str]] = frozenset(
        {"total_timesteps", "net_arch", "n_envs", "log_interval", "eval_every", "eval_episodes", "eval_num_envs",
         "torch_threads"}
    )

    total_timesteps: int = 30_000
    """Env steps of training, summed over the ``n_envs`` copies."""
    learning_rate: float = 1e-3
    """Adam's learning rate."""
    gamma: float = 0.95
    """Discount factor. Text observations split a grid cell into several states (arrived, bumped into
    the edge, ...), so under 0.99 a move that bumps looks almost as good as progress and DQN's greedy
    policy can loop; 0.95 keeps the gap wide (text FrozenLake, DQN: 0/3 seeds solved at 0.99, 3/3 at 0.95)."""
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of the MLP (the Q-network, or both the actor and the critic)."""
    n_envs: int = 1
    """Env copies stepped together (SB3's ``DummyVecEnv``)."""
    log_interval: int = 100
    """How often SB3 reports ``train/*`` and ``rollout/*`` metrics: episodes (DQN) or rollouts (PPO)."""
    eval_every: int = 5_000
    """Env steps between evaluations through the shared ``evaluate`` (0 turns them off)."""
    eval_episodes: int = 100
    """Episodes per periodic evaluation."""
    eval_num_envs: int = 8
    """Vector-env slots of the periodic evaluations."""
    device: str = "cpu"
    """Torch device ("auto" takes a GPU when there is one; small MLPs are fastest on the CPU)."""
    torch_threads: int | None = 1
    """Torch's CPU threads while training (restored after): small MLPs run several times faster on one
    thread than on two contended cores; None keeps torch's setting."""

    def __post_init__(self) -> None:
        for name in ("total_timesteps", "n_envs", "log_interval", "eval_episodes", "eval_num_envs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.eval_every < 0:
            raise ValueError(f"eval_every={self.eval_every} must be >= 0 (0 turns evaluations off)")
        if not 0.0 <= self.gamma <= 1.0 or self.learning_rate <= 0.0:
            raise ValueError(f"need 0 <= gamma <= 1 and learning_rate > 0, got {self.gamma} and {self.learning_rate}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads={self.torch_threads} must be >= 1, or None to keep torch's setting")
        if not self.net_arch or min(self.net_arch) < 1:
            raise ValueError(f"net_arch={self.net_arch} needs at least one layer of >= 1 units, e.g. [64, 64]")

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the SB3 model class."""
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self.learner_fields}
        return {**kwargs, "policy_kwargs": {"net_arch": list(self.net_arch)}}


@dataclass
class DQNConfig(SB3Config):
    """DQN (stable-baselines3), ``algorithm=dqn``; the defaults suit small text envs (tens of thousands of steps)."""

    algorithm: ClassVar[SB3Algorithm] = SB3Algorithm.dqn

    buffer_size: int = 50_000
    """Replay buffer capacity in transitions."""
    learning_starts: int = 500
    """Env steps of random play before the first update."""
    batch_size: int = 64
    """Transitions per gradient step."""
    tau: float = 1.0
    """Target-network update coefficient (1: hard copy)."""
    train_freq: int = 4
    """Env steps (per env copy) between updates."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    target_update_interval: int = 200
    """Env steps between target-network updates."""
    exploration_fraction: float = 0.2
    """Share of ``total_timesteps`` over which epsilon decays linearly."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start."""
    exploration_final_eps: float = 0.05
    """Epsilon after the decay."""
    max_grad_norm: float = 10.0
    """Gradient clipping norm."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.exploration_final_eps <= self.exploration_initial_eps <= 1.0:
            raise ValueError(f"need 0 <= exploration_final_eps ({self.exploration_final_eps}) <= "
                             f"exploration_initial_eps ({self.exploration_initial_eps}) <= 1")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size={self.batch_size} exceeds buffer_size={self.buffer_size}: raise the buffer")


@dataclass
class MaskablePPOConfig(SB3Config):
    """PPO with invalid-action masking (sb3-contrib), ``algorithm=maskable_ppo``."""

    algorithm: ClassVar[SB3Algorithm] = SB3Algorithm.maskable_ppo

    total_timesteps: int = 40_000
    """Env steps of training, summed over the ``n_envs`` copies."""
    n_envs: int = 8
    """Env copies stepped together (SB3's ``DummyVecEnv``)."""
    log_interval: int = 1
    """How often SB3 reports ``train/*`` and ``rollout/*`` metrics, in rollouts."""
    n_steps: int = 64
    """Steps per env copy in each rollout (a rollout is ``n_steps * n_envs`` transitions)."""
    batch_size: int = 128
    """Minibatch size of the update."""
    n_epochs: int = 10
    """Passes over each rollout."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    clip_range: float = 0.2
    """PPO's ratio clip."""
    ent_coef: float = 0.0
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value-loss weight."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.n_steps * self.n_envs) % self.batch_size:
            raise ValueError(f"batch_size={self.batch_size} should divide n_steps * n_envs = "
                             f"{self.n_steps * self.n_envs}, or the last minibatch of every epoch is truncated")


class SB3Learner:
    """Trains an :class:`SB3Policy` with the algorithm its config names (DQN or MaskablePPO)."""

    def __init__(self, config: SB3Config, seed: int = 0) -> None:
        self.config = config
        self.seed = seed

    def learn(
        self, env_fn: Callable[[], gym.Env], policy: SB3Policy, callbacks: Sequence[Callback] = ()
    ) -> SB3Policy:
        cfg = self.config
        if not isinstance(policy, SB3Policy):
            raise TypeError(f"{cfg.algorithm.value} trains a stable-baselines3 policy (policy=sb3), "
                            f"not {type(policy).__name__}")
        model_class = cfg.algorithm.model_class()
        import torch
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.logger import Logger

        from textgym.algorithms.sb3_callbacks import CallbackBridge, MetricsWriter

        env = make_vec_env(lambda: policy.wrap(env_fn()), n_envs=cfg.n_envs, seed=self.seed)
        model = model_class("MlpPolicy", env, seed=self.seed, verbose=0, **cfg.model_kwargs())
        # SB3 seeds the first env and the action space alike, so its random actions would replay the env's
        # own draws (exploration would guess every GuessNumber secret at once): give actions their own stream
        model.action_space.seed(int(np.random.SeedSequence(self.seed).generate_state(1)[0]))
        policy.attach(model, cfg.algorithm)
        callback = CallbackList(callbacks)
        ctx = TrainingContext(total_episodes=0, total_env_steps=cfg.total_timesteps)
        model.set_logger(Logger(folder=None, output_formats=[MetricsWriter(callback, ctx)]))
        eval_env = vector_env(env_fn, cfg.eval_num_envs) if cfg.eval_every else None

        def evaluation() -> dict[str, float]:
            return evaluate(eval_env, policy, cfg.eval_episodes, seed=self.seed + ctx.env_steps).metrics()

        bridge = CallbackBridge(callback, ctx, evaluation if eval_env is not None else None, cfg.eval_every)
        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.torch_threads or threads)
        try:
            model.learn(cfg.total_timesteps, callback=bridge, log_interval=cfg.log_interval)
        finally:
            torch.set_num_threads(threads)
        env.close()
        if eval_env is not None:
            eval_env.close()
        return policy
