"""Where a run's metrics go: Weights & Biases (offline unless a key is configured) or nowhere."""

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
    """W&B mode ("online", "offline", "disabled"); None: $WANDB_MODE if set, else online with an API key, else offline."""
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

    def finish(self, summary: dict[str, Any]) -> None:
        pass


def wandb_mode(configured: str | None) -> str:
    """The mode to run W&B in, never one that prompts or waits for a login."""
    if configured:
        return configured
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    import wandb

    return "online" if wandb.login(prompt=False, verify=False) else "offline"


class WandbLogger:
    """One W&B run: the resolved config, metrics by step, and the final summary."""

    def __init__(
        self, config: LoggerConfig, run_config: dict[str, Any], directory: Path, name: str, group: str | None
    ) -> None:
        import wandb

        mode = wandb_mode(config.mode)
        self.run = wandb.init(
            project=config.project,
            entity=config.entity,
            mode=mode,
            dir=str(directory),
            name=name,
            group=group,
            tags=config.tags,
            config=run_config,
            settings=wandb.Settings(silent=True, console="off"),
            reinit="create_new",
        )
        log.info("W&B run %s in %s mode (%s)", self.run.id, mode, self.run.dir)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def log_table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A table (e.g. a leaderboard) under ``key``."""
        import wandb

        self.run.log({key: wandb.Table(columns=columns, data=rows)})

    def log_images(self, images: dict[str, Path]) -> None:
        """PNG files, each under its key."""
        import wandb

        self.run.log({key: wandb.Image(str(path)) for key, path in images.items()})

    def finish(self, summary: dict[str, Any]) -> None:
        self.run.summary.update(summary)
        self.run.finish()


def make_logger(
    config: LoggerConfig, run_config: dict[str, Any], directory: Path, name: str, group: str | None
) -> WandbLogger | NullLogger:
    """The logger the config asks for."""
    if config.kind is LoggerKind.none:
        return NullLogger()
    return WandbLogger(config, run_config, directory, name, group)
