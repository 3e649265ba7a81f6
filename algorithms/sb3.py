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
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from textgym.algorithms.base import Algorithm, AlgorithmConfig
from textgym.policies.sb3 import SB3Algorithm, SB3Policy


@dataclass
class SB3Config(AlgorithmConfig):
    """What every SB3 baseline shares; the remaining fields of a subclass are SB3's own arguments.

    Progress is counted in env steps: ``eval_every`` and ``checkpoint_every`` are env steps."""

    algorithm_class: ClassVar[str] = "textgym.algorithms.sb3:SB3Learner"
    algorithm: ClassVar[SB3Algorithm]
    learner_fields: ClassVar[frozenset[str]] = frozenset(
        {"total_timesteps", "net_arch", "n_envs", "log_interval", "eval_every", "eval_episodes", "eval_num_envs",
         "torch_threads", "checkpoint_every", "keep_checkpoints"}
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
    checkpoint_every: int = 10_000
    """Env steps between checkpoints (with a checkpoint dir; ``textgym train`` gives the run's)."""
    device: str = "cpu"
    """Torch device ("auto" takes a GPU when there is one; small MLPs are fastest on the CPU)."""
    torch_threads: int | None = 1
    """Torch's CPU threads while training (restored after): small MLPs run several times faster on one
    thread than on two contended cores; None keeps torch's setting."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("total_timesteps", "n_envs", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
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


class SB3Learner(Algorithm[SB3Config, SB3Policy]):
    """Trains an :class:`SB3Policy` with the algorithm its config names (DQN or MaskablePPO).

    SB3 runs its own loop (one iteration is the rest of ``model.learn``); its callback reports every step
    to :meth:`on_progress`, so evaluations, checkpoints and signals work as for every algorithm. A
    checkpoint holds the network and optimizer (safetensors and ``weights_only`` tensors), DQN's replay
    buffer (``.npz`` arrays) and SB3's counters; a resumed run restarts its episodes (SB3 resets the envs).
    """

    policy_type = SB3Policy
    policy_option = "a stable-baselines3 policy (policy=sb3)"
    unit = "env steps"
    checkpoint_prefix = "step"

    @property
    def name(self) -> str:
        return self.config.algorithm.value

    def progress(self) -> int:
        return self.ctx.env_steps

    def budget(self) -> int:
        return self.config.total_timesteps

    def _setup(self) -> None:
        cfg, policy = self.config, self.policy
        import torch
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.logger import Logger

        from textgym.algorithms.sb3_callbacks import MetricsWriter

        self.ctx.total_env_steps = cfg.total_timesteps
        env = self.closing(make_vec_env(lambda: policy.wrap(self.env_fn()), n_envs=cfg.n_envs, seed=self.seed))
        self.model = cfg.algorithm.model_class()("MlpPolicy", env, seed=self.seed, verbose=0, **cfg.model_kwargs())
        # SB3 seeds the first env and the action space alike, so its random actions would replay the env's
        # own draws (exploration would guess every GuessNumber secret at once): give actions their own stream
        self.model.action_space.seed(int(np.random.SeedSequence(self.seed).generate_state(1)[0]))
        policy.attach(self.model, cfg.algorithm)
        self.model.set_logger(Logger(folder=None, output_formats=[MetricsWriter(self.callback_proxy)]))
        self.threads = torch.get_num_threads()

    def callback_proxy(self, metrics: dict[str, float]) -> None:
        """Where SB3's logged values go: the callbacks' ``on_log`` (set up after :meth:`_setup`)."""
        self.callback.on_log(self.ctx, metrics)

    def _iterate(self) -> bool:
        import torch

        from textgym.algorithms.sb3_callbacks import CallbackBridge

        cfg, bridge = self.config, CallbackBridge(self)
        torch.set_num_threads(cfg.torch_threads or self.threads)
        try:  # SB3 counts the rest of the budget from model.num_timesteps (restored on resume)
            self.model.learn(cfg.total_timesteps - self.model.num_timesteps, callback=bridge,
                             log_interval=cfg.log_interval, reset_num_timesteps=False)
        finally:
            torch.set_num_threads(self.threads)
        return bridge.keep

    # ---- checkpoints ----------------------------------------------------------------------------
    COUNTERS: ClassVar[tuple[str, ...]] = ("num_timesteps", "_n_updates", "_episode_num", "_n_calls")

    def _save(self, directory: Path) -> None:
        import torch
        from safetensors.torch import save_file

        model = self.model
        save_file({k: v.contiguous() for k, v in model.policy.state_dict().items()}, directory / "sb3_weights.safetensors")
        torch.save(model.policy.optimizer.state_dict(), directory / "sb3_optimizer.pt")
        counters = {name: int(getattr(model, name)) for name in self.COUNTERS if hasattr(model, name)}
        (directory / "sb3_counters.json").write_text(json.dumps(counters))
        buffer = getattr(model, "replay_buffer", None)
        if buffer is not None:
            arrays = {k: getattr(buffer, k) for k in ("observations", "next_observations", "actions", "rewards",
                                                      "dones", "timeouts") if getattr(buffer, k, None) is not None}
            np.savez(directory / "replay_buffer.npz", pos=buffer.pos, full=buffer.full, **arrays)

    def _restore(self, directory: Path) -> None:
        import torch
        from safetensors.torch import load_file

        model = self.model
        model.policy.load_state_dict(load_file(directory / "sb3_weights.safetensors"))
        model.policy.optimizer.load_state_dict(torch.load(directory / "sb3_optimizer.pt", weights_only=True))
        for name, value in json.loads((directory / "sb3_counters.json").read_text()).items():
            setattr(model, name, value)
        buffer_file = directory / "replay_buffer.npz"
        if buffer_file.exists():
            with np.load(buffer_file, allow_pickle=False) as saved:
                buffer = model.replay_buffer
                for key in saved.files:
                    if key not in ("pos", "full"):
                        getattr(buffer, key)[...] = saved[key]
                buffer.pos, buffer.full = int(saved["pos"]), bool(saved["full"])
