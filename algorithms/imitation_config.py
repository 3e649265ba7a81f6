"""What the imitation algorithms' configs share (``algorithm=bc``, ``algorithm=sft``); free of torch so that the
CLI imports it cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from textgym.algorithms.base import AlgorithmConfig


class Keep(str, Enum):
    """Which recorded episodes imitation learns from."""

    all = "all"
    """Every episode (e.g. an oracle's)."""
    success = "success"
    """The episodes that succeeded."""
    best = "best"
    """Per task (reset seed), the episode with the highest return: best-of-k when each task ran k times
    (``textgym collect trials=k``), e.g. with a sampling LLM policy."""


SCHEDULERS = ("constant", "linear", "cosine", "cosine_with_restarts", "polynomial")
"""transformers' learning-rate schedules that need no warmup or other argument."""


@dataclass
class ImitationConfig(AlgorithmConfig):
    """Learning an LLM policy's adapters from the recorded episodes of a ``textgym collect`` dataset, through the
    policy's own forward pass (instructions prefix cached with the adapters off, frozen lower layers cached, LoRA
    on the top layers), in micro-batches of at most ``token_budget`` tokens."""

    dataset: Any
    """A directory written by ``textgym collect``, or a list of them imitated together (required): e.g. DAgger's
    aggregate, the oracle's episodes and the clone's own episodes labelled by the oracle
    (``textgym collect policy=llm policy.init_from=<clone> policy@expert=oracle``)."""
    keep: Keep = Keep.success
    """Which episodes to imitate: ``all``, ``success`` or ``best`` (best-of-k per task). A dataset labelled by an
    expert is imitated whole (its labels are the expert's actions, whatever became of the episode)."""
    token_budget: int = 4096
    """Most tokens in the trainable layers per micro-batch (gradients summed to the whole batch's, as in PPO)."""
    cpu: bool = False
    """Train on the CPU even where a GPU is present."""
    lr_scheduler: str = "constant"
    """The learning rate's schedule over the run, without warmup (transformers' schedulers): ``constant``, ``linear``
    (decayed to 0 at the last step, TRL's default), ``cosine``, ``cosine_with_restarts`` or ``polynomial``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.keep = Keep(self.keep)
        if self.lr_scheduler not in SCHEDULERS:
            raise ValueError(f"lr_scheduler={self.lr_scheduler!r}: choose one of {', '.join(SCHEDULERS)}")
        if self.token_budget < 1:
            raise ValueError(f"token_budget={self.token_budget} must be >= 1 (tokens per micro-batch)")
        if not self.datasets or not all(isinstance(d, str) and d for d in self.datasets):
            raise ValueError(f"dataset={self.dataset!r}: give a directory written by textgym collect, or a list of "
                             "them")

    @property
    def datasets(self) -> list[str]:
        """The dataset directories (``dataset`` as a list)."""
        return [self.dataset] if isinstance(self.dataset, str) else list(self.dataset or [])
