"""Where a run's metrics go: Weights & Biases (offline unless a key is configured) or nowhere.

A W&B run never blocks a training run for long: an empty ``WANDB_*`` variable counts as unset, an
online run whose server does not answer within ``online_timeout`` seconds goes offline with one
warning, and ``finish()`` may be called from every exit path (it runs once).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class LoggerKind(str, Enum):
    wandb = "wandb"
    none = "none"


@dataclass
class LoggerConfig:
    """The ``logger`` config group."""

    kind: LoggerKind = LoggerKind.wandb
    """``wandb`` logs to Weights & Biases; ``none`` logs nothing."""
    project: str = "textgym"
    """W&B project."""
    entity: str | None = None
    """W&B entity (team or user); None uses the account's default."""
    mode: str | None = None
    """W&B mode ("online", "offline", "disabled"); None: $WANDB_MODE if set (and not empty), else online with an
    API key, else offline."""
    online_timeout: float = 5.0
    """Seconds an online run waits for the W&B server before it falls back to offline mode (one warning)."""
    tags: list[str] | None = None
    """W&B run tags."""


class NullLogger:
    """Logs nothing."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        pass

    def log_images(self, images: dict[str, Path]) -> None:
        pass

    def finish(self, summary: dict[str, Any] | None = None, exit_code: int = 0) -> None:
        pass


def drop_empty_wandb_variables() -> None:
    """Unset every empty ``WANDB_*`` environment variable: empty means unset (W&B itself rejects ``WANDB_MODE=``)."""
    for name in [name for name, value in os.environ.items() if name.startswith("WANDB_") and not value]:
        del os.environ[name]


def wandb_mode(configured: str | None) -> str:
    """The mode to run W&B in, never one that prompts or waits for a login."""
    if configured:
        return configured
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    import wandb

    # silent: otherwise login asks the server for the user's name, ~5 s when the server is unreachable
    wandb.setup(settings=wandb.Settings(silent=True))
    return "online" if wandb.login(prompt=False, verify=False) else "offline"


class WandbLogger:
    """One W&B run: the resolved config, metrics by step, and the final summary."""

    def __init__(
        self, config: LoggerConfig, run_config: dict[str, Any], directory: Path, name: str, group: str | None
    ) -> None:
        import wandb

        drop_empty_wandb_variables()
        mode = wandb_mode(config.mode)

        def start(mode: str) -> wandb.Run:
            return wandb.init(
                project=config.project,
                entity=config.entity,
                mode=mode,
                dir=str(directory),
                name=name,
                group=group,
                tags=config.tags,
                config=run_config,
                settings=wandb.Settings(silent=True, console="off", init_timeout=config.online_timeout),
                reinit="create_new",
            )

        try:
            self.run = start(mode)
        except wandb.errors.CommError as error:
            if mode != "online":
                raise
            log.warning(
                "W&B server unreachable after %gs (%s): logging offline instead; upload later with `wandb sync` "
                "(a slow link needs a higher logger.online_timeout)",
                config.online_timeout, str(error).splitlines()[0],
            )
            mode = "offline"
            self.run = start(mode)
        self._finished = False
        log.info("W&B run %s in %s mode (%s)", self.run.id, mode, self.run.dir)

    @property
    def mode(self) -> str:
        """The mode the run actually runs in ("offline" after a fallback)."""
        return str(self.run.settings.mode)

    def log(self, metrics: dict[str, float], step: int) -> None:
        if not self._finished:
            self.run.log(metrics, step=step)

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A table (e.g. a leaderboard) under ``key``."""
        import wandb

        if not self._finished:
            self.run.log({key: wandb.Table(columns=columns, data=rows)})

    def log_images(self, images: dict[str, Path]) -> None:
        """PNG files, each under its key."""
        import wandb

        if not self._finished:
            self.run.log({key: wandb.Image(str(path)) for key, path in images.items()})

    def finish(self, summary: dict[str, Any] | None = None, exit_code: int = 0) -> None:
        """Write ``summary``, flush everything logged and close the run (``exit_code`` != 0 marks it failed).

        Only the first call acts, so every exit path (the end of training, a signal handler, a ``finally``
        block) may call it; logging after it does nothing. It also stops W&B's service process: W&B 0.31's
        ``run.finish()`` may return before the run's file is written, and stopping the service waits for
        it, so the file is complete even if the process is killed next (a later run starts a new service).
        """
        import wandb

        if self._finished:
            return
        self._finished = True
        if summary:
            self.run.summary.update(summary)
        self.run.finish(exit_code=exit_code)
        wandb.teardown()


def make_logger(
    config: LoggerConfig, run_config: dict[str, Any], directory: Path, name: str, group: str | None
) -> WandbLogger | NullLogger:
    """The logger the config asks for."""
    if config.kind is LoggerKind.none:
        return NullLogger()
    return WandbLogger(config, run_config, directory, name, group)
