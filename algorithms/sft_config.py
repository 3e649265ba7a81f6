"""SFT's configuration (``algorithm=sft``); free of torch so that the CLI imports it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textgym.algorithms.base import AlgorithmConfig
from enum import Enum


class Keep(str, Enum):
    """Which recorded episodes SFT imitates."""

    all = "all"
    """Every episode (e.g. an oracle's)."""
    success = "success"
    """The episodes that succeeded."""
    best = "best"
    """Per task (reset seed), the episode with the highest return: best-of-k when each task ran k times
    (``textgym collect trials=k``), e.g. with a sampling LLM policy."""


@dataclass
class SFTConfig(AlgorithmConfig):
    """Supervised fine-tuning of an LLM policy's LoRA adapters on recorded episodes, with TRL's SFTTrainer
    (``algorithm=sft``). The loss is on the answers only (the action and the end token), after prompts built
    exactly as the policy builds them."""

    algorithm_class: ClassVar[str] = "textgym.algorithms.sft:SFT"
    checkpoints: ClassVar[bool] = False  # the trainer runs in one call; rerun it instead

    dataset: str
    """A directory written by ``textgym collect`` (required)."""
    keep: Keep = Keep.success
    """Which episodes to imitate: ``all``, ``success`` or ``best`` (best-of-k per task)."""
    epochs: float = 2.0
    """Passes over the selected turns."""
    learning_rate: float = 5e-4
    """AdamW's learning rate of the adapters (LoRA wants more than full fine-tuning's usual 2e-5)."""
    batch_size: int = 8
    """Turns per optimizer step."""
    lr_scheduler: str = "constant"
    """A transformers scheduler name (``constant``, ``linear``, ``cosine``, ...)."""
    logging_steps: int = 5
    """Optimizer steps between logged losses (``train/loss``)."""
    bf16: bool = True
    """bf16 autocast in the forward and backward passes (faster, also on CPUs); the weights keep their dtype."""
    cpu: bool = False
    """Train on the CPU even where a GPU is present."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.keep = Keep(self.keep)
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise ValueError(f"epochs={self.epochs} and learning_rate={self.learning_rate} must be > 0")
        if self.batch_size < 1 or self.logging_steps < 1:
            raise ValueError(f"batch_size={self.batch_size} and logging_steps={self.logging_steps} must be >= 1")
