"""Random-number-generator states as plain JSON, so checkpoints restore them without unpickling anything."""

from __future__ import annotations

import random
import sys
from typing import Any

import numpy as np


def generator_state(generator: np.random.Generator) -> dict[str, Any]:
    """A NumPy ``Generator``'s state (a dict of ints, JSON-able as it is)."""
    return generator.bit_generator.state


def set_generator_state(generator: np.random.Generator, state: dict[str, Any]) -> None:
    generator.bit_generator.state = state


def torch_state(generator: Any) -> list[int]:
    """A ``torch.Generator``'s state as a list of bytes."""
    return generator.get_state().tolist()


def set_torch_state(generator: Any, state: list[int]) -> None:
    import torch

    generator.set_state(torch.tensor(state, dtype=torch.uint8))


def capture_global() -> dict[str, Any]:
    """Python's, NumPy's legacy and (if imported) torch's global RNG states."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    if "torch" in sys.modules:
        import torch

        states["torch"] = torch_state(torch.default_generator)
    return states


def restore_global(states: dict[str, Any]) -> None:
    """Undo :func:`capture_global`."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "torch" in states:
        import torch

        set_torch_state(torch.default_generator, states["torch"])
