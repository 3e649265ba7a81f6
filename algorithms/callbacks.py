"""Callbacks: hooks that training calls at fixed points, in the manner of stable-baselines3.

A callback gets a :class:`TrainingContext` (never the trainer's locals); returning ``False`` from
:meth:`Callback.on_episode_end` stops training.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from textgym.algorithms.evaluation import Episode

if TYPE_CHECKING:
    from textgym.algorithms.value_calibration import ValueCalibration

log = logging.getLogger(__name__)


@dataclass
class TrainingContext:
    """What callbacks may read: progress counters and the latest episode and evaluation."""

    total_episodes: int
    episode: int = 0
    env_steps: int = 0
    last_episode: Episode | None = None
    last_eval: dict[str, float] = field(default_factory=dict)
    total_env_steps: int | None = None
    """The training budget in env steps, for algorithms bounded by steps rather than episodes."""
    update: int = 0
    """Updates done so far, for algorithms that work in updates (PPO's rollout then optimisation, TRL's
    optimizer steps)."""
    transcripts: list[str] = field(default_factory=list)
    """Sample transcripts of episodes from the latest update."""
    value_calibration: ValueCalibration | None = None
    """The value head against exact values at the latest evaluation (PPO, on envs with ground truth)."""


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

    def on_log(self, ctx: TrainingContext, metrics: dict[str, float]) -> None:
        """When the algorithm reports its own metrics (e.g. stable-baselines3's ``train/loss``)."""

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

    def on_log(self, ctx: TrainingContext, metrics: dict[str, float]) -> None:
        for callback in self.callbacks:
            callback.on_log(ctx, metrics)

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
                    "rollout/invalid_action_rate": sum(e.invalid_actions for e in self.window)
                    / max(sum(e.length for e in self.window), 1),
                    "rollout/env_steps": ctx.env_steps,
                },
                step=ctx.episode,
            )
            self.window.clear()
        return True

    def on_eval(self, ctx: TrainingContext) -> None:
        self.logger.log({f"eval/{k}": v for k, v in ctx.last_eval.items()}, step=ctx.episode)

    def on_log(self, ctx: TrainingContext, metrics: dict[str, float]) -> None:
        self.logger.log(metrics, step=ctx.episode)


class LogTranscripts(Callback):
    """Sends each update's sample transcripts (``ctx.transcripts``) to W&B as a table ``rollout/transcripts``."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger
        self.rows: list[list] = []

    def on_log(self, ctx: TrainingContext, metrics: dict[str, float]) -> None:
        if not ctx.transcripts:
            return
        import wandb  # only runs that produce transcripts pay for the import

        self.rows += [[ctx.update, text] for text in ctx.transcripts]
        self.logger.log({"rollout/transcripts": wandb.Table(columns=["update", "transcript"], data=self.rows)},
                        step=ctx.episode)


def interactive() -> bool:
    """Whether a person watches a terminal (stderr is a TTY, not CI): then progress is a bar, else log lines."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def progress_display() -> Progress:
    """A rich progress display on stderr (text, bar, count, time left), silent off a terminal or in CI."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not interactive(),
    )


class LogProgress(Callback):
    """Progress you can follow off a terminal (nohup, SLURM, CI): a log line (stdout and ``train.log`` under
    ``textgym train``) per evaluation and per reported metrics (each PPO update, each SB3 log interval)."""

    KEYS = ("train/policy_loss", "train/value_loss", "train/approx_kl", "train/entropy", "train/loss",
            "rollout/ep_rew_mean", "time/rollout_seconds", "time/update_seconds")
    """The metrics a line shows, when reported."""

    def on_training_start(self, ctx: TrainingContext) -> None:
        total = f"{ctx.total_env_steps} env steps" if ctx.total_env_steps else f"{ctx.total_episodes} episodes"
        log.info("training: %s", total if (ctx.total_env_steps or ctx.total_episodes) else "started")

    def on_eval(self, ctx: TrainingContext) -> None:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in ctx.last_eval.items() if k in ("success_rate", "mean_return", "regret"))
        log.info("eval at episode %d (%d env steps): %s", ctx.episode, ctx.env_steps, shown)

    def on_log(self, ctx: TrainingContext, metrics: dict[str, float]) -> None:
        shown = ", ".join(f"{k.split('/')[-1]} {metrics[k]:.4g}" for k in self.KEYS if k in metrics)
        log.info("update %d: episode %d, %d env steps%s", ctx.update, ctx.episode, ctx.env_steps,
                 f", {shown}" if shown else "")

    def on_training_end(self, ctx: TrainingContext) -> None:
        log.info("training done: %d episodes, %d env steps", ctx.episode, ctx.env_steps)


class ProgressBar(Callback):
    """A rich progress bar of episodes (or env steps, given ``ctx.total_env_steps``) with the running
    success rate; silent off a terminal and in CI.

    Given ``progress`` (a display that is already running, e.g. ``textgym benchmark``'s), the bar is
    added to it as a row and removed at the end of training.
    """

    def __init__(self, window: int = 100, progress: Progress | None = None, label: str = "train") -> None:
        self.recent: deque[bool] = deque(maxlen=window)
        self.shared = progress is not None
        self.progress = progress if progress is not None else progress_display()
        self.label = label
        self.task = None

    def on_training_start(self, ctx: TrainingContext) -> None:
        if not self.shared:
            self.progress.start()
        total = ctx.total_env_steps or ctx.total_episodes
        self.task = self.progress.add_task(f"[bold]{self.label}", total=total)

    def on_episode_end(self, ctx: TrainingContext) -> bool:
        self.recent.append(ctx.last_episode.success)
        if ctx.episode % 50 == 0 or ctx.episode == ctx.total_episodes:
            completed = ctx.env_steps if ctx.total_env_steps else ctx.episode
            success = sum(self.recent) / len(self.recent)
            description = f"[bold]{self.label}[/] success {success:.2f}"
            self.progress.update(self.task, completed=completed, description=description)
        return True

    def on_training_end(self, ctx: TrainingContext) -> None:
        if self.shared:
            self.progress.remove_task(self.task)
        else:
            self.progress.stop()


class EvalHistory(Callback):
    """Keeps every periodic evaluation as ``(episode, metrics)`` rows, for learning curves."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []

    def on_eval(self, ctx: TrainingContext) -> None:
        self.rows.append((ctx.episode, dict(ctx.last_eval)))
