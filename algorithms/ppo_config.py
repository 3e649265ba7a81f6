"""PPO's configuration (``algorithm=ppo``); free of torch so that the CLI imports it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from textgym.algorithms.base import AlgorithmConfig


class LRSchedule(str, Enum):
    """How the learning rates change over the updates."""

    constant = "constant"
    """The same rate throughout."""
    linear = "linear"
    """Linearly down to zero at the last update (CleanRL's ``anneal_lr``)."""


class MixedPrecision(str, Enum):
    """Accelerate's mixed precision of the forward and backward passes."""

    no = "no"
    bf16 = "bf16"
    fp16 = "fp16"


@dataclass
class PPOConfig(AlgorithmConfig):
    """Multi-turn PPO on an LLM policy: one sample per env step (turn), GAE over turns (``algorithm=ppo``).

    Defaults are the recipe under which SmolLM2-135M + LoRA learns text FrozenLake in CPU-minutes (STACK.md).
    The batch of one update is ``num_envs * num_steps`` turns per process. Progress is counted in updates:
    ``eval_every`` and ``checkpoint_every`` are updates.
    """

    algorithm_class: ClassVar[str] = "textgym.algorithms.ppo:PPO"

    total_updates: int = 40
    """Updates (rollout, then optimisation) in the run. 0: no update; the run only evaluates the policy it
    starts from (``policy.init_from``, e.g. a BC clone) as it would a trained one."""
    num_envs: int = 32
    """Envs stepped together, per process."""
    num_steps: int = 12
    """Steps per env in each rollout."""
    gamma: float = 0.95
    """Discount factor over turns."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    learning_rate: float = 3e-4
    """Adam's learning rate of the adapters."""
    value_learning_rate: float = 1e-3
    """Adam's learning rate of the value head."""
    lr_schedule: LRSchedule = LRSchedule.constant
    """Constant, or linear decay to zero."""
    update_epochs: int = 4
    """Passes over each batch."""
    num_minibatches: int = 1
    """Minibatches (optimizer steps) per pass."""
    token_budget: int | None = None
    """Most tokens in the trainable layers per micro-batch of an update; a minibatch runs as as many micro-batches
    as it needs, their gradients summed to the one-pass gradient before its step, so memory does not grow with
    the batch. Equal states stay in one micro-batch (one forward); a state longer than the budget runs alone.
    None: automatic, the largest budget up to 4096 whose estimated peak fits half the memory available at set-up."""
    clip_coef: float = 0.2
    """PPO's ratio clip."""
    clip_value_loss: bool = True
    """Clip the value loss around the rollout's values, as in CleanRL's ``clip_vloss``."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    kl_coef: float = 0.0
    """Weight of the KL penalty to the reference policy (the model with adapters disabled); 0 skips it."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""
    target_kl: float | None = None
    """Stop an update's epochs once the approximate KL to the rollout policy exceeds this (None never stops)."""
    normalize_advantages: bool = True
    """Whiten advantages over the whole batch (all processes)."""
    mixed_precision: MixedPrecision = MixedPrecision.no
    """Accelerate's mixed precision: old and new log-probs then both come from the same precision."""
    cpu: bool = False
    """Run on the CPU even where a GPU is present (also the way to test several processes with gloo)."""
    checkpoint_every: int = 10
    """Updates between checkpoints (with a checkpoint dir; ``textgym train`` gives the run's)."""
    eval_every: int = 0
    """Updates between evaluations through the shared evaluation path (0: none); on envs with exact ground
    truth they also measure the value head against it (``eval/value_*``, see ``algorithms.value_calibration``)."""
    eval_episodes: int = 64
    """Episodes per evaluation."""
    eval_num_envs: int = 32
    """Vector-env slots of the evaluations (one policy batch)."""
    transcripts: int = 2
    """Finished episodes kept per update as sample transcripts (logged as a table)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.lr_schedule = LRSchedule(self.lr_schedule)
        self.mixed_precision = MixedPrecision(self.mixed_precision)
        if self.total_updates < 0:
            raise ValueError(f"total_updates={self.total_updates} must be >= 0 (0 only evaluates the policy)")
        if min(self.num_envs, self.num_steps, self.update_epochs) < 1:
            raise ValueError("num_envs, num_steps and update_epochs must all be >= 1")
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.gae_lambda <= 1.0):
            raise ValueError(f"gamma={self.gamma} and gae_lambda={self.gae_lambda} must be in [0, 1]")
        batch = self.num_envs * self.num_steps
        if self.num_minibatches < 1 or batch % self.num_minibatches:
            raise ValueError(
                f"the batch of num_envs * num_steps = {batch} turns must split evenly into num_minibatches = "
                f"{self.num_minibatches} minibatches: change num_envs, num_steps or num_minibatches"
            )
        if self.token_budget is not None and self.token_budget < 1:
            raise ValueError(f"token_budget={self.token_budget} must be >= 1, or null for automatic")
        if min(self.learning_rate, self.value_learning_rate, self.clip_coef, self.max_grad_norm) <= 0:
            raise ValueError("learning_rate, value_learning_rate, clip_coef and max_grad_norm must be > 0")
        if min(self.value_coef, self.entropy_coef, self.kl_coef) < 0:
            raise ValueError("value_coef, entropy_coef and kl_coef must be >= 0")

    @property
    def batch_size(self) -> int:
        """Turns per update and process."""
        return self.num_envs * self.num_steps
