"""Caches bounded by bytes: one least-recently-used map that every cache of the LLM policy shares.

Entry counts say nothing about memory when one entry is a 40-token FrozenLake state and another a
700-token CustomerService prompt with its candidates; so each cache is given a byte budget, and an entry's
size is measured by :func:`nbytes` (tensors by their storage, token lists by their Python objects).
"""

from __future__ import annotations

import dataclasses
import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import torch

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MB = 1024**2


def nbytes(value: object) -> int:
    """Approximate memory held by ``value``: tensors by their elements; containers, dataclasses and strings
    recursively."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sys.getsizeof(value) + sum(nbytes(v) for v in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(nbytes(k) + nbytes(v) for k, v in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sys.getsizeof(value) + sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


class ByteLRU(Generic[K, V]):
    """A map holding at most ``max_bytes`` of values (by ``size``), evicting the least recently used first.

    An entry larger than the whole budget is not kept (the caller still gets its value back from :meth:`put`).

    >>> cache = ByteLRU(100, size=len)
    >>> cache.fetch("a", lambda: "x" * 60) == cache.fetch("b", lambda: "y" * 60)
    False
    >>> "a" in cache, "b" in cache, cache.bytes
    (False, True, 60)
    """

    def __init__(self, max_bytes: int, size: Callable[[V], int] = nbytes, key_size: Callable[[K], int] | None = None) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes={max_bytes} must be >= 0 (0 caches nothing)")
        self.max_bytes = max_bytes
        self.size = size
        self.key_size = key_size
        """Counts the key's bytes too, where the key holds more than the value (e.g. a prompt's text)."""
        self.bytes = 0
        """Bytes held now."""
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, key: K) -> V:
        if key not in self._entries:
            raise KeyError(key)
        self._entries.move_to_end(key)
        return self._entries[key][0]

    def __setitem__(self, key: K, value: V) -> None:
        self.put(key, value)

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V) -> V:
        """Store ``value`` under ``key``, evicting the least recently used entries to stay within budget."""
        if key in self._entries:
            self.bytes -= self._entries.pop(key)[1]
        size = self.size(value) + (0 if self.key_size is None else self.key_size(key))
        if size > self.max_bytes:
            return value
        while self.bytes + size > self.max_bytes:
            self.bytes -= self._entries.popitem(last=False)[1][1]
        self._entries[key] = (value, size)
        self.bytes += size
        return value

    def fetch(self, key: K, compute: Callable[[], V]) -> V:
        """The value of ``key``, computed by ``compute()`` and stored if it is not held."""
        value = self.get(key)
        return self.put(key, compute()) if value is None else value

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
