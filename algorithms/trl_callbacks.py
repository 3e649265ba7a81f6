"""Hands a TRL (transformers) trainer's logs to textgym callbacks, as ``train/<name>`` metrics."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from textgym.algorithms.callbacks import Callback, CallbackList, TrainingContext


class TrainerLogs(TrainerCallback):
    """Calls ``on_training_start``, ``on_log`` (each numeric log entry as ``train/<name>``) and
    ``on_training_end`` of textgym callbacks from a transformers ``Trainer``.

    There are no episodes in supervised steps: ``ctx.update`` and ``ctx.episode`` (the loggers' step axis)
    both count optimizer steps.
    """

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callback = CallbackList(callbacks)
        self.ctx = TrainingContext(total_episodes=0)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self.callback.on_training_start(self.ctx)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs) -> None:
        self.ctx.update = self.ctx.episode = state.global_step
        metrics = {f"train/{k}": float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        self.callback.on_log(self.ctx, metrics)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self.callback.on_training_end(self.ctx)
