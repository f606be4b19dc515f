"""JSON with holes: a reply's fixed part serialised once, the values a request gives spliced in as bytes.

Most of a match result's fields are its record's own (name, contacts, schedules, CQC, …), the same in every
reply until the record changes; a few (distance, needs, explanation, …) are the request's. Making each
result's dict and serialising it whole was most of the reply's cost (bench/RESULTS.md, "POST /match, ninth
pass, the reply"). Here the record's part is serialised once by the same serialiser (`pydantic_core.to_json`)
with each request-given field null, and cut at those nulls; a reply joins the pieces with the request's own
values, each serialised by the same serialiser, so the bytes are the ones the whole dict would give.

The cut is exact because a JSON string never holds a bare `"`: `"name":null` can only be the key itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pydantic_core

from rehabmap.record import Service

Pieces = tuple[bytes, ...]


def cut(fields: dict[str, Any], holes: Sequence[str]) -> Pieces:
    """`to_json(fields)` cut around each hole's null, in the order given: the pieces one more than the holes,
    each hole's key ending the piece before it. A hole is named by its key, at any depth, and must be null
    and the only key of that name in the whole document."""
    text = pydantic_core.to_json(fields)
    pieces = []
    start = 0
    for name in holes:
        marker = b'"' + name.encode() + b'":null'
        at = text.find(marker, start)
        if at < 0 or text.count(marker) != 1:
            raise ValueError(f"the hole {name!r} is not one null key, after the one before it, in {text[:200]!r}…")
        end = at + len(marker) - len(b"null")
        pieces.append(text[start:end])
        start = end + len(b"null")
    pieces.append(text[start:])
    return tuple(pieces)


class RecordPieces:
    """Each record's `cut`, made on first use and kept while the record stays the same.

    A record's pieces are served only for the very object they were cut from, or one equal to it in every
    field: an index hands out the same Service object while its record cache holds it, and a new one after an
    edit or a rebuild, so a maintainer's edit shows in the very next reply without asking the index for its
    generation (the reply is built after `match()` has read the records: a generation read now could be newer
    than the records in hand). Made from a record's data alone, never from a request. Bounded: past `size`
    records, the longest held is dropped first."""

    def __init__(self, fields: Callable[[Service], dict[str, Any]], holes: Sequence[str], size: int) -> None:
        self.fields = fields
        self.holes = tuple(holes)
        self.size = size
        self._held: dict[str, tuple[Service, Pieces]] = {}
        self._lock = threading.Lock()  # for changes only: a lookup is one dict read

    def of(self, record: Service) -> Pieces:
        held = self._held.get(record.id)
        if held is not None and (held[0] is record or held[0] == record):
            return held[1]
        pieces = cut(self.fields(record), self.holes)
        with self._lock:
            self._held.pop(record.id, None)
            while len(self._held) >= self.size:
                del self._held[next(iter(self._held))]
            self._held[record.id] = (record, pieces)
        return pieces
