"""The compiled row loops of a match's radius pass (`search._pass`) against a plain statement of the same rules.

The filters' first stage (status, type, gender, catchment, needs, age) is stated here per record, in Python, from
the records themselves (not from the packed words the loops read), and held to `kept` over rows and over a box's
runs for many random queries, homes, boxes and superseded rows; the radius test is held to the cosines computed
in Python floats in `search.nearness`'s order, bit for bit. A wrong call (an array of the wrong item size or
length, a position outside the rows) raises ValueError instead of reading or writing out of bounds."""

from __future__ import annotations

import hashlib
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import shape

from bench.synthetic import NEEDS, make_services
from rehabmap.index.base import Coverage, ServiceQuery
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType
from search import _pass, nearness
from search.columns import ServiceColumns
from search.runs import positions
from tests.index.conftest import TODAY, _vary

_FIXTURES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def services(small_areas) -> list[Service]:
    return _vary(make_services(small_areas, 4000, seed=29, today=TODAY), seed=29)


@pytest.fixture(scope="module")
def columns(services) -> ServiceColumns:
    return ServiceColumns.from_services(services)


def _covers(s: Service, home: Coverage) -> bool:
    """Whether the record's catchment includes the home: open, a code of the home's, or a polygon holding it."""
    area = s.service_area
    if not area.restricted:
        return True
    if set(area.codes) & home.codes:
        return True
    return area.polygon is not None and shape(area.polygon).intersects(shapely.Point(home.lon, home.lat))


def _passes(s: Service, q: ServiceQuery) -> bool:
    """The first stage's rules, per record (`ServiceQuery`'s docstring; the needs here are no languages)."""
    if not q.include_inactive and s.status != "active":
        return False
    if q.accepting_only and s.accepting_referrals is not True:
        return False
    if q.types is not None and s.service_type not in q.types:
        return False
    if q.gender is not None and s.gender == ("male_only" if q.gender == "female" else "female_only"):
        return False
    if q.covers is not None and not _covers(s, q.covers):
        return False
    for need in q.needs:
        if need in s.needs_not_met or (q.needs_confirmed and need not in s.needs_met):
            return False
    if q.age is not None:
        if s.min_age is not None and s.min_age > q.age:
            return False
        if s.max_age is not None and s.max_age < q.age:
            return False
    return True


_EDGES = [17, 18, 19, 24, 25, 26, 63, 64, 65, 66, 119, 120, 121]  # about the corpus's age bounds (18, 25; 64, 65, 120)


@st.composite
def queries(draw: st.DrawFn, services: list[Service]) -> ServiceQuery:
    home = services[draw(st.integers(0, len(services) - 1))]
    covers = None
    if draw(st.booleans()):
        codes = frozenset(c for c in (home.areas.icb_code, home.areas.lad_code) if c and draw(st.booleans()))
        covers = Coverage(codes, home.lat + draw(st.floats(-0.2, 0.2)), home.lon + draw(st.floats(-0.2, 0.2)))
    return ServiceQuery(
        types=draw(st.none() | st.frozensets(st.sampled_from(list(ServiceType)))),
        needs=tuple(draw(st.lists(st.sampled_from(NEEDS), max_size=3, unique=True))),
        needs_confirmed=draw(st.booleans()), age=draw(st.none() | st.integers(0, 130) | st.sampled_from(_EDGES)),
        gender=draw(st.none() | st.sampled_from(["female", "male"])), covers=covers,
        accepting_only=draw(st.booleans()), include_inactive=draw(st.booleans()))


def test_the_module_is_built_from_the_checkouts_c():
    """A change to search/_pass.c not built again would leave every other test here testing the old loops."""
    source = Path(_pass.__file__).parent / "_pass.c"
    assert _pass.SOURCE_SHA256 == hashlib.sha256(source.read_bytes()).hexdigest(), (
        "search._pass was built from another search/_pass.c: run `python setup.py build_ext --inplace` (or "
        "`pip install -e .`) from the checkout's root")


