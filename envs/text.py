"""Text shared by every env: the ``Text`` space of observations and actions, and the excerpt helper.

* :class:`TextSpace` is Gymnasium's ``Text`` space whose batches read correctly from an
  ``AsyncVectorEnv``'s shared memory (Gymnasium 1.4 decodes a ``Text`` buffer once, when the vector
  env is built, so with its defaults every later observation of a plain ``Text`` space reads as
  ``'000...'``).
* :func:`excerpt` is the one way an env echoes the agent's text into an observation: short, and in
  printable ASCII whatever the agent wrote.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Sequence
from multiprocessing.sharedctypes import SynchronizedArray
from typing import Any, overload

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import read_from_shared_memory

PRINTABLE = string.printable
"""The character set of observations and actions (``spaces.Text``'s default has no space)."""


class TextSpace(spaces.Text):
    """``spaces.Text`` over :data:`PRINTABLE` by default, safe in ``AsyncVectorEnv``'s shared memory.

    Sampling, ``contains``, flattening and batching are ``spaces.Text``'s; only reading a batch out of
    shared memory differs: it gives a live :class:`SharedTextBatch` (as a ``Box`` batch is a live array
    view), which ``AsyncVectorEnv`` copies into a tuple of ``str`` on every ``reset``/``step`` when
    ``copy=True`` (its default).

    Example::

        >>> space = TextSpace(64)
        >>> space.contains("Hello, world!")
        True
    """

    def __init__(
        self,
        max_length: int,
        *,
        min_length: int = 1,
        charset: str | frozenset[str] = PRINTABLE,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(max_length, min_length=min_length, charset=charset, seed=seed)


class SharedTextBatch(Sequence[str]):
    """The texts of ``n`` sub-envs as their workers last wrote them into shared memory, decoded on access.

    ``copy.deepcopy`` (which ``AsyncVectorEnv`` applies to what it returns) gives a plain tuple of
    ``str``, equal to what ``SyncVectorEnv`` returns.
    """

    def __init__(self, space: spaces.Text, shared_memory: SynchronizedArray, n: int) -> None:
        self._codes = np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape(n, space.max_length)
        self._characters = np.array(space.character_list)

    def _decode(self, row: np.ndarray) -> str:
        return "".join(self._characters[row[row < len(self._characters)]].tolist())  # the rest is padding

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self._decode(row) for row in self._codes[index])
        return self._decode(self._codes[index])

    def __len__(self) -> int:
        return len(self._codes)

    def __iter__(self) -> Iterator[str]:
        return (self._decode(row) for row in self._codes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment] - it changes with the shared memory

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[str, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"SharedTextBatch({tuple(self)!r})"


@read_from_shared_memory.register(TextSpace)
def _read_text_batch(space: TextSpace, shared_memory: SynchronizedArray, n: int = 1) -> SharedTextBatch:
    return SharedTextBatch(space, shared_memory, n)


def excerpt(text: str, limit: int = 40) -> str:
    """The agent's ``text`` as an observation may quote it: ``ascii()``-quoted, cut after ``limit`` characters.

    Control and non-ASCII characters come out as escapes (``'Zo\\xeb'``), so the result is printable
    ASCII (within :data:`PRINTABLE`) and at most ``limit + 4`` characters plus a count of the rest.
    """
    shown = ascii(text[:limit])
    if len(shown) > limit + 2:  # escapes of control and non-ASCII characters made it longer
        shown = shown[: limit + 1] + "..."
    return shown if len(text) <= limit else f"{shown} (+{len(text) - limit} more characters)"
