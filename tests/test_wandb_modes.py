"""W&B never blocks or crashes a run: empty ``WANDB_MODE``, an unreachable server, repeated ``finish()``.

Only loopback addresses are used: the "server" is a closed port on 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wandb

from textgym.loggers import LoggerConfig, WandbLogger

FAKE_KEY = "0123456789abcdef" * 2 + "01234567"  # 40 characters, the length of a real key


def closed_loopback_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the probe is closed


def offline_file(directory: Path) -> bytes:
    [run_file] = (directory / "wandb").glob("offline-run-*/run-*.wandb")
    return run_file.read_bytes()


@pytest.fixture
def clean_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201 - a generator fixture
    """No W&B variables or credentials from the machine, and a fresh W&B singleton before and after."""
    for name in [name for name in os.environ if name.startswith("WANDB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    wandb.teardown()
    yield monkeypatch
    wandb.teardown()


def test_empty_wandb_mode_counts_as_unset(clean_wandb: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_wandb.setenv("WANDB_MODE", "")
    logger = WandbLogger(LoggerConfig(), {"seed": 3}, tmp_path, name="empty-mode", group=None)
    assert logger.mode == "offline"  # no key: offline, as if WANDB_MODE were unset
    logger.log({"eval/success_rate": 0.5}, step=1)
    logger.finish({"final/success_rate": 0.5})
    logger.finish({"final/ignored": 1.0})  # a second call (a finally block after a signal handler) does nothing
    logger.log({"eval/after_finish": 1.0}, step=2)
    data = offline_file(tmp_path)
    assert b"eval/success_rate" in data and b"final/success_rate" in data
    assert b"final/ignored" not in data and b"eval/after_finish" not in data


def test_unreachable_server_falls_back_to_offline(
    clean_wandb: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clean_wandb.setenv("WANDB_API_KEY", FAKE_KEY)
    clean_wandb.setenv("WANDB_BASE_URL", closed_loopback_url())
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="textgym.loggers"):
        logger = WandbLogger(LoggerConfig(online_timeout=2), {}, tmp_path, name="no-server", group=None)
    elapsed = time.monotonic() - start
    assert logger.mode == "offline"
    assert elapsed < 20, f"{elapsed:.0f}s: the fallback should take about online_timeout (2 s), not W&B's 90 s"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "offline" in warnings[0].getMessage()
    logger.log({"rollout/mean_return": 1.5}, step=1)
    logger.finish()
    assert b"rollout/mean_return" in offline_file(tmp_path)


def test_cli_run_survives_empty_mode_and_unreachable_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path), "WANDB_MODE": "", "WANDB_API_KEY": FAKE_KEY, "WANDB_BASE_URL": closed_loopback_url()}
    run = subprocess.run(
        [Path(sys.executable).with_name("textgym"), "train", "algorithm.episodes=100", "algorithm.eval_every=50",
         "eval.episodes=10", "logger.online_timeout=2", "hydra.run.dir=run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (run.stdout + run.stderr).count("logging offline instead") == 1, run.stdout + run.stderr
    assert b"final/success_rate" in offline_file(tmp_path / "run")
