"""Column arrays over a list of services, so filters are NumPy masks and k-nearest is one scan.

Kept apart from the SQLite store: the arrays are the query engine, the file is the store of record.

Speed without giving up exactness: the points also sit in a fixed grid of small cells (rows sorted by type,
then cell, with a summed-area table of counts), so a k-nearest query looks only at the rows of the types
it asks for in a box around the home, evaluates the filters on those rows alone, and widens the box until
the answer is provably the same as a scan over every row (see `ServiceColumns.nearest`). Filters on area
codes and catchments are lookups in small per-query tables, so no query allocates or scans a full-length
array unless it has to.
"""

from __future__ import annotations

import json
import math
import re
import struct
import threading
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from copy import copy as shallow_copy
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache, partial
from itertools import islice
from json.encoder import encode_basestring
from typing import Any, Final, NamedTuple
from weakref import WeakKeyDictionary

import numpy as np
import shapely
from shapely.geometry import shape

from geodata.areas import AreaCodes
from geodata.distance import haversine_km, haversine_km_radians, point_radians, radians_and_cosines, radius_box
from rehabmap.fit import CAPACITY_RANK, REFERRALS_RANK
from rehabmap.index.base import Coverage, ServiceQuery
from rehabmap.record import Service
from rehabmap.taxonomy import NEED_LABELS, ServiceType, types_narrowed_by
from search import _pass, nearness, tallies
from search.polygons import PolygonLookup
from search.runs import Runs
from search.tallies import Counted, Tallies

_NEED_BITS = {need: np.uint32(1 << i) for i, need in enumerate(NEED_LABELS)}
# "Best fit first"'s rank of taking referrals, indexed by the stored value: 0 no, 1 yes, -1 (the last) not said.
_REFERRALS_RANKS = np.array([REFERRALS_RANK[False], REFERRALS_RANK[True], REFERRALS_RANK[None]], dtype=np.int64)
# A fit as one number (`fit_keys`): the needs left unconfirmed, then the referrals' and the capacity's ranks, each
# below the next part's place.
_REFERRALS_PLACE, _NEEDS_PLACE = 4, 16
assert max(CAPACITY_RANK.values()) < _REFERRALS_PLACE and \
    max(REFERRALS_RANK.values()) * _REFERRALS_PLACE + max(CAPACITY_RANK.values()) < _NEEDS_PLACE
_TYPES = list(ServiceType)
_TYPE_BIT = {t: 1 << i for i, t in enumerate(_TYPES)}
_ALL_TYPES = np.arange(len(_TYPES), dtype=np.int64)
assert len(_TYPES) <= 8, "a type's bit must fit in the low byte of the packed flags"
_UNKNOWN_AGE_MIN, _UNKNOWN_AGE_MAX = -1, 999
# Bits of the packed flags word: the type's bit (0-7), then these. A superseded row is one an edit has
# replaced since the columns were built (`ServiceColumns.superseding`): it passes no query.
# Above them, from bit 16, the row's catchment group (`_Catchments`).
_ACTIVE_SHIFT, _ACCEPTING_SHIFT, _GENDER_SHIFT, _SUPERSEDED_SHIFT, _CATCHMENT_SHIFT = 8, 9, 11, 13, 16
_ACTIVE, _ACCEPTING = 1 << _ACTIVE_SHIFT, 1 << _ACCEPTING_SHIFT
_GENDER_MASK = 3 << _GENDER_SHIFT
_SUPERSEDED = 1 << _SUPERSEDED_SHIFT
# The needs-and-ages word: needs not met (bits 0-15), needs met (16-31), minimum age + 1 (32-47), maximum
# age + 1 (48-63); an unknown age is stored as the bound that passes every age.
_MET_SHIFT, _MIN_AGE_SHIFT, _MAX_AGE_SHIFT = 16, 32, 48
assert len(NEED_LABELS) <= _MET_SHIFT, "a need's bit must fit in 16 bits of the needs-and-ages word"
# The compiled row tests (`search._pass`) read the catchment group and the ages at these places too.
assert (_pass.CATCHMENT_SHIFT, _pass.MIN_AGE_SHIFT, _pass.MAX_AGE_SHIFT) == \
    (_CATCHMENT_SHIFT, _MIN_AGE_SHIFT, _MAX_AGE_SHIFT), "search/_pass.c reads the words' fields elsewhere"
_GENDERS = ["", "female_only", "male_only", "mixed_gender"]


def _type_numbers(bits: int) -> np.ndarray | None:
    """The numbers of the types of these bits, ascending; None for every type (what `_Grid` reads)."""
    if bits == (1 << len(_TYPES)) - 1:
        return None
    numbers = np.array([i for i in range(len(_TYPES)) if bits >> i & 1], dtype=np.int64)
    numbers.flags.writeable = False  # shared by every query of these types
    return numbers


# Per set of types a query can ask for (every subset, made at import: nothing here depends on the queries
# asked), its type bits and its type numbers ascending, or None for every type: `_Prepared`'s two fields,
# in one lookup instead of ~8 µs of set arithmetic a query.
_TYPE_SETS = {frozenset(t for t, bit in _TYPE_BIT.items() if bits & bit): (bits, _type_numbers(bits))
              for bits in range(1 << len(_TYPES))}

# A match's pass gathers with `take(..., mode=_WRAP)`: for indices within the array, as all of its are (positions
# of the cell order, rows, groups), the same elements as the default mode, without its bounds check per element:
# ~3 instructions an element fewer, ~20% of a gather (bench/RESULTS.md, session 26).
_WRAP: Final = "wrap"

# Grid cells of about 2 km: small enough that a dense city block holds a few hundred services at 500k.
_CELL_LAT, _CELL_LON = 0.02, 0.03
# First box: about this many rows per wanted result, before filters.
_ROWS_PER_RESULT, _MIN_ROWS = 24, 64


# What the columns are built from, one value per field per row, in this order. `row_values` is the one
# place these are computed from a Service. They are plain facts about the record (no bit numbers, no
# filter sentinels), so a stored file does not depend on how this module encodes them:
#   - needs are space-separated codes (a need code never holds a space: `parse_need`);
#   - the located area is the record's four area codes, read back through `AreaCodes.codes`;
#   - the catchment codes, which are free text, are a JSON list; the polygon is GeoJSON text;
#   - yes/no is 1/0, and an absent value is "" (text) or -1 (ages and taking referrals, never negative; a date,
#     as its day's number): Python's sqlite3 binds None and bools (not exactly int) through its adapter lookup,
#     ~0.3 µs a value, which would cost the index build a fifth of its speed;
#   - taking referrals (yes, no, not said) and the capacity with the date it was reported are what "best fit
#     first" weighs besides the needs (`rehabmap.fit`), so it ranks every passing row without reading a record.
ROW_FIELDS = ("id", "lat", "lon", "service_type", "subtype", "needs_met", "needs_not_met", "min_age",
              "max_age", "gender", "accepting", "capacity", "capacity_as_of", "active", "icb_code",
              "sub_icb_code", "lad_code", "region_code", "serves", "restricted", "polygon", "name_key")
_NO_AGE = _NOT_SAID = _NO_DATE = -1


def row_values(s: Service) -> tuple[Any, ...]:
    """A service's values for `ROW_FIELDS`, kept cheap: the index build calls it for every record. A
    record's fields are read from its `__dict__`, where pydantic keeps them (an attribute read first looks
    for a descriptor along the model's bases and costs about twice a dict's), and the type's text is the
    member's `_value_` (an Enum's `.value` is a Python-level property, ~0.4 µs)."""
    fields = s.__dict__
    located = fields["areas"]
    area = fields["service_area"]
    codes, polygon = area.__dict__["codes"], area.__dict__["polygon"]
    min_age, max_age = fields["min_age"], fields["max_age"]
    accepting, as_of = fields["accepting_referrals"], fields["capacity_as_of"]
    return (
        fields["id"], fields["lat"], fields["lon"], fields["service_type"]._value_, fields["subtype"] or "",
        " ".join(fields["needs_met"]), " ".join(fields["needs_not_met"]),
        _NO_AGE if min_age is None else min_age, _NO_AGE if max_age is None else max_age,
        fields["gender"] or "", _NOT_SAID if accepting is None else 1 if accepting else 0,
        fields["capacity"] or "", _NO_DATE if as_of is None else as_of.toordinal(),
        1 if fields["status"] == "active" else 0,
        located.icb_code or "", located.sub_icb_code or "", located.lad_code or "", located.region_code or "",
        "[" + ",".join(map(encode_basestring, codes)) + "]" if codes else "[]",
        1 if area.restricted else 0, "" if polygon is None else json.dumps(polygon),
        fields["name"].casefold(),
    )


# How a snapshot stores each field: numbers as little-endian arrays, repeated text as numbers into its
# distinct values, and the per-row text (ids, name keys) as JSON lists.
_SNAPSHOT_NUMBERS = {"lat": "<f8", "lon": "<f8", "min_age": "<i8", "max_age": "<i8", "accepting": "<i1",
                     "capacity_as_of": "<i4",
                     "active": "<i1", "restricted": "<i1"}
_SNAPSHOT_TEXT = ("id", "name_key")
_SNAPSHOT_FACTORIZED = tuple(f for f in ROW_FIELDS if f not in _SNAPSHOT_NUMBERS and f not in _SNAPSHOT_TEXT)
_SNAPSHOT_CODE = "<i4"


class SnapshotPiece(NamedTuple):
    """The columns of some rows (`Snapshot.piece`): each number's and text's values, and each factorized column's
    distinct values with each row's index into them."""

    numbers: dict[str, list[Any]]
    codes: dict[str, tuple[list[str], list[int]]]


class Snapshot:
    """The columns of a whole build, gathered batch by batch as the build writes its rows, and stored with
    it: a reader then loads the columns from a few arrays (`ServiceColumns.from_snapshot`) instead of
    reading every row's values and working them out again (4-5 s at 500k services). The per-row work here
    runs at C speed (`map`, `extend`); only each distinct value of a repeated field costs a Python step."""

    def __init__(self) -> None:
        self._numbers: dict[str, list[Any]] = {name: [] for name in (*_SNAPSHOT_NUMBERS, *_SNAPSHOT_TEXT)}
        self._codes: dict[str, dict[str, int]] = {name: {} for name in _SNAPSHOT_FACTORIZED}
        self._of: dict[str, list[int]] = {name: [] for name in _SNAPSHOT_FACTORIZED}

    def add(self, rows: Sequence[Sequence[Any]], skip: int = 0) -> None:
        """Rows of `ROW_FIELDS` values (`row_values`) after `skip` other values, in the order stored."""
        if not rows:
            return
        for name, column in zip(ROW_FIELDS, islice(zip(*rows), skip, None)):
            if name in self._codes:
                codes = self._codes[name]
                for value in dict.fromkeys(column):
                    codes.setdefault(value, len(codes))
                self._of[name].extend(map(codes.__getitem__, column))
            else:
                self._numbers[name].extend(column)

    def piece(self) -> SnapshotPiece:
        """What was added, to be added to another snapshot (`add_piece`): a parallel import's worker gathers the
        columns of the records it stores in a part file as it encodes them, so the importing process, which copies
        the part's rows with `INSERT … SELECT`, need not read them back from its index to gather them."""
        return SnapshotPiece(self._numbers,
                             {name: (list(codes), self._of[name]) for name, codes in self._codes.items()})

    def add_piece(self, piece: SnapshotPiece, start: int, stop: int) -> None:
        """Rows [start, stop) of a piece: what `add` gathers of the same rows. A factorized column's distinct values
        are numbered here in the order they first appear in those rows, as `add` numbers them."""
        for name, column in piece.numbers.items():
            self._numbers[name] += column[start:stop]
        for name, (values, of) in piece.codes.items():
            rows, codes = of[start:stop], self._codes[name]
            here = {local: codes.setdefault(values[local], len(codes)) for local in dict.fromkeys(rows)}
            self._of[name].extend(map(here.__getitem__, rows))

    @property
    def ids(self) -> list[str]:
        """The ids of the rows added so far, in order."""
        return self._numbers["id"]

    def blobs(self) -> dict[str, bytes]:
        """The snapshot as named byte strings (`ServiceColumns.from_snapshot` reads them back)."""
        by_id, by_name = _orders(self._numbers["id"], self._numbers["name_key"])
        out = {name: _packed(self._numbers[name], dtype) for name, dtype in _SNAPSHOT_NUMBERS.items()}
        out.update({name: _json_texts(self._numbers[name]) for name in _SNAPSHOT_TEXT})
        for name, codes in self._codes.items():
            out[name] = _packed(self._of[name], _SNAPSHOT_CODE)
            out[name + ".values"] = json.dumps(list(codes)).encode()
        # The polygons as WKB (exact doubles), which load ~10x faster than GeoJSON through `shape`.
        wkb = [b"" if not text else shapely.to_wkb(_polygon(text)) for text in self._codes["polygon"]]
        out["polygon.wkb"] = b"".join(wkb)
        out["polygon.wkb_sizes"] = np.array([len(w) for w in wkb], dtype="<i8").tobytes()
        out["id_order"] = by_id.astype("<i8").tobytes()
        out["name_order"] = by_name.astype("<i8").tobytes()
        return out