def test_the_filters_over_rows_keep_what_the_rules_keep(services, columns):
    @_FIXTURES
    @given(q=queries(services), data=st.data())
    def check(q: ServiceQuery, data: st.DataObject) -> None:
        superseded = data.draw(st.lists(st.integers(0, len(services) - 1), max_size=40, unique=True))
        space = columns.superseding(np.array(sorted(superseded), dtype=np.int64)) if superseded else columns
        rows = np.array(data.draw(st.lists(st.integers(0, len(services) - 1), max_size=300)), dtype=np.int64)
        expected = [i for i, r in enumerate(rows.tolist()) if r not in superseded and _passes(services[r], q)]
        assert space.kept(q, rows).tolist() == expected
        assert space.kept(q, rows, as_rows=True).tolist() == rows[expected].tolist()

    check()


def test_the_filters_over_a_boxs_runs_keep_what_the_rules_keep_in_the_runs_order(services, columns):
    grid, order = columns._grid, columns._grid.order

    @_FIXTURES
    @given(q=queries(services), data=st.data())
    def check(q: ServiceQuery, data: st.DataObject) -> None:
        superseded = data.draw(st.lists(st.integers(0, len(services) - 1), max_size=40, unique=True))
        space = columns.superseding(np.array(sorted(superseded), dtype=np.int64)) if superseded else columns
        y0 = data.draw(st.integers(0, grid.ny - 1))
        x0 = data.draw(st.integers(0, grid.nx - 1))
        box = (y0, data.draw(st.integers(y0, min(y0 + 60, grid.ny - 1))),
               x0, data.draw(st.integers(x0, min(x0 + 60, grid.nx - 1))))
        prepared = space.prepare(q)
        runs = grid.runs(box, prepared.types)
        expected = [p for p in positions(*runs).tolist()
                    if int(order[p]) not in superseded and _passes(services[int(order[p])], q)]
        assert space._cells._kept_in(prepared, runs).tolist() == expected

    check()


@pytest.mark.parametrize("words", ["none", "needs", "ages"])
@pytest.mark.parametrize("covered", [False, True])
@pytest.mark.parametrize("gendered", [False, True])
@pytest.mark.parametrize("typed", [False, True])
def test_each_variant_of_the_filters_keeps_what_the_rules_keep(services, columns, typed, gendered, covered, words):
    """The loops come in a variant for each set of tests asked (search/_pass.c, `variant_of`): each of the 24 is
    held here, over every row and over runs holding every row, to the rules, with a query whose tests each turn
    some rows away (the random queries above reach each one too, but not surely, and never the runs' typed ones)."""
    home = services[7]
    q = ServiceQuery(types=frozenset({ServiceType.vcfse, ServiceType.advocacy}) if typed else None,
                     needs=(NEEDS[0], NEEDS[1]) if words != "none" else (), needs_confirmed=words != "none",
                     age=17 if words == "ages" else None, gender="female" if gendered else None,
                     covers=Coverage(frozenset({home.areas.icb_code}), home.lat, home.lon) if covered else None)
    prepared = columns.prepare(q)
    tests = columns._row_tests(prepared, False)
    assert ((tests[4] is not None, tests[6] is not None, tests[7] is not None, tests[10] is not None,
             tests[8] != 0) == (typed, gendered, covered, words == "ages", words != "none")), "not the variant meant"
    rules = [_passes(s, q) for s in services]
    assert 0 < sum(rules) < len(services)
    rows = np.arange(len(services), dtype=np.int64)
    out = np.empty(len(rows), dtype=np.int64)
    assert out[:_pass.kept_of(*tests, rows, out)].tolist() == [r for r in rows.tolist() if rules[r]]
    grid = columns._grid  # the runs hold positions in its cell order, as do the flags and words of `_cells`
    begins, ends = grid.runs((0, grid.ny - 1, 0, grid.nx - 1))
    at = positions(begins, ends)
    assert len(at) == len(services)
    out = np.empty(len(at), dtype=np.int64)
    kept = out[:_pass.kept_in_runs(*columns._cells._row_tests(prepared, False), begins, ends, out)].tolist()
    assert kept == [p for p in at.tolist() if rules[int(grid.order[p])]]


