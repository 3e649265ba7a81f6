"""What the TRL-trained algorithms (SFT, GRPO) share: the lifecycle around a transformers ``Trainer``.

The trainer runs its own loop, so one iteration is the whole ``trainer.train()``; its callback
(:class:`TrainerLogs`) reports each optimizer step to the lifecycle (periodic evaluations, signals) and
each numeric log entry to textgym's callbacks as ``train/<name>``. There are no episodes in supervised
steps: ``ctx.update`` and ``ctx.episode`` (the loggers' step axis) both count optimizer steps.
"""

from __future__ import annotations

import tempfile
from typing import Any

from accelerate.state import AcceleratorState
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from textgym.algorithms.base import Algorithm, ConfigT
from textgym.policies.llm import LLMPolicy


class TrainerLogs(TrainerCallback):
    """Hands a transformers trainer's steps and logs to an :class:`Algorithm`'s lifecycle and callbacks."""

    def __init__(self, algorithm: Algorithm) -> None:
        self.algorithm = algorithm

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs) -> None:
        ctx = self.algorithm.ctx
        ctx.update = ctx.episode = state.global_step
        metrics = {f"train/{k}": float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        self.algorithm.callback.on_log(ctx, metrics)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        ctx = self.algorithm.ctx
        ctx.update = ctx.episode = state.global_step
        self.algorithm.on_progress()


class TRLAlgorithm(Algorithm[ConfigT, LLMPolicy]):
    """An algorithm whose iterations are a transformers ``Trainer``'s: subclasses build ``self.trainer`` in
    ``_setup`` and say how many optimizer steps it will take."""

    policy_type = LLMPolicy
    policy_option = "an LLM policy (policy=llm)"
    unit = "optimizer steps"

    trainer: Trainer
    steps: int = 1
    """The trainer's optimizer steps, for the progress bar and :meth:`budget`."""

    def scratch_dir(self) -> str:
        """A temporary output dir for the trainer (nothing is saved there), removed when the run ends."""
        self._scratch = tempfile.TemporaryDirectory(prefix=f"textgym-{self.name.lower()}-")
        return self._scratch.name

    def _close(self) -> None:
        super()._close()
        if getattr(self, "_scratch", None) is not None:
            self._scratch.cleanup()

    def progress(self) -> int:
        return self.ctx.update

    def budget(self) -> int:
        return self.steps

    def trainer_callbacks(self) -> list[Any]:
        """The callbacks to give the trainer."""
        return [TrainerLogs(self)]

    def _iterate(self) -> bool:
        self.trainer.remove_callback(PrinterCallback)  # logs go to the textgym callbacks, not stdout
        try:
            self.trainer.train()
        finally:
            AcceleratorState._reset_state()  # process-wide: PPO's Accelerator may then set its own precision
            self.policy.lm.eval()
        return False  # the trainer's loop has run the whole budget