_STRUCT_CODES = {"<f8": "d", "<i8": "q", "<i4": "i", "<i1": "b"}  # `struct`'s codes of the snapshot's dtypes


def _packed(values: list[Any], dtype: str) -> bytes:
    """`np.array(values, dtype=dtype).tobytes()`, the same bytes, by `struct`: NumPy first works out the type
    and shape of each of a list's Python numbers (~290 instructions an element), `struct` converts each
    straight to its C type, in about half of that."""
    return struct.pack(f"<{len(values)}{_STRUCT_CODES[dtype]}", *values)


# Text that `json.dumps` writes as it is: printable ASCII but the quote and the backslash.
_JSON_AS_IS = re.compile(r'[ !#-\[\]-~]*')
_TEXT_PIECE = 1024


def _json_texts(texts: list[str]) -> bytes:
    """`json.dumps(texts).encode()`, the same bytes, made for most texts by a join: the encoder looks at each
    character of each text to escape it (ids and name keys: ~4.4k instructions a row of the import), where a
    piece of texts with nothing to escape is checked in one scan. A piece holding anything to escape (a
    quote, a control or non-ASCII character) is written by `json.dumps` itself."""
    pieces = []
    for start in range(0, len(texts), _TEXT_PIECE):
        piece = texts[start:start + _TEXT_PIECE]
        as_is = _JSON_AS_IS.fullmatch("".join(piece))
        pieces.append('"' + '", "'.join(piece) + '"' if as_is else json.dumps(piece)[1:-1])
    return ("[" + ", ".join(pieces) + "]").encode()


