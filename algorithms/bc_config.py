"""Behaviour cloning's configuration (``algorithm=bc``); free of torch so that the CLI imports it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textgym.algorithms.imitation_config import ImitationConfig


@dataclass
class BCConfig(ImitationConfig):
    """Behaviour cloning of recorded episodes through the LLM policy's own scoring (``algorithm=bc``).

    The loss is ``-log pi(a* | s)`` of the recorded action as the policy acts: in score mode the softmax over
    the valid actions, in generate mode the answer's token log-probs; computed by the very forward pass that
    acts and that PPO trains (instructions prefix cached with adapters off, frozen lower layers cached, LoRA
    on the top layers). Progress is counted in optimizer steps: ``eval_every`` and ``checkpoint_every`` are steps
    (an epoch is ``ceil(turns / batch_size)`` of them).
    """

    algorithm_class: ClassVar[str] = "textgym.algorithms.bc:BC"

    epochs: int = 8
    """Passes over the selected turns."""
    batch_size: int = 32
    """Turns per optimizer step."""
    learning_rate: float = 1e-3
    """AdamW's learning rate of the adapters."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.epochs, self.batch_size) < 1:
            raise ValueError(f"epochs={self.epochs} and batch_size={self.batch_size} must both be >= 1")
        if self.learning_rate <= 0 or self.max_grad_norm <= 0:
            raise ValueError(f"learning_rate={self.learning_rate} and max_grad_norm={self.max_grad_norm} must be > 0")
