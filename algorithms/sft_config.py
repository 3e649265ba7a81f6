"""SFT's configuration (``algorithm=sft``); free of torch so that the CLI imports it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textgym.algorithms.imitation_config import ImitationConfig


@dataclass
class SFTConfig(ImitationConfig):
    """Supervised fine-tuning of an LLM policy's LoRA adapters on recorded episodes, with TRL's SFTTrainer
    (``algorithm=sft``). The loss is the mean negative log-likelihood per answer token (the action's tokens and
    the end token) of a batch, as the policy computes it in generate mode: through its own forward pass, at its
    ``temperature``, after prompts built exactly as the policy builds them."""

    algorithm_class: ClassVar[str] = "textgym.algorithms.sft:SFT"
    checkpoints: ClassVar[bool] = False  # the trainer runs in one call; rerun it instead

    epochs: float = 2.0
    """Passes over the selected turns."""
    learning_rate: float = 5e-4
    """AdamW's learning rate of the adapters (LoRA wants more than full fine-tuning's usual 2e-5)."""
    batch_size: int = 8
    """Turns per optimizer step."""
    logging_steps: int = 5
    """Optimizer steps between logged losses (``train/loss``)."""
    bf16: bool = False
    """bf16 autocast in the forward and backward passes (faster on GPUs); the weights keep their dtype. The policy
    acts in its own dtype, so bf16 trains an approximation of the function that acts (log-probs differ by up to
    ~0.3 nats on SmolLM2), and the frozen layers' outputs it caches are bf16-computed."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise ValueError(f"epochs={self.epochs} and learning_rate={self.learning_rate} must be > 0")
        if self.batch_size < 1 or self.logging_steps < 1:
            raise ValueError(f"batch_size={self.batch_size} and logging_steps={self.logging_steps} must be >= 1")