def _orders(ids: Sequence[str], name_keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The rows in id order, and in name order (name key, then id). Two sorts keyed by C-level lookups
    rather than one by a Python key tuple: the second is stable, so rows of one name key stay in id order
    (ids are unique)."""
    by_id = sorted(range(len(ids)), key=ids.__getitem__)
    return np.array(by_id, dtype=np.int64), np.array(sorted(by_id, key=name_keys.__getitem__), dtype=np.int64)


class _Text:
    """The per-row text of a generation, its ids and name keys, decoded on first use.

    No search reads them: a search answers with row numbers and reads the records from the file. Decoding
    them and keeping them in object arrays was half of opening 500k services, so it waits until a lookup by
    id, a reader's first catch-up after an edit, or the list of every id asks. One per generation, shared by
    the copies that edits lay over it (`ServiceColumns.superseding`), so it is decoded once."""

    def __init__(self, ids: Sequence[str] | bytes, name_keys: Sequence[str] | bytes, id_order: np.ndarray,
                 name_order: np.ndarray) -> None:
        self._sources = {"id": ids, "name_key": name_keys}  # a list, or a snapshot's JSON list (bytes)
        self._decoded: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.id_order, self.name_order = id_order, name_order

    def _objects(self, name: str) -> np.ndarray:
        with self._lock:  # once, whichever thread asks first
            out = self._decoded.get(name)
            if out is None:
                texts = self._sources.pop(name)
                values = json.loads(texts) if isinstance(texts, bytes) else texts
                out = self._decoded[name] = np.empty(len(values), dtype=object)
                out[:] = values
            return out

    @property
    def ids(self) -> np.ndarray:
        return self._objects("id")

    @cached_property
    def ids_in_order(self) -> np.ndarray:
        return self.ids[self.id_order]

    @cached_property
    def names_in_order(self) -> np.ndarray:
        """The name keys in name order: where a record edited later sorts among these rows (`OverlaidColumns`)."""
        return self._objects("name_key")[self.name_order]


def _polygons(polygons: Sequence[str] | Factorized) -> tuple[np.ndarray, list[Any]]:
    """The rows with a catchment polygon, and their shapes (decoded once per distinct polygon)."""
    of, values = _factorize(polygons)
    rows = np.flatnonzero(np.array([bool(p) for p in values], dtype=bool)[of] if len(of) else
                          np.zeros(0, dtype=bool)).astype(np.int64)
    shapes = polygons.parsed if isinstance(polygons, Factorized) else None
    return rows, [_polygon(values[of[i]]) if shapes is None else shapes[of[i]] for i in rows]


def _polygon(text: str) -> Any:
    """A catchment polygon from its stored GeoJSON text."""
    return shape(json.loads(text))


def _wkb_shapes(blobs: Mapping[str, bytes]) -> list[Any]:
    """The polygons `Snapshot.blobs` stored as WKB, one per distinct polygon value (None for none)."""
    sizes = np.frombuffer(blobs["polygon.wkb_sizes"], dtype="<i8")
    ends = np.cumsum(sizes).tolist()
    data = blobs["polygon.wkb"]
    pieces = [data[end - size:end] for end, size in zip(ends, sizes.tolist())]
    found = [i for i, piece in enumerate(pieces) if piece]
    shapes: list[Any] = [None] * len(pieces)
    for i, geometry in zip(found, shapely.from_wkb([pieces[i] for i in found]) if found else []):
        shapes[i] = geometry
    return shapes


@dataclass(frozen=True)
class Factorized:
    """A column as each row's number into its distinct values, first seen first: how a snapshot stores a
    column that repeats a few values, so that loading it costs per distinct value, not per row."""

    of: np.ndarray
    values: list[Any]
    parsed: list[Any] | None = None  # each value decoded (the catchment polygons' shapes), where stored so


def _factorize(values: Sequence[Hashable] | Factorized) -> tuple[np.ndarray, list[Any]]:
    """Number the distinct values, first seen first: (per row its value's number, the distinct values).

    Most columns hold a few hundred distinct values at most, so each is decoded once, not once per row."""
    if isinstance(values, Factorized):
        return values.of, values.values
    distinct = list(dict.fromkeys(values))
    number = {value: i for i, value in enumerate(distinct)}
    return np.fromiter(map(number.__getitem__, values), dtype=np.int64, count=len(values)), distinct


def _factorize_together(*columns: Sequence[Hashable] | Factorized) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """`_factorize` of the rows' combined values of several columns, with vectorised work only per row."""
    parts = [_factorize(column) for column in columns]
    if not len(parts[0][0]):
        return np.zeros(0, dtype=np.int64), []
    key = np.zeros(len(parts[0][0]), dtype=np.int64)
    for of, values in parts:  # mixed radix: a few hundred values per column at most, far from overflow
        key = key * max(len(values), 1) + of
    combos, first, of = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first)  # first seen first, as `_factorize`
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    distinct = []
    for combo in combos[order]:
        digits = []
        for _, values in reversed(parts):
            combo, digit = divmod(int(combo), max(len(values), 1))
            digits.append(values[digit])
        distinct.append(tuple(reversed(digits)))
    return rank[of.ravel()], distinct


def _shared(values: Sequence[str] | Factorized) -> np.ndarray:
    """An object array of the strings, each distinct string one object (rows repeat a handful of values)."""
    of, distinct = _factorize(values)
    table = np.empty(len(distinct), dtype=object)
    table[:] = distinct
    return table[of]


def _languages(needs: Sequence[str]) -> tuple[str, ...]:
    return tuple(x for x in needs if x.startswith("language:"))


def _languages_of(texts: Sequence[str], need_lists: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """`_languages` of each needs list, skipping the lists whose text names no language (most of them)."""
    return [_languages(needs) if "language:" in text else () for text, needs in zip(texts, need_lists)]


Pair = tuple[np.ndarray, np.ndarray]  # rows (or positions) and their distances
_NO_FLAGS: Final = np.zeros(0, dtype=bool)
_NO_PAIR: Final = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
for _empty in _NO_PAIR:
    _empty.flags.writeable = False  # shared by every answer that has none


class _CodeSets:
    """Per row, a small set of codes; answers 'does the row hold any of these codes' for some rows.

    Built from groups: per row, which of a few distinct code lists it holds (`keys[of[row]]`). A question
    is answered per group first (a per-query boolean table over the groups, set from each code's groups),
    then for the rows asked about by one gather of their group numbers.
    The per-group work grows with the distinct lists, not the rows: a few hundred in a real directory (the
    located areas are bounded by England's geography, catchments by the areas they name).
    """

    def __init__(self, of: np.ndarray, keys: Sequence[Sequence[str]], dtype: type[np.integer] = np.int32) -> None:
        """`dtype`: the group numbers' type; NumPy's index type (`np.intp`) for sets whose numbers index a
        per-query table on every row a match reads, as a narrower index is cast first (~11 instructions a
        row); else the narrower, for memory."""
        keys = [tuple(dict.fromkeys(k)) for k in keys]
        # Rows of each group, ascending: one stable sort of the group numbers.
        # A stable sort of 16-bit keys is a radix sort, several times faster than on wider ones (same order).
        order = np.argsort(of.astype(np.int16) if len(keys) <= np.iinfo(np.int16).max else of, kind="stable")
        bounds = np.searchsorted(of[order], np.arange(len(keys) + 1))
        parts: dict[str, list[np.ndarray]] = defaultdict(list)
        groups_of: dict[str, list[int]] = defaultdict(list)
        for group, key in enumerate(keys):
            for code in key:
                parts[code].append(order[bounds[group]:bounds[group + 1]])
                groups_of[code].append(group)
        self.rows_by_code = {code: p[0] if len(p) == 1 else np.sort(np.concatenate(p))
                             for code, p in parts.items()}
        # Per code, the groups holding it: a question names one to a few codes, so its table is set by one
        # scatter per code (a home ICB: one) rather than worked out over every group's codes.
        self._groups_of = {code: np.array(groups, dtype=np.int64) for code, groups in groups_of.items()}
        self.of: np.ndarray = np.asarray(of, dtype=dtype)
        self.keys = keys
        self.groups = len(keys)

    def reordered(self, order: np.ndarray) -> _CodeSets:
        """The same sets, for the rows laid out in this order (row order[i] becomes row i)."""
        return _CodeSets(self.of[order], self.keys, self.of.dtype.type)

    def any_of(self, codes: frozenset[str] | Sequence[str], rows: np.ndarray) -> np.ndarray:
        return self.groups_holding(codes)[self.of[rows]]

    def groups_holding(self, codes: frozenset[str] | Sequence[str]) -> np.ndarray:
        """Per group, whether it holds any of the codes."""
        held = np.zeros(self.groups, dtype=bool)
        for code in codes:
            groups = self._groups_of.get(code)
            if groups is not None:
                held[groups] = True
        return held

    def rows_with(self, codes: frozenset[str] | Sequence[str]) -> np.ndarray:
        """Every row holding any of the codes, ascending."""
        lists = [self.rows_by_code[c] for c in codes if c in self.rows_by_code]
        if not lists:
            return np.zeros(0, dtype=np.int64)
        return lists[0] if len(lists) == 1 else np.unique(np.concatenate(lists))


class _Catchments:
    """The rows' catchments as a few groups, so the catchment filter is one lookup per row in a per-home
    table over the groups (`covering`). A row's group is its catchment codes' group (`_CodeSets`) when it is
    restricted and has no polygon; its own group when it has a polygon (a polygon is one row's); and one
    last group for every unrestricted row, which covers every home."""

    def __init__(self, serves: _CodeSets, polygon_open: np.ndarray, polygon_serves: np.ndarray) -> None:
        self.codes, self.polygon_open, self.polygon_serves = serves.groups, polygon_open, polygon_serves
        # The table of a home in no area a catchment names, and per code a catchment names, the table of a
        # home in that area alone (polygons aside: ~0.4 MB at 100k services, ~1.7 at 500k). A home's table is
        # these ORed over its codes: each piece of `_by_codes` is an OR over the codes, so it is the table
        # `_by_codes` lays out from the home's codes, for one step or two instead of ~8 (bench/RESULTS.md).
        self._no_code = self._by_codes(np.zeros(self.codes, dtype=bool))
        self._by_code = {code: self._by_codes(serves.groups_holding((code,))) for code in serves.rows_by_code}

    @classmethod
    def of(cls, restricted: np.ndarray, serves: _CodeSets, polygon_rows: np.ndarray) -> tuple[np.ndarray, _Catchments]:
        """Each row's group, and the groups (`polygon_rows[i]` holds polygon i)."""
        s, p = serves.groups, len(polygon_rows)
        group = np.where(restricted, serves.of, s + p)
        group[polygon_rows] = s + np.arange(p)
        return group, cls(serves, ~restricted[polygon_rows], serves.of[polygon_rows])

    def _by_codes(self, serving: np.ndarray) -> np.ndarray:
        """Per group, whether it covers a home held by no polygon: `serving` per catchment codes' group,
        whether it names one of the home's areas. Laid out piece by piece (the codes' groups are `serving`
        itself, the last group is open) rather than gathered over every group."""
        s, p = self.codes, len(self.polygon_open)
        covered = np.empty(s + p + 1, dtype=bool)
        covered[:s] = serving
        covered[s:s + p] = serving[self.polygon_serves]
        covered[s:s + p] |= self.polygon_open
        covered[-1] = True
        covered.flags.writeable = False  # shared by every home: `covering` copies it
        return covered

    def covering(self, codes: Iterable[str], polygon_hits: list[int]) -> np.ndarray:
        """Per group, whether it covers a home in the areas of these codes, held by these polygons."""
        tables = [table for table in map(self._by_code.get, codes) if table is not None]
        covered = np.empty(len(self._no_code), dtype=bool)
        # One compiled step (`search._pass.union`): the copy, the ORs and the polygons' scatter were ~27k
        # instructions a match at 100k, ~15k of them the scatter of ~8 polygons (bench/RESULTS.md, session 30).
        _pass.union(tables or [self._no_code], polygon_hits, self.codes, covered)
        return covered


_NO_RUNS: Final = Runs(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0)


class _Grid:
    """Rows sorted by type, then by a fixed lat/lon cell, with where each type's rows of each cell start and
    a summed-area table of the cells' counts (every type).

    Type first: a query for some types reads a run per row of cells of each type asked for, so a 50 km
    box's filters at 100k look at ~3.2k rows instead of ~11.7k for the bench's two types, at about the cost
    in runs of reading every type (bench/RESULTS.md, sixth pass). A cell's rows of every type are then a
    run per type (`cell_runs`)."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray, type_: np.ndarray) -> None:
        n = len(lat)
        self.empty = n == 0
        self.lat0 = float(lat.min()) if n else 0.0
        self.lon0 = float(lon.min()) if n else 0.0
        self.ny = int((float(lat.max()) - self.lat0) // _CELL_LAT) + 1 if n else 1
        self.nx = int((float(lon.max()) - self.lon0) // _CELL_LON) + 1 if n else 1
        self.cells = self.ny * self.nx
        iy, ix = self.cell_yx(lat, lon)
        cell = iy * self.nx + ix
        key = type_.astype(np.int64) * self.cells + cell
        self.order = np.argsort(key, kind="stable")
        # Per type and cell (type * cells + cell), where its rows start in the order, and the end: a row of
        # cells' last column's end is the next row's first start, so a box's row of cells is one run (`runs`).
        self.start = np.searchsorted(key[self.order], np.arange(len(_TYPES) * self.cells + 1))
        counts = np.bincount(cell, minlength=self.cells)
        self.cell_rows = counts  # per cell, its rows of every type
        sat = np.zeros((self.ny + 1, self.nx + 1), dtype=np.int64)
        sat[1:, 1:] = counts.reshape(self.ny, self.nx).cumsum(axis=0).cumsum(axis=1)
        # Read through a memoryview: each lookup a Python int, ~2.5k instructions a count where NumPy's four
        # scalar lookups and their sum were ~6.9k (bench/RESULTS.md, session 30).
        self.sat = sat.data

    def cell_yx(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's cell row and column."""
        return (np.clip(((lat - self.lat0) // _CELL_LAT).astype(np.int64), 0, self.ny - 1),
                np.clip(((lon - self.lon0) // _CELL_LON).astype(np.int64), 0, self.nx - 1))

    def cells_of(self, lat_lo: float, lat_hi: float, lon_lo: float, lon_hi: float) -> tuple[int, int, int, int] | None:
        """Inclusive cell range covering the box, or None when the box misses the grid."""
        y0 = max(math.floor((lat_lo - self.lat0) / _CELL_LAT), 0)
        y1 = min(math.floor((lat_hi - self.lat0) / _CELL_LAT), self.ny - 1)
        x0 = max(math.floor((lon_lo - self.lon0) / _CELL_LON), 0)
        x1 = min(math.floor((lon_hi - self.lon0) / _CELL_LON), self.nx - 1)
        if y0 > y1 or x0 > x1:
            return None
        return y0, y1, x0, x1

    def cell_runs(self, cells: np.ndarray, types: np.ndarray | None = None,
                  outside: tuple[int, int, int, int] | None = None) -> Runs:
        """Where the rows of these cells (flat numbers, ascending) sit in the order, ascending; with `types`
        (type numbers, ascending), those of these types alone: a run per type and cell; with `outside` (a box of
        cells), those of the cells outside it alone. One compiled loop (`search._pass.cell_runs`), where the
        cells' rows and columns, the box's tests and the two gathers were ~14 NumPy steps."""
        types = _ALL_TYPES if types is None else types
        size = len(types) * len(cells)
        begins, ends = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
        count, total = _pass.cell_runs(self.start, self.cells, self.nx, cells, types, outside, begins, ends)
        return Runs(begins[:count], ends[:count], total)

    def everything(self, box: tuple[int, int, int, int] | None) -> bool:
        return box is not None and box == (0, self.ny - 1, 0, self.nx - 1)

    def count(self, box: tuple[int, int, int, int] | None) -> int:
        if box is None:
            return 0
        y0, y1, x0, x1 = box
        s = self.sat
        return s[y1 + 1, x1 + 1] - s[y0, x1 + 1] - s[y1 + 1, x0] + s[y0, x0]

    def runs(self, box: tuple[int, int, int, int] | None, types: np.ndarray | None = None,
             outside: np.ndarray | None = None) -> Runs:
        """Where the box's rows (of these types: default every type) sit in the order, ascending: a run per
        type and row of cells, types first; then, with `outside` (cells, flat numbers ascending), the rows of
        those of its cells outside the box, as `cell_runs` gives them. One compiled loop (`search._pass.box_runs`),
        where the box's runs were two gathers from a strided view of `start` (~23k instructions a match at 100k)
        and the cells outside it a call and a join of their own."""
        if box is None:
            return _NO_RUNS
        types = _ALL_TYPES if types is None else types
        size = len(types) * (box[1] - box[0] + 1 + (0 if outside is None else len(outside)))
        begins, ends = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
        count, total = _pass.box_runs(self.start, self.cells, self.nx, outside, types, box, begins, ends)
        return Runs(begins[:count], ends[:count], total)


def _holds(box: tuple[int, int, int, int], span: tuple[int, int, int, int]) -> bool:
    """Whether a box of cells holds a span of cells (each: first and last row, first and last column)."""
    return box[0] <= span[0] and span[1] <= box[1] and box[2] <= span[2] and span[3] <= box[3]


class _AskedTypes(NamedTuple):
    """What a query's types and subtypes turn into for the row tests (`_asked_types`), the first fields of
    `_Prepared` in its order."""

    type_bits: int | None
    types: np.ndarray | None  # the type numbers asked for, ascending, when not every type: `_Grid.positions`
    subtypes: tuple[str, ...]
    narrowed_bits: int  # the types the subtypes belong to: only these are narrowed to the subtypes


@lru_cache(maxsize=1024)
def _asked_types(types: frozenset[ServiceType] | None, subtypes: frozenset[str] | None) -> _AskedTypes:
    """`_AskedTypes` for these types and subtypes, worked out once per combination asked: nothing in it depends
    on the index or on anything personal of a search (bench/RESULTS.md, session 26). The needs are not kept
    here: a search's needs are never stored beyond its request, even as a cache's key."""
    type_bits, numbers = (None, None) if types is None else _TYPE_SETS[frozenset(types)]
    return _AskedTypes(
        type_bits, numbers, tuple(sorted(subtypes or ())),
        sum(_TYPE_BIT[t] for t in types_narrowed_by(subtypes)) if subtypes else 0)


@dataclass
class _Prepared:
    """One query's filters, turned into the constants and tables the row tests use: `_AskedTypes`' fields
    first, then what depends on the rest of the query (made positionally: a third of a keyword call's cost)."""

    type_bits: int | None
    types: np.ndarray | None
    subtypes: tuple[str, ...]
    narrowed_bits: int
    wanted: np.uint32
    needs_mask: int
    needs_value: int
    confirmed: bool
    languages: tuple[str, ...]
    include_inactive: bool
    age: int | None
    other_gender: int | None
    in_areas: np.ndarray | None  # per located-area group, whether it lies in an area asked for
    outside_excluded: np.ndarray | None  # per located-area group, whether it lies outside every excluded area
    covering: np.ndarray | None  # with a home to cover: per catchment group, whether it covers the home
    accepting_only: bool


def _fit_columns(accepting: Sequence[int], capacity: Sequence[str] | Factorized,
                 capacity_as_of: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: whether it takes referrals (the filter's yes); what "best fit first" weighs of taking referrals and
    of the capacity (`rehabmap.fit`'s ranks); and the day the capacity was reported (its number; -1 for none):
    `ServiceColumns.fit_keys`. `accepting`: 1 yes, 0 no, -1 not said."""
    said = np.asarray(accepting, dtype=np.int8)
    capacity_of, capacity_values = _factorize(capacity)
    capacity_rank = np.array([CAPACITY_RANK[value or None] for value in capacity_values], dtype=np.int64)[capacity_of]
    return said == 1, _REFERRALS_RANKS[said], capacity_rank, np.array(capacity_as_of, dtype=np.int32)


class ServiceColumns:
    """Immutable column view of one index generation.

    Built from plain per-row values (`ROW_FIELDS`, as `row_values` computes them from a Service), not from
    Service objects: the embedded index stores those values beside each record, so a generation loads
    without validating a single record, and holds no Service at all (records are fetched when returned).
    """

    def __init__(self, fields: Sequence[Any],
                 orders: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """`fields`: for each of `ROW_FIELDS` in order, its value on every row (or `Factorized`). `orders`:
        the rows in id order and in name order (name key, then id), when a snapshot has them worked out. The
        ids and name keys may be the snapshot's JSON (bytes), decoded on first use: see `_Text`."""
        (ids, lat, lon, types, subtypes, needs_met, needs_not_met, min_age, max_age, genders, accepting, capacity,
         capacity_as_of, active, icb, sub_icb, lad, region, serves, restricted, polygons, name_keys) = fields
        self.lat = np.array(lat, dtype=np.float64)
        n = len(self.lat)
        self.lon = np.array(lon, dtype=np.float64)
        type_of, type_values = _factorize(types)
        self.type = np.array([_TYPES.index(ServiceType(t)) for t in type_values], dtype=np.int8)[type_of]
        self.type_bit = (np.ones(n, dtype=np.uint8) << self.type.astype(np.uint8))
        self.subtype = _shared(subtypes)
        met_of, met_values = _factorize(needs_met)
        not_of, not_values = _factorize(needs_not_met)
        met_lists, not_lists = [v.split() for v in met_values], [v.split() for v in not_values]
        self.met = _bit_words(met_lists)[met_of]
        self.not_met = _bit_words(not_lists)[not_of]
        self._lang_met = _CodeSets(met_of, _languages_of(met_values, met_lists))
        self._lang_not = _CodeSets(not_of, _languages_of(not_values, not_lists))
        self.lang_met, self.lang_not = self._lang_met.rows_by_code, self._lang_not.rows_by_code
        self.min_age = np.array(min_age, dtype=np.int64)
        self.min_age[self.min_age == _NO_AGE] = _UNKNOWN_AGE_MIN
        self.max_age = np.array(max_age, dtype=np.int64)
        self.max_age[self.max_age == _NO_AGE] = _UNKNOWN_AGE_MAX
        gender_of, gender_values = _factorize(genders)
        self.gender = _shared(Factorized(gender_of, gender_values))
        self.gender_code = np.array([_GENDERS.index(g) for g in gender_values], dtype=np.int8)[gender_of]
        self.accepting, self.referrals_rank, self.capacity_rank, self.capacity_as_of = _fit_columns(
            accepting, capacity, capacity_as_of)
        self.active = np.array(active, dtype=bool)
        located_of, located = _factorize_together(icb, sub_icb, lad, region)
        self._located = _CodeSets(located_of, [
            AreaCodes(icb_code=a or None, sub_icb_code=b or None, lad_code=c or None, region_code=d or None).codes()
            for a, b, c, d in located], np.intp)
        self.located_in = self._located.rows_by_code
        self.restricted = np.array(restricted, dtype=bool)
        serves_of, serves = _factorize(serves)
        self._serves = _CodeSets(serves_of, [json.loads(text) for text in serves])
        self.serves = self._serves.rows_by_code
        self.polygon_rows, self.polygons = _polygons(polygons)
        self._polygon_tree = shapely.STRtree(self.polygons) if self.polygons else None
        self._prepared_polygons = np.array(self.polygons, dtype=object)
        if self.polygons:
            # Prepared polygons answer point-in-polygon fast; their index is built lazily and that first
            # build is not thread-safe, so build them all now (one test at each centroid).
            shapely.prepare(self._prepared_polygons)
            centres = shapely.get_coordinates(shapely.centroid(self._prepared_polygons))
            shapely.intersects_xy(self._prepared_polygons, centres[:, 0], centres[:, 1])
        catchment, self._catchments = _Catchments.of(self.restricted, self._serves, self.polygon_rows)
        # Per home asked about, which catchment groups cover it (`_covering`), kept while the caller holds that home's
        # `Coverage` (the questions of one match share one) and dropped with it: never beyond the request.
        self._homes: WeakKeyDictionary[Coverage, np.ndarray] = WeakKeyDictionary()
        # The one-bit and two-bit columns and the catchment group packed in one word per row, and the needs
        # and ages in another: one gather answers each set of filters (`passing`).
        self._flags = (self.type_bit.astype(np.uint64)
                       | (self.active.astype(np.uint64) << _ACTIVE_SHIFT)
                       | (self.accepting.astype(np.uint64) << _ACCEPTING_SHIFT)
                       | (self.gender_code.astype(np.uint64) << _GENDER_SHIFT)
                       | (catchment.astype(np.uint64) << _CATCHMENT_SHIFT))
        self._needs_ages = (self.not_met.astype(np.uint64) | (self.met.astype(np.uint64) << _MET_SHIFT)
                            | ((self.min_age + 1).astype(np.uint64) << _MIN_AGE_SHIFT)
                            | ((self.max_age + 1).astype(np.uint64) << _MAX_AGE_SHIFT))
        id_order, order = orders if orders is not None else _orders(ids, name_keys)
        self.name_order = np.array(order, dtype=np.int64)
        self._text = _Text(ids, name_keys, np.array(id_order, dtype=np.int64), self.name_order)
        self.name_rank = np.empty(n, dtype=np.int64)
        self.name_rank[order] = np.arange(n)
        # Ids are unique, so ordering by this rank is ordering by id.
        self.id_rank = np.empty(n, dtype=np.int64)
        self.id_rank[id_order] = np.arange(n)
        self._grid = _Grid(self.lat, self.lon, self.type)
        self._all = np.arange(n, dtype=np.int64)
        self._positions: dict[tuple[str, str, str], int] = {}  # see name_position

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]]) -> ServiceColumns:
        """From one tuple of `ROW_FIELDS` values per row."""
        return cls(list(zip(*rows)) if rows else [() for _ in ROW_FIELDS])

    @classmethod
    def from_snapshot(cls, blobs: Mapping[str, bytes]) -> ServiceColumns:
        """From what `Snapshot.blobs` stored."""
        fields: list[Any] = []
        for name in ROW_FIELDS:
            if name in _SNAPSHOT_NUMBERS:
                fields.append(np.frombuffer(blobs[name], dtype=_SNAPSHOT_NUMBERS[name]))
            elif name in _SNAPSHOT_TEXT:
                fields.append(blobs[name])  # decoded on first use (`_Text`)
            else:
                fields.append(Factorized(np.frombuffer(blobs[name], dtype=_SNAPSHOT_CODE),
                                         json.loads(blobs[name + ".values"]),
                                         _wkb_shapes(blobs) if name == "polygon" else None))
        return cls(fields, orders=(np.frombuffer(blobs["id_order"], dtype="<i8"),
                                   np.frombuffer(blobs["name_order"], dtype="<i8")))

    @classmethod
    def from_services(cls, services: Iterable[Service]) -> ServiceColumns:
        return cls.from_rows([row_values(s) for s in services])

    def __len__(self) -> int:
        return len(self._all)

    @property
    def ids(self) -> np.ndarray:
        return self._text.ids

    def row_of(self, service_id: str) -> int | None:
        in_order = self._text.ids_in_order
        at = int(np.searchsorted(in_order, service_id))
        return int(self._text.id_order[at]) if at < len(in_order) and in_order[at] == service_id else None

    def superseding(self, rows: np.ndarray) -> ServiceColumns:
        """These columns with the given rows left out of every answer (edits replaced them): a shallow copy
        that shares every array but the flags word."""
        copy = object.__new__(ServiceColumns)
        copy.__dict__.update(self.__dict__)
        copy._flags = self._flags.copy()
        copy._flags[rows] |= np.uint64(_SUPERSEDED)
        cells = self.__dict__.get("_cells")
        if cells is not None:
            copy.__dict__["_cells"] = cells.superseding(self._cell_position[rows])
        tallies = self.__dict__.get("_tallies")
        if tallies is not None:  # else the copy tallies its own rows, leaving the superseded ones out
            copy.__dict__["_tallies"] = tallies.superseding(*self._grid.cell_yx(self.lat[rows], self.lon[rows]))
        return copy

    @cached_property
    def _tallies(self) -> Tallies:
        """Per block of cells, classes of rows with their counts (`search.tallies`), so `around` counts the
        blocks wholly inside its radius without reading their rows; made on the first `around`."""
        grid, flags = self._grid, self._flags
        return Tallies.build(*grid.cell_yx(self.lat, self.lon), grid.ny, grid.nx, (grid.lat0, grid.lon0),
                             (_CELL_LAT, _CELL_LON), self.lat, self.lon,
                             (flags & np.uint64(_ACTIVE | _SUPERSEDED)) == _ACTIVE, len(_TYPES), self.type,
                             flags >> np.uint64(_CATCHMENT_SHIFT), self._located.of, self.met,
                             self.not_met, len(NEED_LABELS))

    @cached_property
    def _cells(self) -> ServiceColumns:
        """These columns with what `passing` reads laid out in the grid's order (type, then cell), so the rows
        of a box are a few contiguous runs (`_Grid.positions`) instead of rows scattered over the whole index:
        gathering them is ~4x faster at 100k services (bench/RESULTS.md); an area's rows lie close together
        too. Only the filters (`select`, `passing`), `type`, the located areas and `top_k` may be asked of it,
        in positions of the cell order; made on the first query: ~82 bytes a row more (~39 MiB at 500k
        services)."""
        order = self._grid.order
        copy = object.__new__(ServiceColumns)
        copy.__dict__.update(self.__dict__)
        for name in ("_flags", "_needs_ages", "type", "subtype", "id_rank"):
            setattr(copy, name, getattr(self, name)[order])
        for name in ("_lang_met", "_lang_not"):
            sets = shallow_copy(getattr(self, name))
            sets.of = sets.of[order]
            setattr(copy, name, sets)
        copy._located = self._located.reordered(order)  # its rows by code, as positions: `candidates`
        return copy

    def name_position(self, name_key: str, service_id: str) -> int:
        """How many rows sort before a record with this name key and id in name order (name, then id).
        Remembered, as each catch-up of a reader asks again for every row edited since its load."""
        key = ("name", name_key, service_id)
        found = self._positions.get(key)
        if found is None:
            names_in_order = self._text.names_in_order
            lo = int(np.searchsorted(names_in_order, name_key, side="left"))
            hi = int(np.searchsorted(names_in_order, name_key, side="right"))
            found = lo if lo == hi else lo + int(np.searchsorted(self.ids[self.name_order[lo:hi]], service_id))
            self._positions[key] = found
        return found

    def id_position(self, service_id: str) -> int:
        """How many rows have an id that sorts before this one (remembered, as `name_position`)."""
        key = ("id", service_id, "")
        found = self._positions.get(key)
        if found is None:
            found = self._positions[key] = int(np.searchsorted(self._text.ids_in_order, service_id, side="left"))
        return found

    def _rows(self, table: dict[str, np.ndarray], keys: frozenset[str] | Sequence[str]) -> np.ndarray:
        mask = np.zeros(len(self), dtype=bool)
        for key in keys:
            rows = table.get(key)
            if rows is not None:
                mask[rows] = True
        return mask

    def covered(self, home: Coverage) -> np.ndarray:
        """Services whose catchment includes the home: unrestricted, or a code or polygon that holds it."""
        mask = ~self.restricted | self._rows(self.serves, home.codes)
        if self._polygon_tree is not None:
            hits = self._polygon_tree.query(shapely.Point(home.lon, home.lat), predicate="intersects")
            mask[self.polygon_rows[hits]] = True
        return mask

    def mask(self, query: ServiceQuery) -> np.ndarray:
        return self.passing(query, self._all)

    # --- filters on some rows --------------------------------------------------------------------------

    def prepare(self, query: ServiceQuery) -> _Prepared:
        other = None
        if query.gender is not None:
            other = _GENDERS.index("male_only" if query.gender == "female" else "female_only")
        wanted = _bits(query.needs)
        confirmed = query.needs_confirmed
        met = wanted << _MET_SHIFT if confirmed else 0  # the need bits' "met" half, tested when confirmed
        return _Prepared(
            *_asked_types(query.types, query.subtypes), np.uint32(wanted), wanted | met, met, confirmed,
            _languages(query.needs), query.include_inactive, query.age, other,
            None if query.area_codes is None else self._located.groups_holding(query.area_codes),
            None if query.exclude_area_codes is None else ~self._located.groups_holding(query.exclude_area_codes),
            None if query.covers is None else self._covering(query.covers), query.accepting_only)

    def passing(self, query: ServiceQuery | _Prepared, rows: np.ndarray) -> np.ndarray:
        """For each of `rows`, whether that service passes the query's hard filters."""
        mask = np.zeros(len(rows), dtype=bool)
        mask[self.kept(query, rows)] = True
        return mask

    def kept(self, query: ServiceQuery | _Prepared, rows: np.ndarray, *, typed: bool = False,
             as_rows: bool = False) -> np.ndarray:
        """Where in `rows` (int64) the services passing the query's hard filters are, ascending; with `as_rows`,
        those rows themselves (`rows[kept(...)]`, without gathering them again). `typed`: every row is of a
        type asked for, so the type is not tested.

        The packed flags word and the needs-and-ages word are tested first, in one compiled loop over the rows
        (`search._pass`: status, type, gender, catchment, needs and age, the most selective filters; ~18
        instructions a row for all of them, where each NumPy step over a box's rows cost 12-50k, bench/RESULTS.md,
        sessions 27-28); the
        subtypes, languages and located areas only for its survivors (`_narrowed`)."""
        q = query if isinstance(query, _Prepared) else self.prepare(query)
        out = np.empty(len(rows), dtype=np.int64)
        keep = out[:_pass.kept_of(*self._row_tests(q, typed), rows, out)]
        if not _narrows(q):
            return rows.take(keep, mode=_WRAP) if as_rows else keep
        rows = rows.take(keep, mode=_WRAP)
        mask = self._narrowed(q, rows)
        return rows[mask] if as_rows else keep[mask]

    def _kept_in(self, q: _Prepared, runs: Runs) -> np.ndarray:
        """`kept(q, positions(runs), typed=True, as_rows=True)`, without laying the runs' positions out first:
        which of the positions of these runs (rows of the types asked for), in the runs' order and ascending
        within each, hold rows passing the prepared query."""
        out = np.empty(runs.total, dtype=np.int64)
        at = out[:_pass.kept_in_runs(*self._row_tests(q, True), runs.begins, runs.ends, out)]
        return at[self._narrowed(q, at)] if _narrows(q) else at

    def _row_tests(self, q: _Prepared, typed: bool) -> _RowTests:
        """The prepared query as `search._pass`'s tests of the two words (its first eleven arguments)."""
        status = (0 if q.include_inactive else _ACTIVE) | (_ACCEPTING if q.accepting_only else 0)
        return (self._flags, self._needs_ages, status | _SUPERSEDED, status, None if typed else q.type_bits,
                _GENDER_MASK, None if q.other_gender is None else q.other_gender << _GENDER_SHIFT, q.covering,
                q.needs_mask, q.needs_value, q.age)

    def _narrowed(self, q: _Prepared, rows: np.ndarray) -> np.ndarray:
        """Per row (ones that passed `_row_tests`), whether it passes the query's subtypes, languages and
        located areas (the query has one of these: `_narrows`)."""
        tests = []  # each a new array, so the first is the mask the others are ANDed into
        if q.narrowed_bits:
            tests.append(((self._flags.take(rows, mode=_WRAP) & q.narrowed_bits) == 0)
                         | np.isin(self.subtype[rows], q.subtypes))
        for language in q.languages:
            tests.append(~self._lang_not.any_of((language,), rows))
            if q.confirmed:
                tests.append(self._lang_met.any_of((language,), rows))
        if q.in_areas is not None or q.outside_excluded is not None:
            located = self._located.of[rows]
            if q.in_areas is not None:
                tests.append(q.in_areas[located])
            if q.outside_excluded is not None:
                tests.append(q.outside_excluded[located])
        mask = tests[0]
        for test in tests[1:]:
            mask &= test
        return mask

    def _covering(self, home: Coverage) -> np.ndarray:
        """Per catchment group (`_Catchments`), whether its rows' catchment includes the home. Worked out on
        the first question about the home and remembered while the caller holds `home`: one match asks
        about the same home two to three times (its ranking, the ICB's counts, a summary's nearest)."""
        table = self._homes.get(home)
        if table is None:
            table = self._homes[home] = self._catchments.covering(home.codes, self._polygons_holding(home))
        return table

    def _polygons_holding(self, home: Coverage) -> list[int]:
        """The polygons holding the home's point."""
        if self._polygon_tree is None:
            return []
        return self._polygon_lookup.holding(home.lon, home.lat)

    @cached_property
    def _polygon_lookup(self) -> PolygonLookup:
        """The polygons listed per bucket with their boxes (`search.polygons`): a point's candidates in one
        lookup, ~10 of ~900 at 100k, most of them answered by their boxes alone. Made on first use, for every
        polygon at once (nothing in it depends on the homes asked about)."""
        return PolygonLookup(self._prepared_polygons)

    def candidates(self, query: ServiceQuery) -> np.ndarray:
        """Rows that can pass the query, ascending: every row, or only those in the asked areas."""
        if query.area_codes is not None:
            return self._located.rows_with(query.area_codes)
        return self._all

    def select(self, query: ServiceQuery) -> np.ndarray:
        """Every row passing the query, ascending (what `np.flatnonzero(mask(query))` gives)."""
        rows = self.candidates(query)
        prepared = self.prepare(query)
        if query.area_codes is not None:
            prepared.in_areas = None  # every candidate lies in the areas asked for
        return self.kept(prepared, rows, as_rows=True)

    def count_by_type(self, query: ServiceQuery) -> np.ndarray:
        """How many services pass the query, per type (indexed like `ServiceType`): counted in the cell
        order, where the rows of the areas asked for lie close together."""
        cells = self._cells
        return np.bincount(cells.type[cells.select(query)], minlength=len(_TYPES))

    def count_near(self, lat: float, lon: float, query: ServiceQuery, radius_km: float) -> int:
        """How many services pass the query within radius_km of the point, exactly as a scan of every row
        counts them, from the rows of the radius's box alone (every row within the radius lies in it)."""
        box, everything = self._box_of(lat, lon, radius_km)
        at = self._passing_near(query, self.prepare(query), box=box, everything=everything, pool=True)
        return len(self._near(lat, lon, radius_km, at)[0])

    def around(self, lat: float, lon: float, query: ServiceQuery, k: int, radius_km: float,
               within: frozenset[str] | None, *, count_within: bool = False, each_type: bool = False,
               margin_km: float | None = None) -> Around:
        """`nearest(k, radius_km)`, the same for the query with `area_codes=within`, and `count_near`, from
        one pass over the rows of the radius's box: the filters are evaluated once, the asked areas are one
        lookup per passing row. With `count_within`, also `count_by_type` of the query with
        `area_codes=within`: from the same pass, which also reads the rows of those areas in cells outside the
        box (`_outside`). With `each_type`, also each asked type's nearest among the passing rows within the
        radius that the k nearest leave out (`_nearest_of_types`), and how many of each such type pass within it
        (`Around.totals_of_types`), when every row within the radius was read (no block counted from the
        tallies). With `margin_km` (and `within`, no areas asked), the k by
        effective distance (`Around.ranked`) instead of `within`'s k nearest (left empty).

        The passing rows are told apart by their cosines (`search.nearness`): only the few that can be among
        an answer, or lie on the radius, get a distance, as `haversine_km` computes it."""
        prepared = self.prepare(query)
        prepared.in_areas = None  # the query's areas and `within` are told apart below, on the passing rows
        box, everything = self._box_of(lat, lon, radius_km)
        by_type_within = count_within and within is not None
        located = self._located
        in_within_groups = None if within is None else located.groups_holding(within)
        counted = self._counted(lat, lon, radius_km, query, prepared, box, everything, k, in_within_groups,
                                by_type_within)
        # The rows of `within`'s cells outside the box are read in the same pass: beyond the radius (every
        # row within it lies in the box), they count for `within`'s types alone, and `close` drops them.
        outside = None if within is None or not count_within or everything else self._outside(box, within)
        if counted is None and outside is None:
            at = self._passing_near(query, prepared, box=box, everything=everything, pool=within is None)
        else:  # with `within` (so no pool) and a box that is not every cell, `_passing_near` reads the box
            at = self._kept_positions(self._read(box, prepared.types, counted, outside), prepared)
        # From here `at` holds positions of the cell order, where the columns `space` reads lie close together:
        # only the answers' few are turned into rows, at the end.
        space = self._cells
        by_type = np.zeros(len(_TYPES), dtype=np.int64) if by_type_within else None
        at, cosines, in_within = self._near(lat, lon, radius_km, at, in_within_groups, by_type)
        if by_type is not None and counted is not None:
            by_type = by_type + counted.by_type
        # From here `at` holds the passing rows within the radius, and `pool` where those of the query's areas sit.
        pool = None if query.area_codes is None else space._located.any_of(query.area_codes, at).nonzero()[0]
        total = (len(at) if pool is None else len(pool)) + (0 if counted is None else counted.total)
        nearest, inside, ranked = space._answers(lat, lon, at, cosines, in_within, pool, k, margin_km)
        of_types = of_totals = None
        if each_type and counted is None:
            shown_at, shown_cosines = (at, cosines) if pool is None else (at.take(pool), cosines.take(pool))
            of_types = space._nearest_of_types(lat, lon, shown_at, shown_cosines, self.type[nearest[0]],
                                               prepared.types)
            if of_types:  # a type the k nearest hold none of, with rows within the radius: how many (one bincount)
                counts = np.bincount(space.type.take(shown_at), minlength=len(_TYPES))
                of_totals = {t: int(counts[t]) for t in of_types}
        return Around(*nearest, *inside, total, by_type, of_types, ranked, of_totals)

    def _answers(self, lat: float, lon: float, at: np.ndarray, cosines: np.ndarray, in_within: np.ndarray | None,
                 pool: np.ndarray | None, k: int, margin_km: float | None
                 ) -> tuple[Pair, Pair, Pair | None]:
        """`around`'s k nearest, `within`'s k nearest and the k by effective distance (with `margin_km`, in place
        of `within`'s, then left empty) of the passing rows within the radius at these positions of the cell
        order, with their cosines; `in_within`: whether each lies in `within`; `pool`: where those of the
        query's areas are, when it asks for some. Only the rows that can be among them are measured. Each answer
        is rows (not positions) and their distances: an answer's positions are turned into its rows as it is
        ordered (`_first`'s `order`)."""
        order = self._grid.order
        reach = None if pool is not None or in_within is None else _within_reach(at, cosines, k, in_within,
                                                                                  only_among=False)
        if reach is not None and reach[2]:
            # The ICB's k nearest are among these rows, so the k nearest of all lie no farther than its k-th:
            # the rows that can be no farther than it are measured, and hold both answers.
            near_at, ours, _ = reach
            near_distances = self._distances(lat, lon, near_at)
            nearest = _first(self.id_rank, near_at, near_distances, k, order=order)
            if margin_km is None:
                return nearest, _first(self.id_rank, near_at[ours], near_distances[ours], k, order=order), None
            # the k by effective distance lie among these rows too: they stand for the ICB's k nearest
            return nearest, _NO_PAIR, self._effective_first(near_at, near_distances, ours, k, margin_km)
        inside_at = at[:0] if in_within is None else _within_reach(at, cosines, k, in_within)[0]
        inside_distances = self._distances(lat, lon, inside_at) if len(inside_at) else cosines[:0]
        inside_at, inside_distances = self.top_k(inside_at, inside_distances, k, None)
        near_at = _within_reach(at if pool is None else at.take(pool),
                                cosines if pool is None else cosines.take(pool), k)[0]
        nearest_at, nearest_distances = self.top_k(near_at, self._distances(lat, lon, near_at), k, None)
        ranked = None
        if margin_km is not None and in_within is not None and pool is None:
            # The ICB's rows within the radius are fewer than k: all of them are `inside_at`, so the rest of
            # the k nearest lie outside it.
            outside = (nearest_at[:, None] != inside_at).all(axis=1)
            ours = np.zeros(len(inside_at) + int(np.count_nonzero(outside)), dtype=bool)
            ours[:len(inside_at)] = True
            ranked = self._effective_first(np.concatenate((inside_at, nearest_at[outside])),
                                           np.concatenate((inside_distances, nearest_distances[outside])), ours, k,
                                           margin_km)
            inside_at, inside_distances = _NO_PAIR
        return (order[nearest_at], nearest_distances), (order[inside_at], inside_distances), ranked

    def _effective_first(self, at: np.ndarray, distances: np.ndarray, ours: np.ndarray, k: int,
                         margin_km: float) -> Pair:
        """The k of the rows at these positions of the cell order (each once) first by effective distance: the
        distance, plus `margin_km` where `ours` is false; then by distance, then id; as rows. The same floats and
        order as `rehabmap.match` sorting its hits by its effective key (the same float sum,
        `search._pass.first_k`)."""
        return _first(self.id_rank, at, distances, k, ours, margin_km, self._grid.order)

    def _near(self, lat: float, lon: float, radius_km: float, at: np.ndarray, groups: np.ndarray | None = None,
              by_type: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Of the rows at these positions of the cell order, those within the radius (as `haversine_km` measures),
        in order, with their cosines (`search.nearness`) and, with `groups` (per located group, a bool), whether
        each lies in a group of it; with `by_type` too, each row of `at` in such a group, within the radius or
        not, adds one to its type's count there. Told by the cosines in one compiled loop (`search._pass.near`),
        but for the rows on the radius, which are measured."""
        radius_cosine = nearness.cosine_of_km(radius_km)
        out_at, cosines = np.empty(len(at), dtype=np.int64), np.empty(len(at), dtype=np.float64)
        in_groups = None if groups is None else np.empty(len(at), dtype=bool)
        count, unsure = _pass.near(self._cell_records, at, *nearness.unit_vector(lat, lon),
                                   radius_cosine - nearness.MARGIN, radius_cosine + nearness.MARGIN, out_at, cosines,
                                   groups, in_groups, None if by_type is None else self._cells.type, by_type)
        close: slice | np.ndarray = slice(count)
        if unsure:  # rare: a row on the radius
            places = np.array(unsure, dtype=np.int64)
            far = places[self._cells._distances(lat, lon, out_at.take(places)) > radius_km]
            if len(far):
                close = np.ones(count, dtype=bool)
                close[far] = False
                out_at, cosines = out_at[:count], cosines[:count]
                in_groups = None if in_groups is None else in_groups[:count]
        return out_at[close], cosines[close], None if in_groups is None else in_groups[close]

    def _distances(self, lat: float, lon: float, at: np.ndarray) -> np.ndarray:
        """The distances of the rows at these positions of the cell order from the point: `haversine_km` of
        the rows' own latitudes and longitudes, gathered once from the cell-ordered copies (`_cell_lat_lon`)."""
        cell_lat, cell_lon = self._cell_lat_lon
        return haversine_km(lat, lon, cell_lat.take(at), cell_lon.take(at))

    @cached_property
    def _cell_lat_lon(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row's latitude and longitude in the grid's cell order (16 bytes a row), so a measure gathers
        the rows' points in one step rather than turning positions into rows first; asked of `_cells` alone
        (its copies for edits share it), made on the first measure."""
        order = self._grid.order
        return self.lat[order], self.lon[order]

    @cached_property
    def _cell_records(self) -> np.ndarray:
        """Per row in the grid's cell order, what a radius's pass reads of each passing row, side by side: its
        unit vector's x, y and z (`search.nearness`) and its located group (`_CodeSets`; a float, exact: far below
        2**53). 32 bytes a row, made on the first question of a radius; nothing in it depends on a query."""
        order = self._grid.order
        return np.stack((*nearness.unit_vectors(self.lat[order], self.lon[order]), self._located.of[order]), axis=1)

    @cached_property
    def _cell_position(self) -> np.ndarray:
        """Per row, its position in the grid's cell order."""
        position = np.empty_like(self._grid.order)
        position[self._grid.order] = np.arange(len(position))
        return position

    def _nearest_of_types(self, lat: float, lon: float, at: np.ndarray, cosines: np.ndarray, shown_types: np.ndarray,
                          types: np.ndarray | None) -> dict[int, tuple[int, float]]:
        """Per type asked (type numbers; None: every type) that none of the k nearest is of (`shown_types`: one type
        number for each of them), its nearest of the rows at these positions of the cell order (by distance, then
        id; their cosines given) and that distance, where it has one: its row, and the distance.
        A summary's nearest of a type is then known from the pass in all but the cases where no row of it
        passes within the radius."""
        if len(at) <= len(shown_types):  # every row is shown: a type not among them has none here
            return {}
        shown = set(shown_types.tolist())
        missing = [t for t in (range(len(_TYPES)) if types is None else types.tolist()) if t not in shown]
        if not missing:
            return {}
        of = self.type[at]
        found = {}
        for number in missing:
            at_held = _within_reach(at, cosines, 1, of == number)[0]
            if len(at_held):
                row, distance = _first(self.id_rank, at_held, self._distances(lat, lon, at_held), 1,
                                       order=self._grid.order)
                found[number] = (int(row[0]), float(distance[0]))
        return found

    def _counted(self, lat: float, lon: float, radius_km: float, query: ServiceQuery, prepared: _Prepared,
                 box: tuple[int, int, int, int] | None, everything: bool, k: int, within: np.ndarray | None,
                 by_box: bool) -> Counted | None:
        """`around`'s count of the blocks of cells it need not read (`Tallies.count`), or None to read the
        box's rows (or the areas' rows, when fewer: a query of areas alone). `within`: per located group,
        whether it lies in `around`'s `within`."""
        box_rows = self._grid.count(box)
        if everything or box is None or (within is None and query.area_codes is not None) \
                or box_rows < tallies.MIN_ROWS:
            return None
        grid = self._grid
        return self._tallies.count(
            lat, lon, radius_km, box, box_rows, grid.cell_rows, partial(grid.cell_runs, types=prepared.types),
            grid.nx, prepared, None if query.area_codes is None else self._located.groups_holding(query.area_codes),
            within, k, by_box)

    def _box_of(self, lat: float, lon: float, radius_km: float) -> tuple[tuple[int, int, int, int] | None, bool]:
        """The cells of the radius's box, and whether they are every cell (or the box may hold anything)."""
        bounds = radius_box(lat, lon, radius_km)
        box = None if bounds is None else self._grid.cells_of(*bounds)
        return box, bounds is None or self._grid.everything(box)

    def _outside(self, box: tuple[int, int, int, int] | None, codes: frozenset[str]) -> np.ndarray | None:
        """The cells (flat numbers, ascending) holding rows of these areas, or None when none lies outside the box:
        told from the areas' spans without a NumPy step when the box holds them (a home ICB often lies inside a
        50 km circle's box). Those of them inside the box are left out when their rows are read (`_read`)."""
        spans = self._area_spans
        if box is not None and all(_holds(box, spans[code]) for code in codes if code in spans):
            return None
        found = [self._area_cells[code] for code in codes if code in self._area_cells]
        if not found:
            return None
        return found[0] if len(found) == 1 else np.unique(np.concatenate(found))

    def _read(self, box: tuple[int, int, int, int] | None, types: np.ndarray | None, counted: Counted | None,
              outside: np.ndarray | None) -> Runs:
        """The runs of the rows `around` reads: the box's (with `counted`, the cells the tallies leave to read),
        then those of the `outside` cells (`_outside`) beyond the box. A box's and its cells beyond it are one
        compiled call (`_Grid.runs`)."""
        grid = self._grid
        if counted is None and box is not None:
            return grid.runs(box, types, outside)
        read = _NO_RUNS if counted is None else counted.runs
        if outside is None:
            return read
        beyond = grid.cell_runs(outside, types, box)
        return Runs(np.concatenate((read.begins, beyond.begins)), np.concatenate((read.ends, beyond.ends)),
                    read.total + beyond.total)

    @cached_property
    def _area_spans(self) -> dict[str, tuple[int, int, int, int]]:
        """Per area code of `_area_cells`, the first and last rows and columns of its cells (made with it)."""
        spans = {}
        for code, cells in self._area_cells.items():
            y, x = np.divmod(cells, self._grid.nx)
            spans[code] = (int(y[0]), int(y[-1]), int(x.min()), int(x.max()))
        return spans

    @cached_property
    def _area_cells(self) -> dict[str, np.ndarray]:
        """Per area code a row is located in, the cells (flat numbers, ascending) that hold such rows: worked
        out for every code at once on first use (a few ms at 500k), so nothing here depends on which areas
        were asked about. A row an edit superseded still counts, which only adds a cell: the record that
        replaced it is answered from the overlay's own columns."""
        located, grid = self._located, self._grid
        cells = grid.cells
        cell = np.repeat(np.arange(len(grid.start) - 1) % cells, np.diff(grid.start))  # per position of the order
        group, cell = np.divmod(np.unique(located.of[grid.order].astype(np.int64) * cells + cell), cells)
        bounds = np.searchsorted(group, np.arange(located.groups + 1))
        parts: dict[str, list[np.ndarray]] = defaultdict(list)
        for number, key in enumerate(located.keys):
            for code in key:
                parts[code].append(cell[bounds[number]:bounds[number + 1]])
        return {code: p[0] if len(p) == 1 else np.unique(np.concatenate(p)) for code, p in parts.items()}

    def _passing_near(self, query: ServiceQuery, prepared: _Prepared, *, box: tuple[int, int, int, int] | None,
                      everything: bool, pool: bool) -> np.ndarray:
        """Where the rows passing the prepared query sit in the cell order, among the rows of the radius's box
        (`_box_of`; every row within the radius lies in it); with `pool`, among the query's areas' rows
        instead when they are fewer."""
        if pool and query.area_codes is not None:
            rows = self._located.rows_with(query.area_codes)
            if len(rows) < (len(self) if everything else self._grid.count(box)):
                prepared.in_areas = None  # every row of the pool lies in the areas asked for
                return self._cell_position.take(self.kept(prepared, rows, as_rows=True))
        if everything:
            return self._cell_position.take(self.kept(prepared, self._all))
        return self._kept_positions(self._grid.runs(box, prepared.types), prepared)

    def _box_passing(self, lat: float, lon: float, box: tuple[int, int, int, int] | None,
                     prepared: _Prepared) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the box's cells passing the prepared query, in cell order, and their distances from
        the point, from the radians and cosines kept in that order (`_cell_points`): the same floats as
        `haversine_km` of the rows, without gathering the rows' points or converting them per query."""
        positions = self._kept_positions(self._grid.runs(box, prepared.types), prepared)
        phi, lam, cos_phi = self._cell_points
        distances = haversine_km_radians(*point_radians(lat, lon), phi.take(positions), lam.take(positions),
                                         cos_phi.take(positions))
        return self._grid.order[positions], distances

    def _kept_positions(self, runs: Runs, prepared: _Prepared) -> np.ndarray:
        """Those of the positions of these runs of the cell order (rows of the types asked for) whose rows pass the
        prepared query, in the runs' order."""
        return self._cells._kept_in(prepared, runs)

    def _with_distances(self, lat: float, lon: float, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows, haversine_km(lat, lon, self.lat[rows], self.lon[rows])

    @cached_property
    def _cell_points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every row's point in the grid's cell order, as `haversine_km_radians` takes it (24 bytes a row);
        made on the first box query. Edits never change a loaded row's point (an edited row is superseded
        and answered from the delta), so the copies that edits lay over these columns share it."""
        order = self._grid.order
        return radians_and_cosines(self.lat[order], self.lon[order])

    # --- k nearest -------------------------------------------------------------------------------------

    def nearest(self, lat: float, lon: float, query: ServiceQuery, k: int,
                radius_km: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and distances of the k passing services nearest the point (by distance, then id), exactly
        as a scan over every row would give them.

        Looks in a box around the point first. Every row within r km of the point lies in the box for r
        (widened for rounding), so once at least k passing rows are within r of the point (or r reaches
        the radius asked for), the k nearest of all rows are among them, ties at the k-th distance too.
        Otherwise r grows, until the box holds every row.
        """
        prepared = self.prepare(query)
        grid = self._grid
        if query.area_codes is not None:
            pool = self._located.rows_with(query.area_codes)
            if len(pool) <= max(_MIN_ROWS, _ROWS_PER_RESULT * k) * 4:
                return self._top_k(lat, lon, self.kept(prepared, pool, as_rows=True), k, radius_km)
        r = self._first_radius(lat, lon, k, radius_km)
        while True:
            bounds = None if r is None else radius_box(lat, lon, r)
            box = None if bounds is None else grid.cells_of(*bounds)
            if bounds is None or grid.everything(box):
                rows, distances = self._with_distances(lat, lon, self._all[self.kept(prepared, self._all)])
                final = True
            else:
                rows, distances = self._box_passing(lat, lon, box, prepared)
                final = radius_km is not None and r >= radius_km
            if final:
                return self.top_k(rows, distances, k, radius_km)
            inside = distances <= r
            found = int(np.count_nonzero(inside))
            if found >= k:
                return self.top_k(rows[inside], distances[inside], k, None)
            # Grow the area by about what should bring 2k passing rows within r: 4 to 64 times.
            r = _grow(r, 2.0 * k / max(found, 0.5), radius_km)

    def nearest_of_types(self, lat: float, lon: float, query: ServiceQuery, k: int) -> dict[int, Pair]:
        """Per type of the query's (which must name them), by type number: the rows and distances of that type's
        k nearest passing services at any distance, exactly as `nearest` of the query narrowed to that type gives
        them, from one box grown for all of them at once instead of one box a type.

        A row's filters other than its type do not depend on the other types asked (`_asked_types`), so the rows
        of one type that pass the query are those that pass it narrowed to the type; each type's answer is cut
        as `nearest` cuts it, once at least k of its passing rows lie within the box's radius. A type done drops
        out of the passes that follow. A match naming no type asks this of every type, at home and in its ICB:
        two passes where it made fourteen (bench/RESULTS.md, session 31)."""
        if query.types is None:
            raise ValueError("nearest_of_types needs the query's types")
        numbers = {_TYPES.index(t): t for t in query.types}
        done: dict[int, Pair] = {}
        if query.area_codes is not None:
            pool = self._located.rows_with(query.area_codes)
            if len(pool) <= max(_MIN_ROWS, _ROWS_PER_RESULT * k) * 4 * len(numbers):
                return self._top_k_of_types(*self._with_distances(
                    lat, lon, self.kept(self.prepare(query), pool, as_rows=True)), numbers, k, done)
        r = self._first_radius(lat, lon, k, None)
        prepared = self.prepare(query)
        while True:
            bounds = radius_box(lat, lon, r)
            box = None if bounds is None else self._grid.cells_of(*bounds)
            if bounds is None or self._grid.everything(box):
                passing = self._all[self.kept(prepared, self._all)]
                return self._top_k_of_types(*self._with_distances(lat, lon, passing), numbers, k, done)
            rows, distances = self._box_passing(lat, lon, box, prepared)
            inside = distances <= r
            rows, distances = rows[inside], distances[inside]
            counts = np.bincount(self.type[rows], minlength=len(_TYPES))
            least = min(int(counts[number]) for number in numbers)
            finished = {n: t for n, t in numbers.items() if counts[n] >= k}
            self._top_k_of_types(rows, distances, finished, k, done)
            if len(finished) == len(numbers):
                return done
            if finished:
                numbers = {n: t for n, t in numbers.items() if n not in finished}
                prepared = self.prepare(replace(query, types=frozenset(numbers.values())))
            # As `nearest` grows it, for the type with the fewest found.
            r = _grow(r, 2.0 * k / max(least, 0.5), None)

    def _top_k_of_types(self, rows: np.ndarray, distances: np.ndarray, numbers: Mapping[int, ServiceType], k: int,
                        done: dict[int, Pair]) -> dict[int, Pair]:
        """`done`, with each of these types' k nearest of these rows (passing rows, with their distances)."""
        types = self.type[rows]
        for number in numbers:
            of_type = types == number
            done[number] = self.top_k(rows[of_type], distances[of_type], k, None)
        return done

    def _first_radius(self, lat: float, lon: float, k: int, radius_km: float | None) -> float:
        """The smallest box radius (doubling from 1 km) whose box holds enough rows to start with."""
        target = max(_MIN_ROWS, _ROWS_PER_RESULT * k)
        r = 1.0
        while radius_km is None or r < radius_km:
            bounds = radius_box(lat, lon, r)
            if bounds is None or self._grid.count(self._grid.cells_of(*bounds)) >= target or r > 4096:
                break
            r *= 2.0
        return r if radius_km is None else min(r, radius_km)

    def _top_k(self, lat: float, lon: float, rows: np.ndarray, k: int,
               radius_km: float | None) -> tuple[np.ndarray, np.ndarray]:
        return self.top_k(*self._with_distances(lat, lon, rows), k, radius_km)

    def top_k(self, rows: np.ndarray, distances: np.ndarray, k: int,
              radius_km: float | None) -> tuple[np.ndarray, np.ndarray]:
        return _nearest_first(self.id_rank, rows, distances, k, radius_km)

    def fit_keys(self, rows: np.ndarray, needs: Sequence[str], since: int,
                 within: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Per row, its fit (`rehabmap.fit.Fit`) as one number in the order of `Fit.key()`, for the stated `needs`
        and a capacity reported on day `since` (its number) or later; and whether it is located in the area
        `within`."""
        unconfirmed = np.full(len(rows), len(needs), dtype=np.int64)
        met = self.met[rows]
        for need in needs:
            if need.startswith("language:"):
                unconfirmed -= self._lang_met.any_of((need,), rows)
            else:
                unconfirmed -= (met & _NEED_BITS.get(need, np.uint32(0))) != 0
        capacity = np.where(self.capacity_as_of[rows] >= since, self.capacity_rank[rows], CAPACITY_RANK[None])
        fit = unconfirmed * _NEEDS_PLACE + self.referrals_rank[rows] * _REFERRALS_PLACE + capacity
        ours = self._located.any_of((within,), rows) if within else np.zeros(len(rows), dtype=bool)
        return fit, ours


def best_fit_first(columns: Columns, rows: np.ndarray, distances: np.ndarray, needs: Sequence[str], k: int,
                   within: str | None, margin_km: float, since: int) -> Pair:
    """The k of these rows (at these distances) that fit best, then by effective distance (the distance, plus
    `margin_km` for a row not located in the area `within`), distance and id, and their distances: "best fit
    first" over every passing row, reading no record (`IndexBackend.best_fit`; `fit_keys`). A fit at a time, best
    first, until k are found: each by the nearest order's own compiled partial sort (`_first`), where one
    `np.lexsort` of every row by the four keys took 4 ms of 30k rows."""
    fit, ours = columns.fit_keys(rows, needs, since, within)
    found: list[Pair] = []
    left = k
    for level in np.flatnonzero(np.bincount(fit)).tolist():
        at = np.flatnonzero(fit == level)
        found.append(_first(columns.id_rank, rows[at], distances[at], left, ours[at], margin_km))
        left -= len(found[-1][0])
        if not left:
            break
    if not found:
        return _NO_PAIR
    return np.concatenate([r for r, _ in found]), np.concatenate([d for _, d in found])


class Around(NamedTuple):
    """`ServiceColumns.around`'s answer: rows and distances of the k nearest, of the k nearest within the
    areas asked for, and how many pass within the radius."""

    rows: np.ndarray
    distances: np.ndarray
    within_rows: np.ndarray
    within_distances: np.ndarray
    total: int
    within_by_type: np.ndarray | None = None  # `count_by_type` of the query in the areas asked for, when asked
    # Per type number, the row and distance of its nearest passing within the radius, where the k nearest hold
    # none of it (`ServiceColumns._nearest_of_types`); None when not asked or not known from the pass.
    nearest_of_types: dict[int, tuple[int, float]] | None = None
    # With a margin: rows and distances of the k by effective distance (`ServiceColumns._effective_first`),
    # and `within_rows` left empty; else None.
    ranked: Pair | None = None
    # Per type number of `nearest_of_types` (where it names any), how many pass within the radius (its part of
    # `total`); else None.
    totals_of_types: dict[int, int] | None = None


def _nearest_first(id_rank: np.ndarray, rows: np.ndarray, distances: np.ndarray, k: int,
                   radius_km: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The k rows nearest (by distance, then id) within the radius, and their distances."""
    if radius_km is not None:
        inside = distances <= radius_km
        rows, distances = rows[inside], distances[inside]
    return _first(id_rank, rows, distances, k)


def _first(id_rank: np.ndarray, rows: np.ndarray, distances: np.ndarray, k: int, ours: np.ndarray | None = None,
           margin_km: float = 0.0, order: np.ndarray | None = None) -> Pair:
    """The first k of these rows and their distances: by distance, then id; with `ours`, by effective distance
    first (the distance, plus `margin_km` where not ours). With `order` (the grid's), `rows` are positions of the
    cell order and the rows they hold are given. One compiled partial insertion sort that writes the answer itself
    (`search._pass.first_k`, stable as `np.lexsort`), where a partition, a mask and a lexsort were ~12 NumPy steps,
    and the gathers of the rows, their distances and the positions' rows three more."""
    size = min(k, len(rows))
    out_rows, out_distances = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.float64)
    _pass.first_k(rows, distances, id_rank, k, ours, margin_km, order, out_rows, out_distances)
    return out_rows, out_distances


def _within_reach(at: np.ndarray, cosines: np.ndarray, k: int, among: np.ndarray | None = None, *,
                  only_among: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
    """The positions (of `at`, whose rows have these cosines) that can be among the k nearest: every row no less
    than the k-th greatest cosine of the rows `among` (a bool a row; None: every row) less `nearness.MARGIN`
    (`search.nearness` says why that holds every one, ties at the k-th distance too), and with `only_among` only
    those among; whether each is among (`among`'s values; empty with `only_among` or without `among`); and whether
    k rows were among (else every row is given). One compiled pass (`search._pass.reach`: the k greatest held
    as the rows go, no partition or sort)."""
    out = np.empty(len(at), dtype=np.int64)
    flags = None if among is None or only_among else np.empty(len(at), dtype=bool)
    count, bounded = _pass.reach(cosines, at, k, nearness.MARGIN, among, only_among and among is not None, out, flags)
    return out[:count], _NO_FLAGS if flags is None else flags[:count], bounded


def _grow(r: float, area_factor: float, radius_km: float | None) -> float:
    r = r * math.sqrt(min(max(area_factor, 4.0), 64.0))
    return r if radius_km is None else min(r, radius_km)


_NEED_INT_BITS = {need: int(bit) for need, bit in _NEED_BITS.items()}


def _bit_words(need_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """`_bits` of each list, as one array: Python ints until the end (a NumPy scalar op costs ~0.1 µs, and a
    load works out every distinct needs list of the index: thousands)."""
    words = []
    for needs in need_lists:
        value = 0
        for need in needs:
            value |= _NEED_INT_BITS.get(need, 0)
        words.append(value)
    return np.array(words, dtype=np.uint32)


# `search._pass`'s tests of the two words: flags, words, status mask, status, type bits, gender mask, the gender
# refused, the home's catchment table, needs mask, needs, age (`ServiceColumns._row_tests`).
_RowTests = tuple[np.ndarray, np.ndarray, int, int, int | None, int, int | None, np.ndarray | None, int, int,
                  int | None]


def _narrows(q: _Prepared) -> bool:
    """Whether the prepared query has tests beyond the two words' (`ServiceColumns._narrowed`)."""
    return bool(q.narrowed_bits or q.languages) or q.in_areas is not None or q.outside_excluded is not None


def _bits(needs: Sequence[str]) -> int:
    """The need bits of a query's needs (a language is none: `_languages`), as a Python int: a NumPy scalar op
    costs ~0.1 µs."""
    value = 0
    for need in needs:
        value |= _NEED_INT_BITS.get(need, 0)
    return value


class OverlaidColumns:
    """The columns of a loaded generation with the records edited since laid over them: what the embedded
    index answers from between loads, so an edit costs the readers a small step, not a reload.

    `base` keeps every row it was built with, but the rows an edit replaced are superseded in it (they
    pass no query); `delta` holds the current values of every edited row and of every row added since, and
    `delta_rows` says which row each one is (rows keep their numbers: row i is the record with rowid i + 1,
    and a record added by an edit takes the next row after the last). A query asks both and merges: the
    answer is the one `ServiceColumns` would give over the current records, exactly (the behaviour suite
    runs on a reader after edits). Name order and id order across the two are merged ranks: a delta row
    sorts where its name (or id) would fall among the base rows (`name_position`, `id_position`), and
    delta rows at the same place sort among themselves by their own ranks.
    """

    def __init__(self, base: ServiceColumns, changed: Mapping[int, Sequence[Any]]) -> None:
        """`changed`: per edited or added row, its values for `ROW_FIELDS`."""
        n = len(base)
        self.delta_rows = np.array(sorted(changed), dtype=np.int64)
        size = max(n, int(self.delta_rows[-1]) + 1) if len(self.delta_rows) else n
        added = self.delta_rows[self.delta_rows >= n]
        if not np.array_equal(added, np.arange(n, n + len(added))):
            raise ValueError("added rows must follow the last row without a gap")
        self.base_size = n
        self.base = base.superseding(self.delta_rows[self.delta_rows < n])
        self.delta = ServiceColumns.from_rows([changed[int(row)] for row in self.delta_rows])
        self._all = np.arange(size, dtype=np.int64)
        self.lat = _laid(base.lat, size, self.delta_rows, self.delta.lat)
        self.lon = _laid(base.lon, size, self.delta_rows, self.delta.lon)
        name_keys = [values[ROW_FIELDS.index("name_key")] for values in (changed[int(r)] for r in self.delta_rows)]
        self.name_rank = _merged_rank(
            base.name_rank, size, self.delta_rows, self.delta.name_rank,
            [base.name_position(key, sid) for key, sid in zip(name_keys, self.delta.ids)])
        self.id_rank = _merged_rank(base.id_rank, size, self.delta_rows, self.delta.id_rank,
                                    [base.id_position(sid) for sid in self.delta.ids])

    def __len__(self) -> int:
        return len(self._all)

    @cached_property
    def ids(self) -> np.ndarray:
        # An edit never changes a record's id: only added rows extend the ids.
        added = self.delta_rows >= self.base_size
        return np.concatenate((self.base.ids, self.delta.ids[added])) if added.any() else self.base.ids

    def row_of(self, service_id: str) -> int | None:
        at = self.delta.row_of(service_id)
        return int(self.delta_rows[at]) if at is not None else self.base.row_of(service_id)

    def _split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Of these rows: which lie in the base, which are delta rows, and the delta position of those."""
        in_base = rows < self.base_size
        at = np.minimum(np.searchsorted(self.delta_rows, rows), max(len(self.delta_rows) - 1, 0))
        in_delta = (self.delta_rows[at] == rows) if len(self.delta_rows) else np.zeros(len(rows), dtype=bool)
        return in_base, in_delta, at[in_delta]

    def passing(self, query: ServiceQuery, rows: np.ndarray) -> np.ndarray:
        in_base, in_delta, at = self._split(rows)
        mask = np.zeros(len(rows), dtype=bool)
        mask[in_base] = self.base.passing(query, rows[in_base])  # an edited row fails here …
        mask[in_delta] = self.delta.passing(query, at)  # … and is answered here
        return mask

    def mask(self, query: ServiceQuery) -> np.ndarray:
        return self.passing(query, self._all)

    def select(self, query: ServiceQuery) -> np.ndarray:
        return np.sort(np.concatenate((self.base.select(query), self.delta_rows[self.delta.select(query)])))

    def count_by_type(self, query: ServiceQuery) -> np.ndarray:
        return self.base.count_by_type(query) + self.delta.count_by_type(query)

    def count_near(self, lat: float, lon: float, query: ServiceQuery, radius_km: float) -> int:
        return self.base.count_near(lat, lon, query, radius_km) + self.delta.count_near(lat, lon, query, radius_km)

    def nearest(self, lat: float, lon: float, query: ServiceQuery, k: int,
                radius_km: float | None) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest of the base's own k nearest (edited rows left out) and the delta's."""
        base_rows, base_distances = self.base.nearest(lat, lon, query, k, radius_km)
        delta_at, delta_distances = self.delta.nearest(lat, lon, query, k, radius_km)
        rows = np.concatenate((base_rows, self.delta_rows[delta_at]))
        return self.top_k(rows, np.concatenate((base_distances, delta_distances)), k, None)

    def nearest_of_types(self, lat: float, lon: float, query: ServiceQuery, k: int) -> dict[int, Pair]:
        """Each type's k nearest of the base's own (edited rows left out) and the delta's, as `nearest` merges."""
        base = self.base.nearest_of_types(lat, lon, query, k)
        delta = self.delta.nearest_of_types(lat, lon, query, k)
        return {number: self.top_k(np.concatenate((rows, self.delta_rows[delta[number][0]])),
                                   np.concatenate((distances, delta[number][1])), k, None)
                for number, (rows, distances) in base.items()}

    def around(self, lat: float, lon: float, query: ServiceQuery, k: int, radius_km: float,
               within: frozenset[str] | None, *, count_within: bool = False, each_type: bool = False,
               margin_km: float | None = None) -> Around:
        """The base's answer (edited rows left out) and the delta's, merged as `nearest` merges them; the
        types' nearest (`each_type`) and the k by effective distance (`margin_km`) are not given: the caller
        asks for the one and merges the other."""
        base = self.base.around(lat, lon, query, k, radius_km, within, count_within=count_within)
        delta = self.delta.around(lat, lon, query, k, radius_km, within, count_within=count_within)
        rows = self.top_k(np.concatenate((base.rows, self.delta_rows[delta.rows])),
                          np.concatenate((base.distances, delta.distances)), k, None)
        inside = self.top_k(np.concatenate((base.within_rows, self.delta_rows[delta.within_rows])),
                            np.concatenate((base.within_distances, delta.within_distances)), k, None)
        by_type = None if base.within_by_type is None or delta.within_by_type is None \
            else base.within_by_type + delta.within_by_type
        return Around(*rows, *inside, base.total + delta.total, by_type)

    def top_k(self, rows: np.ndarray, distances: np.ndarray, k: int,
              radius_km: float | None) -> tuple[np.ndarray, np.ndarray]:
        return _nearest_first(self.id_rank, rows, distances, k, radius_km)

    def fit_keys(self, rows: np.ndarray, needs: Sequence[str], since: int,
                 within: str | None) -> tuple[np.ndarray, np.ndarray]:
        """`ServiceColumns.fit_keys` of the base's rows and the delta's, an edited row's from the delta."""
        in_base, in_delta, at = self._split(rows)
        fit, ours = np.empty(len(rows), dtype=np.int64), np.empty(len(rows), dtype=bool)
        fit[in_base], ours[in_base] = self.base.fit_keys(rows[in_base], needs, since, within)
        fit[in_delta], ours[in_delta] = self.delta.fit_keys(at, needs, since, within)  # after the base: it wins
        return fit, ours


Columns = ServiceColumns | OverlaidColumns


def _laid(base: np.ndarray, size: int, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A copy of a base column, extended to `size` rows, with the delta's values at their rows."""
    out = np.empty(size, dtype=base.dtype)
    out[:len(base)] = base
    out[rows] = values
    return out


def _merged_rank(base_rank: np.ndarray, size: int, rows: np.ndarray, delta_rank: np.ndarray,
                 positions: Sequence[int]) -> np.ndarray:
    """One rank over base and delta rows: a base row of rank r keeps its place among the base rows, and a
    delta row that sorts after p base rows comes after those p and before the rest (ties at one place go
    by the delta's own rank). A base row an edit superseded keeps a rank, but passes no query."""
    spread = len(rows) + 1
    out = np.empty(size, dtype=np.int64)
    out[:len(base_rank)] = base_rank * spread + (spread - 1)
    out[rows] = np.asarray(positions, dtype=np.int64) * spread + delta_rank
    return out
