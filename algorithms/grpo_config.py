"""GRPO's configuration (``algorithm=grpo``); free of torch so that the CLI imports it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textgym.algorithms.base import AlgorithmConfig


@dataclass
class GRPOConfig(AlgorithmConfig):
    """TRL's ``GRPOTrainer`` on a textgym env through ``environment_factory`` (``algorithm=grpo``).

    Each rollout plays one episode by tool calls (the env's actions) and is scored by the env's return;
    ``num_generations`` rollouts of the same task (reset seed) form a group whose rewards are compared.
    Only the policy's LoRA adapters train. Names follow TRL's ``GRPOConfig`` where they match.
    """

    algorithm_class: ClassVar[str] = "textgym.algorithms.grpo:GRPO"
    checkpoints: ClassVar[bool] = False  # the trainer runs in one call; rerun it instead

    max_steps: int = 50
    """Optimizer steps."""
    tasks: int = 64
    """Reset seeds 0 .. tasks-1 form the training set (one row each)."""
    num_generations: int = 4
    """Rollouts per task and group."""
    per_device_train_batch_size: int = 8
    """Rollouts per optimizer step (a multiple of ``num_generations``)."""
    max_completion_length: int = 256
    """Most tokens of a whole rollout (tool calls and tool replies together)."""
    max_tool_calling_iterations: int = 12
    """Most tool calls (env steps) per rollout."""
    learning_rate: float = 1e-4
    """AdamW's learning rate of the adapters."""
    beta: float = 0.0
    """Weight of the KL to the reference (the model with its adapters disabled); 0 skips it."""
    temperature: float = 1.0
    """Sampling temperature of the rollouts."""
    logging_steps: int = 1
    """Optimizer steps between logged metrics (``train/reward``, ``train/loss``, ...)."""
    bf16: bool = False
    """bf16 autocast in the forward and backward passes."""
    cpu: bool = False
    """Train on the CPU even where a GPU is present."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.max_steps, self.tasks, self.max_completion_length, self.max_tool_calling_iterations,
               self.logging_steps) < 1:
            raise ValueError("max_steps, tasks, max_completion_length, max_tool_calling_iterations and logging_steps "
                             "must all be >= 1")
        if self.num_generations < 2:
            raise ValueError(f"num_generations={self.num_generations}: GRPO compares rollouts within a group, use >= 2")
        if self.per_device_train_batch_size % self.num_generations:
            raise ValueError(f"per_device_train_batch_size={self.per_device_train_batch_size} must be a multiple of "
                             f"num_generations={self.num_generations}: each step takes whole groups")
        if self.learning_rate <= 0 or self.temperature <= 0 or self.beta < 0:
            raise ValueError("learning_rate and temperature must be > 0, beta >= 0")
