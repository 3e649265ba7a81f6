"""Checks of a run's settings that no dataclass schema covers, and the one-line report of a user's error.

Everything here runs before a run writes anything (config, W&B run, results), so a bad setting costs
nothing but its message.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, TypeError, KeyError, ModuleNotFoundError, FileNotFoundError, gym.error.Error, HydraException,
    OmegaConfBaseException,
)
"""What a bad setting raises while a run is being built."""


@contextmanager
def user_errors(command: str = "textgym") -> Iterator[None]:
    """Turn a user's error into one line and a hint on stderr, and exit 2 (``HYDRA_FULL_ERROR=1``: re-raise)."""
    try:
        yield
    except USER_ERRORS as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"{command}: error: {one_line(error)}\n(HYDRA_FULL_ERROR=1 shows the traceback)", file=sys.stderr)  # noqa: T201
        sys.exit(2)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (OmegaConf's and Hydra's span several)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = "; ".join(lines) if lines else type(error).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def positive_int(node: Mapping[str, Any], key: str, name: str) -> int:
    """``node[key]`` as an integer >= 1, else a ValueError naming ``name``."""
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be an integer >= 1")
    return value


def check_reward(node: Mapping[str, Any] | None) -> dict[str, float]:
    """The reward weights, each a finite number, else a ValueError naming the weight."""
    weights = dict(node or {})
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"reward.{name}={value!r} must be a finite number (the weight of the '{name}' reward term)")
    return {name: float(value) for name, value in weights.items()}


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the whole new one, never a part."""
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
