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

from api._json import cut as _cut

Pieces = tuple[bytes, ...]


def cut(fields: dict[str, Any], holes: Sequence[str]) -> Pieces:
    """`to_json(fields)` cut around each hole's null, in the order given: the pieces one more than the holes,
    each hole's key ending the piece before it. A hole is named by its key, at any depth, and must be null
    and the only key of that name in the whole document. Cut in one compiled pass (`api._json.cut`): a `find`
    and a `count` of each hole in Python were ~15 µs of a record's ~30 µs (bench/RESULTS.md, session 33)."""
    text = pydantic_core.to_json(fields)
    pieces = _cut(text, _names(tuple(holes)))
    if pieces is None:
        raise _not_one_null_key(text, holes)
    return pieces


@lru_cache(maxsize=8)
def _names(holes: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(name.encode() for name in holes)


def _not_one_null_key(text: bytes, holes: Sequence[str]) -> ValueError:
    """The first hole that is not one null key after the one before it, found by the plain rule, for the message."""
    start, wrong = 0, holes[-1]
    for name in holes:
        marker = b'"' + name.encode() + b'":null'
        at = text.find(marker, start)
        if at < 0 or text.count(marker) != 1:
            wrong = name
            break
        start = at + len(marker)
    return ValueError(f"the hole {wrong!r} is not one null key, after the one before it, in {text[:200]!r}…")
