"""Callbacks: hooks that training calls at fixed points, in the manner of stable-baselines3.

A callback gets a :class:`TrainingContext` (never the trainer's locals); returning ``False`` from
:meth:`Callback.on_episode_end` stops training.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from textgym.algorithms.evaluation import Episode


@dataclass
class TrainingContext:
    """What callbacks may read: progress counters and the latest episode and evaluation."""

    total_episodes: int
    episode: int = 0
    env_steps: int = 0
    last_episode: Episode | None = None
    last_eval: dict[str, float] = field(default_factory=dict)


class Logger(Protocol):
    """Where metrics go (W&B, or nowhere)."""

    def log(self, metrics: dict[str, float], step: int) -> None: ...


class Callback:
    """Base class; override the hooks you need."""

    def on_training_start(self, ctx: TrainingContext) -> None:
        """Before the first episode."""

    def on_episode_end(self, ctx: TrainingContext) -> bool:
        """After each training episode; return False to stop training."""
        return True

    def on_eval(self, ctx: TrainingContext) -> None:
        """After each periodic evaluation (``ctx.last_eval`` holds its metrics)."""

    def on_training_end(self, ctx: TrainingContext) -> None:
        """After the last episode."""


class CallbackList(Callback):
    """Several callbacks called in order; training stops if any asks to."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_training_start(self, ctx: TrainingContext) -> None:
        for callback in self.callbacks:
            callback.on_training_start(ctx)

    def on_episode_end(self, ctx: TrainingContext) -> bool:
        return all([callback.on_episode_end(ctx) for callback in self.callbacks])

    def on_eval(self, ctx: TrainingContext) -> None:
        for callback in self.callbacks:
            callback.on_eval(ctx)

    def on_training_end(self, ctx: TrainingContext) -> None:
        for callback in self.callbacks:
            callback.on_training_end(ctx)


class LogMetrics(Callback):
    """Sends training-episode averages (``rollout/...``) and evaluations (``eval/...``) to a logger.

    The step axis is the number of training episodes.
    """

    def __init__(self, logger: Logger, every: int = 100) -> None:
        self.logger, self.every = logger, every
        self.window: list[Episode] = []

    def on_episode_end(self, ctx: TrainingContext) -> bool:
        self.window.append(ctx.last_episode)
        if len(self.window) >= self.every:
            n = len(self.window)
            self.logger.log(
                {
                    "rollout/success_rate": sum(e.success for e in self.window) / n,
                    "rollout/mean_return": sum(e.reward for e in self.window) / n,
                    "rollout/mean_length": sum(e.length for e in self.window) / n,
                    "rollout/env_steps": ctx.env_steps,
                },
                step=ctx.episode,
            )
            self.window.clear()
        return True

    def on_eval(self, ctx: TrainingContext) -> None:
        self.logger.log({f"eval/{k}": v for k, v in ctx.last_eval.items()}, step=ctx.episode)


class ProgressBar(Callback):
    """A rich progress bar of episodes with the running success rate; silent off a terminal and in CI."""

    def __init__(self, window: int = 100) -> None:
        self.recent: deque[bool] = deque(maxlen=window)
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("success {task.fields[success]:.2f}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not sys.stderr.isatty() or bool(os.environ.get("CI")),
        )
        self.task = None

    def on_training_start(self, ctx: TrainingContext) -> None:
        self.progress.start()
        self.task = self.progress.add_task("train", total=ctx.total_episodes, success=0.0)

    def on_episode_end(self, ctx: TrainingContext) -> bool:
        self.recent.append(ctx.last_episode.success)
        if ctx.episode % 50 == 0 or ctx.episode == ctx.total_episodes:
            self.progress.update(self.task, completed=ctx.episode, success=sum(self.recent) / len(self.recent))
        return True

    def on_training_end(self, ctx: TrainingContext) -> None:
        self.progress.stop()


class EvalHistory(Callback):
    """Keeps every periodic evaluation as ``(episode, metrics)`` rows, for learning curves."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []

    def on_eval(self, ctx: TrainingContext) -> None:
        self.rows.append((ctx.episode, dict(ctx.last_eval)))
