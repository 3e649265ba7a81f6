"""The stable-baselines3 side of textgym's callbacks: an SB3 callback and an SB3 log writer.

:class:`CallbackBridge` turns SB3's steps into textgym callback calls (each finished episode, the
periodic evaluations); :class:`MetricsWriter` hands SB3's own logged values to ``on_log``, so they
reach W&B through :class:`~textgym.algorithms.callbacks.LogMetrics` like every other metric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

from textgym.algorithms.callbacks import Callback, TrainingContext
from textgym.algorithms.evaluation import Episode


class MetricsWriter(KVWriter):
    """Sends stable-baselines3's logged values (``train/loss``, ``rollout/ep_rew_mean``, ...) to callbacks."""

    def __init__(self, callbacks: Callback, ctx: TrainingContext) -> None:
        self.callbacks, self.ctx = callbacks, ctx

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        numbers = {k: float(v) for k, v in key_values.items() if isinstance(v, (int, float, np.number))}
        self.callbacks.on_log(self.ctx, numbers)

    def close(self) -> None:
        pass


class CallbackBridge(BaseCallback):
    """An SB3 callback that drives textgym callbacks: each finished episode, periodic evaluations."""

    def __init__(
        self, callbacks: Callback, ctx: TrainingContext, evaluation: Callable[[], dict[str, float]] | None, every: int
    ) -> None:
        super().__init__()
        self.callbacks, self.ctx, self.evaluation, self.every = callbacks, ctx, evaluation, every
        self.next_eval = every

    def _on_training_start(self) -> None:
        self.callbacks.on_training_start(self.ctx)

    def _on_step(self) -> bool:
        ctx, keep = self.ctx, True
        ctx.env_steps = self.num_timesteps
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if done:  # Monitor's "episode" entry and the text env's final info
                ctx.episode += 1
                ctx.last_episode = Episode(float(info["episode"]["r"]), int(info["episode"]["l"]),
                                           bool(info["success"]), int(info["invalid_actions"]))
                keep = self.callbacks.on_episode_end(ctx) and keep
        if self.evaluation is not None and self.num_timesteps >= self.next_eval:
            self.next_eval += self.every * (1 + (self.num_timesteps - self.next_eval) // self.every)
            ctx.last_eval = self.evaluation()
            self.callbacks.on_eval(ctx)
        return keep

    def _on_training_end(self) -> None:
        self.callbacks.on_training_end(self.ctx)
