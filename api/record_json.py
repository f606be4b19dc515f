"""JSON with holes: a reply's fixed part serialised once, the values a request gives spliced in as bytes.

Most of a match result's fields are its record's own (name, contacts, schedules, CQC, …), the same in every
reply until the record changes; a few (distance, needs, explanation, …) are the request's. Making each
result's dict and serialising it whole was most of the reply's cost (bench/RESULTS.md, "POST /match, ninth
pass, the reply"). Here the record's part is serialised once by the same serialiser (`pydantic_core.to_json`)
with each request-given field null, and cut at those nulls; a reply joins the pieces with the request's own
values, each serialised by the same serialiser, so the bytes are the ones the whole dict would give. A record's
pieces are kept per record object (`rehabmap.per_record.PerRecord`, in `api.schemas`), so an edit shows in the
very next reply.

The cut is exact because a JSON string never holds a bare `"`: `"name":null` can only be the key itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pydantic_core

Pieces = tuple[bytes, ...]


def cut(fields: dict[str, Any], holes: Sequence[str]) -> Pieces:
    """`to_json(fields)` cut around each hole's null, in the order given: the pieces one more than the holes,
    each hole's key ending the piece before it. A hole is named by its key, at any depth, and must be null
    and the only key of that name in the whole document."""
    text = pydantic_core.to_json(fields)
    holes = tuple(holes)
    markers = _markers(holes)
    pieces = []
    rest = text
    # One `partition` a hole, its marker and key made once a set of holes: the per-hole `find`, slices and
    # offsets in Python were ~20 µs of a record's ~35 µs (bench/RESULTS.md, session 33).
    for name, (marker, key) in zip(holes, markers):
        before, found, rest = rest.partition(marker)
        if not found:
            raise _not_one_null_key(name, text)
        pieces.append(before + key)
    pieces.append(rest)
    for name, (marker, _) in zip(holes, markers):
        if text.count(marker) != 1:
            raise _not_one_null_key(name, text)
    return tuple(pieces)


@lru_cache(maxsize=8)
def _markers(holes: tuple[str, ...]) -> tuple[tuple[bytes, bytes], ...]:
    """Per hole, its key with its null (what the text is cut at) and its key alone (what ends the piece)."""
    return tuple((b'"' + name.encode() + b'":null', b'"' + name.encode() + b'":') for name in holes)


def _not_one_null_key(name: str, text: bytes) -> ValueError:
    return ValueError(f"the hole {name!r} is not one null key, after the one before it, in {text[:200]!r}…")
