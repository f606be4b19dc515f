"""`POST /match`'s body parsed by pydantic-core's `from_json` (api/body_route.py) as FastAPI parses it with
`json.loads`: the lean handler answers only a body `from_json` accepts, and hands every other one to FastAPI's
handler, so the replies are FastAPI's as long as every body `from_json` accepts, `json.loads` accepts as the same
value. Held here over every code point a string can hold (raw and as a `\\u` escape), every short number and every
short structure, and bodies drawn at random."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types: a float's sign and NaN told apart, an object's keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _agrees(raw: bytes) -> bool:
    """Whether `from_json` accepts the body (else the lean handler leaves it to FastAPI), asserting that
    `json.loads` then gives the same value."""
    try:
        parsed = from_json(raw, cache_strings=False)
    except ValueError:
        return False
    assert _same(parsed, json.loads(raw)), raw
    return True


def _tally(bodies: Any) -> tuple[int, int]:
    accepted = sum(map(_agrees, bodies))
    return accepted, len(bodies) - accepted


def test_every_code_point_in_a_string() -> None:
    """Raw (UTF-8; a surrogate as the bytes no UTF-8 decoder takes) and, for the 65,536 of the BMP, escaped."""
    raw = [b'"' + chr(point).encode("utf-8", "surrogatepass") + b'"' for point in range(0x110000)]
    # Refused: the 32 control characters, '"' and '\\' alone, and the 2,048 surrogates.
    assert _tally(raw) == (0x110000 - 2082, 2082)
    # Refused by `from_json` alone: a lone surrogate escape, which `json.loads` reads as that surrogate.
    assert _tally([b'"\\u%04x"' % point for point in range(0x10000)]) == (0x10000 - 2048, 2048)
    pairs = [b'"\\u%04x\\u%04x"' % pair for pair in itertools.product(range(0xD7F0, 0xE010, 7), repeat=2)]
    accepted, refused = _tally(pairs)
    assert accepted and refused
    assert _tally([b'"\\' + bytes([byte]) + b'"' for byte in range(128)]) == (8, 120)  # "\/bfnrt; \u needs digits


def test_every_short_number() -> None:
    """Every text of up to four characters of a number's alphabet, and numbers past a float's or a 64-bit
    integer's range or precision."""
    alphabet = [bytes([byte]) for byte in b"-+0123456789.eE"]
    short = [b"".join(chars) for size in range(1, 5) for chars in itertools.product(alphabet, repeat=size)]
    accepted, refused = _tally(short)
    assert accepted > 1000 and refused > 10_000
    edges = [b"1e400", b"-1e400", b"1e-400", b"4.9e-324", b"2.4703282292062327e-324", b"1.7976931348623159e308",
             b"-0", b"-0.0", b"10" * 40, b"-" + b"9" * 40, b"123456789012345678901234567890.5e-10", b"NaN",
             b"Infinity", b"-Infinity", b"-NaN", b"nan", b"inf", b"Infinity1", b"1e1000000000000"]
    assert _tally(edges) == (15, 4)


def test_every_short_structure() -> None:
    """Every text of up to five characters of JSON's punctuation, literals' letters and whitespace."""
    alphabet = [bytes([byte]) for byte in b'[]{}:,"1n \t\x0c']
    short = [b"".join(chars) for size in range(1, 6) for chars in itertools.product(alphabet, repeat=size)]
    accepted, refused = _tally(short)
    assert accepted > 500 and refused > 100_000


def test_bodies_and_encodings() -> None:
    body = json.dumps({"home": {"postcode": "LS9 7TF"}, "needs": ["autism"], "limit": 2}).encode()
    assert _tally([body, b'{"limit": 2, "limit": 3}', b"[" * 200 + b"]" * 200]) == (3, 0)
    # A byte order mark, UTF-16 and nesting past 200 are left to FastAPI, which reads them as it always has.
    assert _tally([b"\xef\xbb\xbf" + body, body.decode().encode("utf-16"), b"[" * 300 + b"]" * 300]) == (0, 3)


_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_VALUES, st.booleans(), st.data())
def test_random_bodies_and_their_mutations(value: Any, ascii_only: bool, data: st.DataObject) -> None:
    """A random value as `json.dumps` writes it (accepted), and the same text with a byte changed, dropped or
    added (accepted or not, never otherwise)."""
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert _agrees(text)
    at = data.draw(st.integers(0, len(text)))
    byte = bytes([data.draw(st.integers(0, 255))])
    for mutated in (text[:at] + byte + text[at + 1:], text[:at] + text[at + 1:], text[:at] + byte + text[at:]):
        _agrees(mutated)
