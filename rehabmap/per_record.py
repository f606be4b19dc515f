"""What a record alone says, worked out once per record object and kept: a result's words and JSON that do not
depend on the search (its labels, gender note, capacity sentence, its reply's fixed JSON), not once per result.

A value is served for the very object it was made from, or one equal in every field to the last made for its
record id (another read of an unedited record), never for another: an index hands out the same `Service` object
while its record cache holds it, and a new one after an edit or a rebuild, so an edit shows in the very next
answer without asking the index for its generation. Looked up first by the object's identity (`id`), not by its
`id` field: reading a field of a `Service` goes through pydantic's attribute hook (~580 instructions), `id()` costs
~100. The object is held with its value, so its identity is not reused while the value is kept. Made from a
record's data alone, never from a request: nothing of a search (needs, home, distance) is kept. Bounded: past
`size` records, the longest held are dropped first (an eighth of them at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import islice
from typing import Generic, TypeVar

from rehabmap.record import Service

# How many records a worker keeps each of its per-record values for: the index's record cache
# (search/embedded.py, RECORD_CACHE_SIZE) and each `PerRecord` alike. A smaller `PerRecord` than the cache made
# its values again for records the cache still held (bench/RESULTS.md, session 30). 16,000 holds a directory of
# the size the real sources give (~7-15k services) whole once it has been asked for, and the ~12-14k records the
# bench's 200 homes ask with the default request (no type, any distance, ~70 results) at 100k and 500k: with
# 10,000, a least-recently-used cache replaying those homes in turn dropped each record before it came back, read
# ~55-67 of a request's ~70 from SQLite again, and its churn set off the collector's full passes (up to ~150 ms,
# the request's p99; bench/RESULTS.md, session 31, brief w6). Measured with tracemalloc at 100k, a cached Service
# is ~6.9 KiB and its words and reply JSON ~2.3 KiB: ~145 MiB a worker when full (~90 MiB with 10,000).
RECORDS_KEPT = 16_000

Value = TypeVar("Value")
Key = TypeVar("Key")
Entry = TypeVar("Entry")


class PerRecord(Generic[Value]):
    """`make(record)` for each record object, made on first use and kept (see the module's docstring)."""

    __slots__ = ("make", "size", "held", "_named", "_lock")

    def __init__(self, make: Callable[[Service], Value], size: int) -> None:
        self.make = make
        self.size = size
        # Each record's value by the record's identity, the record held with it (so no other live object has that
        # identity). A hot caller may read it itself, `held.get(id(record))`, and call `of` when it is None: a
        # method call costs ~1k instructions more than the read (bench/RESULTS.md, "a match's results", session 28).
        self.held: dict[int, tuple[Service, Value]] = {}
        # The latest value made for each record id, for an equal copy: a backend that reads a record anew for each
        # answer (Elasticsearch's) hands out a new object each time, equal to the last while it is not edited.
        self._named: dict[str, tuple[Service, Value]] = {}
        self._lock = threading.Lock()  # for changes only: a lookup is one dict read

    def of(self, record: Service) -> Value:
        held = self.held.get(id(record))
        if held is not None:
            return held[1]
        name = record.__dict__["id"]
        named = self._named.get(name)
        if named is not None and named[0] == record:  # another read of the record, every field the same
            return named[1]
        value = self.make(record)
        entry = (record, value)  # one tuple in both maps: the collector walks one object a record, not two
        with self._lock:
            _keep(self.held, id(record), entry, self.size)
            _keep(self._named, name, entry, self.size)
        return value


def _keep(kept: dict[Key, Entry], key: Key, entry: Entry, size: int) -> None:
    """`entry` kept under `key`; once `size` are held, the longest held eighth dropped first, together. A dict's
    first key is found past every slot the earlier drops emptied (until the dict is next resized): dropping one
    at a time walked up to `size` slots for each new record, ~4M instructions of a match naming no type at 100k
    services, 14% of it (bench/RESULTS.md, session 30); an eighth at a time, one walk for `size // 8` records.
    (An `OrderedDict` drops its first in constant time, but the collector walks its links: ~1.6k instructions
    more a request of the bench's.)"""
    kept.pop(key, None)
    if len(kept) >= size:
        for old in list(islice(kept, max(1, size // 8))):
            del kept[old]
    kept[key] = entry
