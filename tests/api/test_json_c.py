"""The compiled JSON writers of a reply (`api._json`, api/_json.c) against the serialiser they replace,
`pydantic_core.to_json`: every code point alone and among others (surrogates refused with the same
UnicodeEncodeError), random strings, every metre to 2,000 km and random floats, and every wrong call.

Imported at the top, not skipped when missing: an unbuilt module fails this file (and the app's import) loudly."""

from __future__ import annotations

import hashlib
import math
import random
import struct
from pathlib import Path

import pytest
from pydantic_core import to_json

from api import _json
from rehabmap.match import round_km

CODE_POINTS = 0x110000
SURROGATES = range(0xD800, 0xE000)


def test_built_from_this_source() -> None:
    """A change to api/_json.c not built again would leave every other test here testing the old code."""
    source = Path(_json.__file__).parent / "_json.c"
    assert _json.SOURCE_SHA256 == hashlib.sha256(source.read_bytes()).hexdigest(), (
        "api._json was built from another api/_json.c: run `python setup.py build_ext --inplace` (or "
        "`pip install -e .`)")


def _refusal(call, text: str) -> str:
    with pytest.raises(ValueError) as refused:
        call(text)
    return str(refused.value)


def test_every_code_point() -> None:
    """Each of the 1,114,112 code points alone, and between an ASCII and a non-ASCII character (so both of the
    string's readings, ASCII in place and UTF-8 encoded, meet every character), as pydantic-core writes them; a
    surrogate refused as pydantic-core refuses it: a ValueError, with the same UnicodeEncodeError's words."""
    for code in range(CODE_POINTS):
        character = chr(code)
        if code in SURROGATES:
            for text in (character, "a" + character + "é"):
                with pytest.raises(UnicodeEncodeError):
                    _json.string(text)
                assert _refusal(to_json, text).endswith(_refusal(_json.string, text)), hex(code)
            continue
        assert _json.string(character) == to_json(character), hex(code)
        if code < 0x80:
            assert _json.string("a" + character + "b") == to_json("a" + character + "b"), hex(code)
        assert _json.string("a" + character + "é") == to_json("a" + character + "é"), hex(code)
    everything = "".join(chr(code) for code in range(CODE_POINTS) if code not in SURROGATES)
    assert _json.string(everything) == to_json(everything)
    ascii_only = "".join(map(chr, range(0x80))) * 3
    assert _json.string(ascii_only) == to_json(ascii_only)


def test_every_character_at_every_place_in_eight_bytes() -> None:
    """The string is read eight bytes at a time while none is escaped: each character to U+07FF (every one escaped,
    and every one- and two-byte UTF-8 character around them) at each of the first 17 places of an ASCII or a
    two-byte string, so at each place in a word, first or later, as pydantic-core writes it."""
    for code in range(0x800):
        character = chr(code)
        for fill in ("x", "é", "\x7f"):
            for before in range(17):
                text = fill * before + character + fill * (17 - before)
                assert _json.string(text) == to_json(text), (hex(code), fill, before)


def test_surrogate_pairs_and_runs_refused_alike() -> None:
    """A pair of surrogates (a `str` holding both halves, not the character they would encode) and runs of them
    have no UTF-8 either: refused with pydantic-core's words, wherever they stand."""
    for text in ("\ud83d\ude00", "x\udfff\ud800y", "ab\udc80", "é\ud800\ud800\ud800", "\U0001F600\ud800"):
        assert _refusal(to_json, text).endswith(_refusal(_json.string, text)), ascii(text)


def test_random_strings() -> None:
    """Strings of 0-300 characters drawn from the characters JSON escapes, `/` and DEL, ASCII, Latin-1, the rest of
    the BMP and the astral planes, each group's share varied, as pydantic-core writes them."""
    rng = random.Random(30)
    groups = [[chr(c) for c in range(0x20)] + ['"', "\\", "/", "\x7f"], [chr(c) for c in range(0x20, 0x7f)],
              [chr(c) for c in range(0x80, 0x100)], [chr(c) for c in range(0x100, 0xD800, 7)],
              [chr(c) for c in range(0xE000, 0x10000, 5)], [chr(c) for c in range(0x10000, CODE_POINTS, 97)]]
    for _ in range(20_000):
        weights = [rng.random() ** 3 for _ in groups]
        text = "".join(rng.choice(rng.choices(groups, weights)[0]) for _ in range(rng.randrange(301)))
        assert _json.string(text) == to_json(text), ascii(text)


