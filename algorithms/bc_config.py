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
    """Passes over the selected turns (0 with ``hard_epochs`` to go on from a clone: ``policy.init_from``)."""
    hard_epochs: int = 0
    """Then passes over the hard turns only: those whose ``-log pi(a* | s)`` exceeds ``hard_loss`` when the
    first of them starts (scored once, without gradients). The turns a clone still misses, such as
    CustomerService's act-or-refuse decisions, are a few in a hundred; these passes spend the steps on them."""
    hard_loss: float = 0.1
    """A turn is hard above this loss (``pi(a* | s)`` below ``exp(-hard_loss)``: 0.905 at 0.1)."""
    batch_size: int = 32
    """Turns per optimizer step."""
    learning_rate: float = 1e-3
    """AdamW's learning rate of the adapters."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")
        if min(self.epochs, self.hard_epochs) < 0 or self.epochs + self.hard_epochs < 1:
            raise ValueError(f"epochs={self.epochs} and hard_epochs={self.hard_epochs} must be >= 0, with at least one "
                             "epoch between them")
        if self.hard_epochs and self.lr_scheduler != "constant":
            raise ValueError(f"lr_scheduler={self.lr_scheduler!r} needs the run's length, which "
                             f"hard_epochs={self.hard_epochs} leaves unknown until the hard turns are scored: use "
                             "lr_scheduler=constant with them")
        if self.hard_loss <= 0:
            raise ValueError(f"hard_loss={self.hard_loss} must be > 0 (a loss -log pi)")
        if self.learning_rate <= 0 or self.max_grad_norm <= 0:
            raise ValueError(f"learning_rate={self.learning_rate} and max_grad_norm={self.max_grad_norm} must be > 0")
