"""Values computed from the index, kept until its generation changes: a rebuild or any edit.

Everything cached from the index (the gap analysis, the pages' indicator tables, the ORUK id map) is keyed
on `IndexBackend.generation()` through this one helper, so a maintainer's edit shows everywhere at once,
in every process, and a cache never holds more than one generation's values.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from rehabmap.index.base import IndexBackend

V = TypeVar("V")


class GenerationCache(Generic[V]):
    """Up to `size` values of the current generation, least recently used dropped first; all of them are
    dropped when the generation changes."""

    def __init__(self, size: int = 1) -> None:
        self.size = size
        self._generation: str | None = None
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, backend: IndexBackend, key: Hashable, compute: Callable[[], V]) -> V:
        """The value of `key` for the backend's generation now, computed (outside the lock) when missing.

        The generation is read before computing: if the index changes while the value is computed, the
        value is filed under the older generation and computed again on the next call, never kept as if it
        were the newer one."""
        generation = backend.generation()
        with self._lock:
            if generation == self._generation and key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = compute()
        with self._lock:
            if generation != self._generation:
                self._generation = generation
                self._values.clear()
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value