def test_a_subclass_of_str() -> None:
    class Words(str):
        pass

    assert _json.string(Words('say "hi"\n')) == to_json(Words('say "hi"\n'))


def test_every_metre_to_2000_km() -> None:
    """Every whole number of metres to 2,000 km, and its negative (a distance saved can be), written as
    pydantic-core writes it: each is `round_km`'s float, N / 1000."""
    for n in range(2_000_001):
        x = n / 1000
        assert _json.km(x) == to_json(x), n
        assert _json.km(-x) == to_json(-x), -n


def test_round_km_gives_metres() -> None:
    """`round_km`'s every answer is written here, not left to `to_json` (None): random distances to 20,000 km."""
    rng = random.Random(18)
    for _ in range(200_000):
        x = round_km(rng.uniform(0, 20_000) if rng.random() < 0.5 else rng.uniform(0, 10))
        assert _json.km(x) == to_json(x), x


def _random_double(rng: random.Random) -> float:
    return struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]


def test_other_floats_written_alike_or_refused() -> None:
    """Any float: written as pydantic-core writes it, or None (the caller's `to_json` then writes it). None for
    exactly those that are not whole metres below 1e9 km: a third, 1e9 and up, NaN, infinities, the smallest
    doubles."""
    rng = random.Random(2026)
    samples = [_random_double(rng) for _ in range(200_000)]
    samples += [rng.uniform(-1e9, 1e9) for _ in range(100_000)]
    samples += [round(rng.uniform(-1e9, 1e9), 3) for _ in range(100_000)]
    samples += [1e9, -1e9, 999_999_999.999, -999_999_999.999, 1e9 - 0.0005, 0.0005, 0.0009999, 5e-324, 1 / 3,
                2.5e-7, 1e16, 1e22, 1e300, math.inf, -math.inf, math.nan, 0.0, -0.0, 12.345, 0.1 + 0.2]
    for x in samples:
        written = _json.km(x)
        whole_metres = abs(x) < 1e9 and round(abs(x) * 1000) / 1000 == abs(x)
        assert (written is not None) == whole_metres, x
        if written is not None:
            assert written == to_json(x), x


def test_a_subclass_of_float() -> None:
    class Km(float):
        pass

    assert _json.km(Km(12.5)) == to_json(Km(12.5)) == b"12.5"


@pytest.mark.parametrize("call", [_json.string, _json.km])
def test_wrong_calls(call) -> None:
    """A call with no argument, two, or a value of another type is refused (TypeError): an int, a bool, bytes,
    None and the other writer's type; nothing written."""
    with pytest.raises(TypeError):
        call()
    with pytest.raises(TypeError):
        call("a", "b")
    with pytest.raises(TypeError):
        call(value="a")
    wrong = [1, True, b"abc", bytearray(b"abc"), None, [1.0], ("a",), object()]
    wrong.append(1.5 if call is _json.string else "1.5")
    for value in wrong:
        with pytest.raises(TypeError, match="takes a"):
            call(value)


def test_join_as_bytes_join() -> None:
    """`join` gives `b"".join` of a list of bytes: empty lists and pieces, one piece, a subclass of bytes, random
    lists of up to 400 pieces of up to 300 bytes (a reply's ~300 pieces)."""
    class Piece(bytes):
        pass

    rng = random.Random(1)
    lists: list[list[bytes]] = [[], [b""], [b"", b""], [b"x"], [b'{"a":', Piece(b"1"), b"}"], [bytes(range(256))]]
    for _ in range(2_000):
        lists.append([rng.randbytes(rng.choice((0, 1, 2, rng.randrange(301)))) for _ in range(rng.randrange(401))])
    for pieces in lists:
        joined = _json.join(pieces)
        assert type(joined) is bytes and joined == b"".join(pieces)


