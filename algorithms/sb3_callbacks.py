"""The stable-baselines3 side of textgym's callbacks: an SB3 callback and an SB3 log writer.

:class:`CallbackBridge` turns SB3's steps into textgym callback calls (each finished episode, the
periodic evaluations); :class:`MetricsWriter` hands SB3's own logged values to ``on_log``, so they
reach W&B through :class:`~textgym.algorithms.callbacks.LogMetrics` like every other metric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

from textgym.algorithms.evaluation import Episode

if TYPE_CHECKING:
    from textgym.algorithms.base import Algorithm


class MetricsWriter(KVWriter):
    """Sends stable-baselines3's logged values (``train/loss``, ``rollout/ep_rew_mean``, ...) to ``on_log``."""

    def __init__(self, on_log: Callable[[dict[str, float]], None]) -> None:
        self.on_log = on_log

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        self.on_log({k: float(v) for k, v in key_values.items() if isinstance(v, (int, float, np.number))})

    def close(self) -> None:
        pass


class CallbackBridge(BaseCallback):
    """An SB3 callback that drives textgym's lifecycle: each finished episode goes to the callbacks, each step
    to :meth:`~textgym.algorithms.base.Algorithm.on_progress` (evaluations, checkpoints, signals)."""

    def __init__(self, algorithm: Algorithm) -> None:
        super().__init__()
        self.algorithm = algorithm
        self.keep = True
        """False once a callback asked to stop."""

    def _on_step(self) -> bool:
        ctx, callbacks = self.algorithm.ctx, self.algorithm.callback
        ctx.env_steps = self.num_timesteps
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if done:  # Monitor's "episode" entry and the text env's final info
                ctx.episode += 1
                ctx.last_episode = Episode(float(info["episode"]["r"]), int(info["episode"]["l"]),
                                           bool(info["success"]), int(info["invalid_actions"]))
                self.keep = callbacks.on_episode_end(ctx) and self.keep
        return self.algorithm.on_progress() and self.keep