def test_the_radius_test_gives_pythons_cosines_bit_for_bit_and_keeps_those_above_the_floor(services, columns):
    records = columns._cell_records
    types = columns._cells.type
    groups = columns._located.groups

    @_FIXTURES
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        home = services[data.draw(st.integers(0, len(services) - 1))]
        lat, lon = home.lat + data.draw(st.floats(-0.5, 0.5)), home.lon + data.draw(st.floats(-0.5, 0.5))
        radius_cosine = nearness.cosine_of_km(data.draw(st.floats(0.5, 300.0)))
        floor, sure = radius_cosine - nearness.MARGIN, radius_cosine + nearness.MARGIN
        at = np.array(data.draw(st.lists(st.integers(0, len(services) - 1), max_size=400)), dtype=np.int64)
        table = np.array(data.draw(st.lists(st.booleans(), min_size=groups, max_size=groups)), dtype=bool)
        # Each of the loop's variants: no groups table, a table, a table and the counts by type.
        variant = data.draw(st.sampled_from(["none", "table", "counts"]))
        out_at, cosines, in_groups = np.empty(len(at), np.int64), np.empty(len(at)), np.empty(len(at), dtype=bool)
        by_type = np.zeros(len(ServiceType), dtype=np.int64)
        count, unsure = _pass.near(records, at, *nearness.unit_vector(lat, lon), floor, sure, out_at, cosines,
                                   None if variant == "none" else table, None if variant == "none" else in_groups,
                                   types if variant == "counts" else None, by_type if variant == "counts" else None)
        a, b, c = nearness.unit_vector(lat, lon)
        kept, kept_cosines, kept_in, expected_unsure = [], [], [], []
        counts = [0] * len(ServiceType)
        for p in at.tolist():
            x, y, z, group = records[p].tolist()
            cosine = x * a  # Python floats: one rounding an operation, in this order
            cosine = cosine + y * b
            cosine = cosine + z * c
            if table[int(group)] and variant == "counts":
                counts[int(types[p])] += 1
            if cosine > floor:
                if cosine < sure:
                    expected_unsure.append(len(kept))
                kept.append(p)
                kept_cosines.append(struct.pack("<d", cosine))
                kept_in.append(bool(table[int(group)]))
        assert count == len(kept)
        assert out_at[:count].tolist() == kept
        assert [struct.pack("<d", v) for v in cosines[:count].tolist()] == kept_cosines
        if variant != "none":
            assert in_groups[:count].tolist() == kept_in
        assert unsure == expected_unsure
        assert by_type.tolist() == counts

    check()


def test_a_row_on_the_radius_is_named_unsure():
    records = np.array([[1.0, 0.0, 0.0, 0.0], [math.cos(0.01), math.sin(0.01), 0.0, 0.0]])
    out_at, cosines = np.empty(2, np.int64), np.empty(2)
    count, unsure = _pass.near(records, np.array([0, 1]), 1.0, 0.0, 0.0, math.cos(0.01) - 1e-12,
                               math.cos(0.01) + 1e-12, out_at, cosines, None, None, None, None)
    assert (count, unsure, out_at.tolist()) == (2, [1], [0, 1])