def test_join_refuses_what_is_not_a_list_of_bytes() -> None:
    """A list holding anything but bytes (a str, a bytearray, a memoryview, None, an int), at its start, middle or
    end, and anything but a list (a tuple, bytes, a generator) are refused (TypeError); nothing is written."""
    with pytest.raises(TypeError):
        _json.join()
    with pytest.raises(TypeError):
        _json.join([b"a"], [b"b"])
    for wrong in ("a", bytearray(b"a"), memoryview(b"a"), None, 1):
        for at in range(3):
            pieces: list[object] = [b"x", b"y"]
            pieces.insert(at, wrong)
            with pytest.raises(TypeError, match="list of bytes"):
                _json.join(pieces)
    for wrong_list in ((b"a", b"b"), b"ab", (piece for piece in [b"a"]), None):
        with pytest.raises(TypeError, match="takes a list"):
            _json.join(wrong_list)


def _plain_cut(text: bytes, names: tuple[bytes, ...]) -> tuple[bytes, ...] | None:
    """The rule `cut` keeps, stated plainly: each name's `"name":null` found after the one before it, and held once
    in the whole text; the pieces end at each key's ':'."""
    pieces, start = [], 0
    for name in names:
        marker = b'"' + name + b'":null'
        at = text.find(marker, start)
        if at < 0 or text.count(marker) != 1:
            return None
        pieces.append(text[start:at + len(marker) - 4])
        start = at + len(marker)
    return (*pieces, text[start:])


# Keys a document may hold: the holes' names, names ending or starting like them, and keys whose JSON holds a
# hole's key with its null inside them (an escaped quote, `:null` in the key).
_NAMES = ("a", "b", "ab", "status", "explanation")
_KEYS = (*_NAMES, "xa", "a_", 'x"a', 'a":null', "a\\", ":null", "", "é")
_TEXTS = ("", "null", ":null", '"a":null', '\\"a\\":null', 'x"a":null', "{", "é", "\\", '"')


def _value(rng: random.Random, depth: int) -> object:
    kind = rng.randrange(6 if depth < 3 else 3)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice((0, 1.5, True, False))
    if kind == 2:
        return "".join(rng.choice(_TEXTS) for _ in range(rng.randrange(4)))
    if kind == 3:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return _document(rng, depth + 1)


def _document(rng: random.Random, depth: int = 0, holes: tuple[str, ...] = ()) -> dict[str, object]:
    """Random keys and values; with `holes`, each hole's key with a null once, in order, among them."""
    keys = [rng.choice(_KEYS) for _ in range(rng.randrange(5))]
    document = {key: _value(rng, depth) for key in keys}
    for hole in holes:
        document.pop(hole, None)
        document[hole] = None
        document.update({key: _value(rng, depth) for key in rng.sample(_KEYS, rng.randrange(3)) if key not in holes})
    return document


def test_cut_keeps_the_plain_rule() -> None:
    """On random documents (nested objects and lists; keys and strings holding quotes, backslashes and `:null`; a
    hole's key nested, repeated, out of order or not null), `cut` gives the plain rule's pieces, or None exactly
    where it finds no such cut; and the pieces joined with `null` in each hole give the text back."""
    rng = random.Random(7)
    answered = refused = 0
    for _ in range(20_000):
        names = tuple(rng.sample(_NAMES, rng.randrange(len(_NAMES) + 1)))
        document = _document(rng, holes=names if rng.random() < 0.6 else ())
        text = to_json(document)
        encoded = tuple(name.encode() for name in names)
        pieces = _json.cut(text, encoded)
        assert pieces == _plain_cut(text, encoded), (text, names)
        if pieces is None:
            refused += 1
        else:
            answered += 1
            assert b"null".join(pieces) == text and all(type(piece) is bytes for piece in pieces)
    assert answered > 5_000 and refused > 5_000  # both outcomes reached often


def test_cut_refuses_wrong_calls() -> None:
    """Not bytes and a tuple, a name that is not bytes, empty or holds a '"': refused (TypeError)."""
    for args in [(), (b"{}",), (b"{}", (b"a",), 1), ("{}", (b"a",)), (b"{}", [b"a"]), (b"{}", ("a",)),
                 (b"{}", (b"",)), (b"{}", (b'a"',)), (bytearray(b"{}"), (b"a",))]:
        with pytest.raises(TypeError, match="cut"):
            _json.cut(*args)