def _tests(flags: np.ndarray, words: np.ndarray, covering: np.ndarray | None = None) -> tuple:
    return flags, words, 0, 0, None, 0, None, covering, 0, 0, None


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "flags": a["flags"].astype(np.uint32)}, "flags"),
    (lambda a: {**a, "flags": a["flags"].astype(np.float64)}, "flags"),
    (lambda a: {**a, "words": a["words"][:-1]}, "words"),
    (lambda a: {**a, "rows": a["rows"].astype(np.int32)}, "rows"),
    (lambda a: {**a, "rows": np.array([0, 9], dtype=np.int64)}, "rows"),
    (lambda a: {**a, "rows": np.array([-1], dtype=np.int64)}, "rows"),
    (lambda a: {**a, "out": np.empty(1, np.int64)}, "out"),
    (lambda a: {**a, "out": np.empty(4, np.int64)[::2]}, "out"),
    (lambda a: {**a, "covering": np.ones(2, dtype=np.uint8)}, "covering"),
    (lambda a: {**a, "covering": np.ones(2, dtype=bool)}, "covering"),  # the rows' groups reach 3
])
def test_a_wrong_call_of_the_filters_raises_value_error(change, message):
    arrays = {"flags": np.array([0, 1 << 16, 3 << 16, 0], dtype=np.uint64), "words": np.zeros(4, dtype=np.uint64),
              "rows": np.arange(4, dtype=np.int64), "out": np.empty(4, np.int64), "covering": np.ones(4, dtype=bool)}
    assert _pass.kept_of(*_tests(arrays["flags"], arrays["words"], arrays["covering"]), arrays["rows"],
                         arrays["out"]) == 4
    wrong = change(arrays)
    with pytest.raises(ValueError, match=message):
        _pass.kept_of(*_tests(wrong["flags"], wrong["words"], wrong["covering"]), wrong["rows"], wrong["out"])


@pytest.mark.parametrize("begins, ends, room, message", [
    ([0, 2], [2], 4, "ends"),
    ([3], [2], 4, "run 0"),
    ([0], [5], 5, "run 0"),
    ([-1], [2], 4, "run 0"),
    ([0, 2], [2, 4], 3, "out"),
])
def test_a_wrong_call_of_the_runs_raises_value_error(begins, ends, room, message):
    flags, words = np.zeros(4, dtype=np.uint64), np.zeros(4, dtype=np.uint64)
    with pytest.raises(ValueError, match=message):
        _pass.kept_in_runs(*_tests(flags, words), np.array(begins, dtype=np.int64), np.array(ends, dtype=np.int64),
                           np.empty(room, np.int64))


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "records": a["records"][:, :3].copy()}, "records"),
    (lambda a: {**a, "records": a["records"].astype(np.float32)}, "records"),
    (lambda a: {**a, "at": np.array([0, 2], dtype=np.int64)}, "at"),
    (lambda a: {**a, "out_at": np.empty(1, np.int64)}, "out_at"),
    (lambda a: {**a, "out_cosines": np.empty(2, np.int64)}, "out_cosines"),
    (lambda a: {**a, "groups": np.ones(1, dtype=bool)}, "records"),  # the second row's group is 1
    (lambda a: {**a, "out_in": np.empty(2, np.int8)}, "out_in"),
    (lambda a: {**a, "types": np.array([0, 5], dtype=np.int8)}, "types"),
    (lambda a: {**a, "types": np.array([0], dtype=np.int8)}, "types"),
])
def test_a_wrong_call_of_the_radius_test_raises_value_error(change, message):
    arrays = {"records": np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]]), "at": np.arange(2, dtype=np.int64),
              "out_at": np.empty(2, np.int64), "out_cosines": np.empty(2), "groups": np.ones(2, dtype=bool),
              "out_in": np.empty(2, dtype=bool), "types": np.array([0, 1], dtype=np.int8),
              "by_type": np.zeros(2, dtype=np.int64)}

    def near(a: dict) -> tuple[int, list[int]]:
        return _pass.near(a["records"], a["at"], 1.0, 0.0, 0.0, -2.0, -2.0, a["out_at"], a["out_cosines"], a["groups"],
                          a["out_in"], a["types"], a["by_type"])

    assert near(arrays) == (2, [])
    with pytest.raises(ValueError, match=message):
        near(change(arrays))
