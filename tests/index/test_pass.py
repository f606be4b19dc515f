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


def _flags(size: int) -> st.SearchStrategy[np.ndarray]:
    """A table of `size` booleans, each a byte's lowest bit: one draw for the table, where a list of booleans is
    a draw a value (hypothesis spent most of test_pass.py's time drawing them, ~400,000 in the union test alone);
    shrinks towards all false as a list does."""
    return st.binary(min_size=size, max_size=size).map(lambda b: (np.frombuffer(b, dtype=np.uint8) & 1) == 1)


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
        expected = [p for p in positions(runs.begins, runs.ends).tolist()
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
    begins, ends, _ = grid.runs((0, grid.ny - 1, 0, grid.nx - 1))
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
        table = data.draw(_flags(groups))
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


# --- the candidates' selection (`reach`) and their order (`first_k`) ----------------------------------------------


def _reach_rule(cosines: np.ndarray, at: np.ndarray, k: int, among: np.ndarray | None,
                only_among: bool) -> tuple[list[int], list[bool], bool]:
    """`reach`'s rule in NumPy: the bound is the k-th greatest cosine of the rows among (a full sort), less the
    margin, or none when fewer than k are among; every row no less than it (and among, with `only_among`)."""
    ours = np.ones(len(cosines), dtype=bool) if among is None else among
    held = np.sort(cosines[ours])[::-1]
    bounded = len(held) >= k
    bound = float(held[k - 1]) - nearness.MARGIN if bounded else -math.inf
    keep = cosines >= bound
    if only_among:
        keep &= ours
    return at[keep].tolist(), ours[keep].tolist(), bounded


@st.composite
def _cosines_of_a_home(draw: st.DrawFn, services: list[Service], records: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the cell order and their rows' cosines with a home of the corpus (as `near` computes them),
    with ties drawn in: some cosines copies of others, some exactly the k-th's less the margin (set by the test)."""
    home = services[draw(st.integers(0, len(services) - 1))]
    a, b, c = nearness.unit_vector(home.lat + draw(st.floats(-0.3, 0.3)), home.lon + draw(st.floats(-0.3, 0.3)))
    at = np.array(draw(st.lists(st.integers(0, len(services) - 1), max_size=300, unique=True)), dtype=np.int64)
    cosines = records[at, 0] * a
    cosines += records[at, 1] * b
    cosines += records[at, 2] * c
    for _ in range(draw(st.integers(0, 20)) if len(at) else 0):
        cosines[draw(st.integers(0, len(at) - 1))] = cosines[draw(st.integers(0, len(at) - 1))]
    return at, cosines


def test_the_candidates_selection_keeps_what_the_rule_keeps(services, columns):
    records = columns._cell_records

    @_FIXTURES
    @given(drawn=_cosines_of_a_home(services, records), data=st.data())
    def check(drawn: tuple[np.ndarray, np.ndarray], data: st.DataObject) -> None:
        at, cosines = drawn
        n = len(at)
        k = data.draw(st.integers(1, 12) | st.integers(1, 80))
        among = data.draw(st.none() | _flags(n))
        if n and data.draw(st.booleans()):  # rows exactly on the bound: the k-th greatest less the margin
            held = np.sort(cosines if among is None else cosines[among])[::-1]
            if len(held) >= k:
                for _ in range(data.draw(st.integers(1, 3))):
                    cosines[data.draw(st.integers(0, n - 1))] = float(held[k - 1]) - nearness.MARGIN
        only_among = among is not None and data.draw(st.booleans())
        want_in = among is not None and not only_among
        out_at, out_in = np.full(n, -7, dtype=np.int64), np.empty(n, dtype=bool) if want_in else None
        expected_at, expected_in, expected_bounded = _reach_rule(cosines, at, k, among, only_among)
        count, bounded = _pass.reach(cosines, at, k, nearness.MARGIN, among, only_among, out_at, out_in)
        assert (count, bounded) == (len(expected_at), expected_bounded)
        assert out_at[:count].tolist() == expected_at
        if out_in is not None:
            assert out_in[:count].tolist() == expected_in

    check()


def test_a_row_exactly_on_the_candidates_bound_is_kept_and_one_below_is_not():
    kth = 0.75
    on, below = kth - nearness.MARGIN, np.nextafter(kth - nearness.MARGIN, -1.0)
    cosines = np.array([0.5, kth, on, 0.9, below, kth, 0.95])
    at = np.arange(10, 17, dtype=np.int64)
    out = np.empty(7, dtype=np.int64)
    # the 4th greatest is `kth` (0.95, 0.9, 0.75, 0.75): ties at it count once each
    assert _pass.reach(cosines, at, 4, nearness.MARGIN, None, False, out, None) == (5, True)
    assert out[:5].tolist() == [11, 12, 13, 15, 16]


def _first_rule(at: np.ndarray, distances: np.ndarray, id_rank: np.ndarray, k: int, ours: np.ndarray | None,
                margin: float) -> list[int]:
    """`first_k`'s rule in Python: a stable sort by (effective distance, distance, id rank), its first k."""
    effective = [d if ours is None or ours[i] else d + margin for i, d in enumerate(distances.tolist())]
    return sorted(range(len(at)), key=lambda i: (effective[i], float(distances[i]), int(id_rank[at[i]])))[:k]


def test_the_order_of_the_measured_rows_is_the_rules(services, columns):
    id_rank, grid_order = columns._cells.id_rank, columns._grid.order

    @_FIXTURES
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        n = data.draw(st.integers(0, 60))
        at = np.array(data.draw(st.lists(st.integers(0, len(services) - 1), min_size=n, max_size=n, unique=True)),
                      dtype=np.int64)
        # distances from a few values (ties in distance, and in effective distance across ours and not ours)
        values = data.draw(st.lists(st.floats(0.0, 60.0), min_size=1, max_size=8))
        distances = np.array([data.draw(st.sampled_from(values)) for _ in range(n)], dtype=np.float64)
        ours = data.draw(st.none() | _flags(n))
        margin = data.draw(st.sampled_from([0.0, 5.0]) | st.floats(0.0, 20.0))
        if ours is not None and n and data.draw(st.booleans()):  # the first row's distance equal to another's
            distances[0] = float(distances[data.draw(st.integers(0, n - 1))]) + margin  # plus the margin
        k = data.draw(st.integers(0, 15))
        order = data.draw(st.sampled_from([None, grid_order]))  # positions turned into their rows, or not
        out_rows, out_distances = np.full(min(k, n), -7, dtype=np.int64), np.full(min(k, n), -7.0)
        assert _pass.first_k(at, distances, id_rank, k, ours, margin, order, out_rows, out_distances) == min(k, n)
        first = _first_rule(at, distances, id_rank, k, ours, margin)
        assert out_rows.tolist() == [int(at[i]) if order is None else int(order[at[i]]) for i in first]
        assert out_distances.tolist() == [float(distances[i]) for i in first]

    check()


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "k": 0}, "k"),
    (lambda a: {**a, "cosines": a["cosines"].astype(np.float32)}, "cosines"),
    (lambda a: {**a, "cosines": np.array([0.5, math.nan, 0.1])}, "NaN"),
    (lambda a: {**a, "at": a["at"][:2].copy()}, "at"),
    (lambda a: {**a, "at": a["at"].astype(np.int32)}, "at"),
    (lambda a: {**a, "among": np.ones(2, dtype=bool)}, "among"),
    (lambda a: {**a, "among": np.ones(3, dtype=np.int8)}, "among"),
    (lambda a: {**a, "out_at": np.empty(2, np.int64)}, "out_at"),
    (lambda a: {**a, "out_at": np.empty(6, np.int64)[::2]}, "out_at"),
    (lambda a: {**a, "out_in": np.empty(2, dtype=bool)}, "out_in"),
    (lambda a: {**a, "among": None}, "among"),  # out_in without among
    (lambda a: {**a, "among": None, "out_in": None, "only": True}, "among"),
])
def test_a_wrong_call_of_the_candidates_selection_raises_value_error(change, message):
    arrays = {"cosines": np.array([0.5, 0.9, 0.1]), "at": np.array([4, 5, 6], dtype=np.int64), "k": 2,
              "among": np.array([True, False, True]), "only": False, "out_at": np.empty(3, np.int64),
              "out_in": np.empty(3, dtype=bool)}

    def reach(a: dict) -> tuple[int, bool]:
        return _pass.reach(a["cosines"], a["at"], a["k"], nearness.MARGIN, a["among"], a["only"], a["out_at"],
                           a["out_in"])

    assert reach(arrays) == (3, True)
    with pytest.raises(ValueError, match=message):
        reach(change(arrays))


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "k": -1}, "k"),
    (lambda a: {**a, "at": np.array([0, 1, 4], dtype=np.int64)}, "at"),
    (lambda a: {**a, "at": np.array([0, -1, 2], dtype=np.int64)}, "at"),
    (lambda a: {**a, "at": a["at"].astype(np.int32)}, "at"),
    (lambda a: {**a, "distances": np.array([1.0, 2.0])}, "distances"),
    (lambda a: {**a, "distances": np.array([1.0, math.nan, 2.0])}, "NaN"),
    (lambda a: {**a, "id_rank": a["id_rank"].astype(np.float64)}, "id_rank"),
    (lambda a: {**a, "ours": np.ones(2, dtype=bool)}, "ours"),
    (lambda a: {**a, "out_rows": np.empty(1, np.int64)}, "out_rows"),
    (lambda a: {**a, "out_rows": np.empty(2, np.int32)}, "out_rows"),
    (lambda a: {**a, "out_distances": np.empty(1)}, "out_distances"),
    (lambda a: {**a, "out_distances": np.empty(2, np.int64)}, "out_distances"),
    (lambda a: {**a, "order": np.arange(3, dtype=np.int64)}, "order"),  # a row of id_rank without its place
    (lambda a: {**a, "order": np.arange(4, dtype=np.int32)}, "order"),
])
def test_a_wrong_call_of_the_order_raises_value_error(change, message):
    arrays = {"at": np.array([0, 1, 2], dtype=np.int64), "distances": np.array([3.0, 1.0, 2.0]),
              "id_rank": np.array([2, 0, 1, 3], dtype=np.int64), "k": 2, "ours": np.array([True, False, True]),
              "order": np.array([13, 12, 11, 10], dtype=np.int64), "out_rows": np.empty(2, np.int64),
              "out_distances": np.empty(2)}

    def first_k(a: dict) -> int:
        return _pass.first_k(a["at"], a["distances"], a["id_rank"], a["k"], a["ours"], 5.0, a["order"], a["out_rows"],
                             a["out_distances"])

    assert first_k(arrays) == 2
    assert arrays["out_rows"].tolist() == [11, 13] and arrays["out_distances"].tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match=message):
        first_k(change(arrays))


def _cell_runs_rule(grid, cells: list[int], types: list[int], box: tuple[int, int, int, int] | None
                    ) -> list[tuple[int, int]]:
    """`cell_runs`' rule: per type, then cell, the cell's run of the grid's order, for the cells outside the box."""
    return [(int(grid.start[t * grid.cells + c]), int(grid.start[t * grid.cells + c + 1]))
            for t in types for c in cells
            if box is None or not (box[0] <= c // grid.nx <= box[1] and box[2] <= c % grid.nx <= box[3])]


def _box_runs_rule(grid, box: tuple[int, int, int, int], types: list[int], cells: list[int]) -> list[tuple[int, int]]:
    """`box_runs`' rule, from the cells one by one: per type, then row of the box, its cells' runs joined into one
    (each cell's run begins where the one before it ends); then the cells outside the box as `cell_runs` gives them."""
    rows = []
    for t in types:
        for y in range(box[0], box[1] + 1):
            runs = _cell_runs_rule(grid, [y * grid.nx + x for x in range(box[2], box[3] + 1)], [t], None)
            assert all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
            rows.append((runs[0][0], runs[-1][1]))
    return rows + _cell_runs_rule(grid, cells, types, box)


@st.composite
def _grid_question(draw: st.DrawFn, grid, every_box: bool) -> tuple:
    """Cells (ascending), types (ascending) and a box of the grid (or None unless `every_box`)."""
    types_total = (len(grid.start) - 1) // grid.cells
    cells = sorted(draw(st.sets(st.integers(0, grid.cells - 1), max_size=80)))
    types = sorted(draw(st.sets(st.integers(0, types_total - 1))))
    box = None
    if every_box or draw(st.booleans()):
        y0, x0 = draw(st.integers(0, grid.ny - 1)), draw(st.integers(0, grid.nx - 1))
        box = (y0, draw(st.integers(y0, grid.ny - 1)), x0, draw(st.integers(x0, grid.nx - 1)))
    return cells, types, box


def test_a_grids_cells_as_runs_are_the_rules(columns):
    grid = columns._grid

    @_FIXTURES
    @given(question=_grid_question(grid, False))
    def check(question: tuple) -> None:
        cells, types, box = question
        expected = _cell_runs_rule(grid, cells, types, box)
        room = len(types) * len(cells)
        begins, ends = np.full(room, -7, dtype=np.int64), np.full(room, -7, dtype=np.int64)
        count, total = _pass.cell_runs(grid.start, grid.cells, grid.nx, np.array(cells, dtype=np.int64),
                                       np.array(types, dtype=np.int64), box, begins, ends)
        assert list(zip(begins[:count].tolist(), ends[:count].tolist())) == expected
        assert total == sum(e - b for b, e in expected)

    check()


def test_a_boxs_rows_and_cells_beyond_it_as_runs_are_the_rules(columns):
    grid = columns._grid

    @_FIXTURES
    @given(question=_grid_question(grid, True), with_cells=st.booleans())
    def check(question: tuple, with_cells: bool) -> None:
        cells, types, box = question
        expected = _box_runs_rule(grid, box, types, cells if with_cells else [])
        room = len(types) * (box[1] - box[0] + 1 + (len(cells) if with_cells else 0))
        begins, ends = np.full(room, -7, dtype=np.int64), np.full(room, -7, dtype=np.int64)
        count, total = _pass.box_runs(grid.start, grid.cells, grid.nx,
                                      np.array(cells, dtype=np.int64) if with_cells else None,
                                      np.array(types, dtype=np.int64), box, begins, ends)
        assert list(zip(begins[:count].tolist(), ends[:count].tolist())) == expected
        assert total == sum(e - b for b, e in expected)

    check()


# a grid of 2 rows of 3 cells, 2 types: 13 starts
_GRID = {"start": np.arange(13, dtype=np.int64), "cells_total": 6, "nx": 3, "cells": np.array([0, 5], dtype=np.int64),
         "types": np.array([0, 1], dtype=np.int64), "box": (0, 0, 0, 0), "begins": np.empty(4, np.int64),
         "ends": np.empty(4, np.int64)}
_WRONG_GRID_CALLS = [
    (lambda a: {**a, "cells": np.array([0, 6], dtype=np.int64)}, "cells"),
    (lambda a: {**a, "cells": np.array([-1], dtype=np.int64)}, "cells"),
    (lambda a: {**a, "cells": a["cells"].astype(np.int32)}, "cells"),
    (lambda a: {**a, "types": np.array([2], dtype=np.int64)}, "types"),
    (lambda a: {**a, "types": np.array([-1], dtype=np.int64)}, "types"),
    (lambda a: {**a, "start": a["start"][:-1].copy()}, "types"),  # the last type's last run would end past it
    (lambda a: {**a, "start": a["start"][::-1].copy()}, "start"),  # a run ending before it begins
    (lambda a: {**a, "nx": 4}, "nx"),
    (lambda a: {**a, "nx": 0}, "nx"),
    (lambda a: {**a, "box": (0, 1, 2)}, "box"),
    (lambda a: {**a, "begins": np.empty(3, np.int64)}, "begins"),
    (lambda a: {**a, "ends": np.empty(4, np.float64)}, "ends"),
]


def _grid_call(function, a: dict) -> tuple[int, int]:
    return function(a["start"], a["cells_total"], a["nx"], a["cells"], a["types"], a["box"], a["begins"], a["ends"])


@pytest.mark.parametrize("change, message", _WRONG_GRID_CALLS)
def test_a_wrong_call_of_the_cells_runs_raises_value_error(change, message):
    arrays = dict(_GRID)
    assert _grid_call(_pass.cell_runs, arrays) == (2, 2) and arrays["begins"][:2].tolist() == [5, 11]
    with pytest.raises(ValueError, match=message):
        _grid_call(_pass.cell_runs, change(arrays))


@pytest.mark.parametrize("change, message", [
    *_WRONG_GRID_CALLS,
    (lambda a: {**a, "box": None}, "box"),
    (lambda a: {**a, "box": (0, 2, 0, 0)}, "box"),  # a third row of cells: beyond the grid
    (lambda a: {**a, "box": (0, 0, 2, 3)}, "box"),  # a fourth column
    (lambda a: {**a, "box": (1, 0, 0, 0)}, "box"),  # empty
    (lambda a: {**a, "box": (-1, 0, 0, 0)}, "box"),
    (lambda a: {**a, "box": (0, 0, 1, 0)}, "box"),
    (lambda a: {**a, "begins": np.empty(5, np.int64), "ends": np.empty(5, np.int64)}, "begins"),  # 2 types x 3
    (lambda a: {**a, "cells": None, "box": (0, 1, 0, 0), "begins": np.empty(3, np.int64)}, "begins"),
])
def test_a_wrong_call_of_the_box_runs_raises_value_error(change, message):
    # the box's one row of one cell (cell 0's run) of each type, then cell 5's (outside the box) of each
    arrays = {**_GRID, "begins": np.empty(6, np.int64), "ends": np.empty(6, np.int64)}
    assert _grid_call(_pass.box_runs, arrays) == (4, 4)
    assert arrays["begins"][:4].tolist() == [0, 6, 5, 11] and arrays["ends"][:4].tolist() == [1, 7, 6, 12]
    assert _grid_call(_pass.box_runs, {**arrays, "cells": None, "box": (0, 1, 1, 2)}) == (4, 8)
    with pytest.raises(ValueError, match=message):
        _grid_call(_pass.box_runs, change(arrays))


def test_a_homes_table_is_the_union_of_its_areas_tables_and_its_polygons():
    @_FIXTURES
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        size = data.draw(st.integers(0, 300))
        offset = data.draw(st.integers(0, size))
        tables = data.draw(st.lists(_flags(size), min_size=1, max_size=12))  # more than the views a call holds at once
        places = data.draw(st.lists(st.integers(0, size - offset - 1), max_size=20)) if size > offset else []
        out = data.draw(_flags(size))  # what was there is overwritten
        assert _pass.union(tables, places, offset, out) is None
        expected = [any(bool(t[g]) for t in tables) or g - offset in places for g in range(size)]
        assert out.tolist() == expected

    check()


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "tables": []}, "tables"),
    (lambda a: {**a, "tables": (np.zeros(4, dtype=bool),)}, "tables"),
    (lambda a: {**a, "tables": [np.zeros(4, dtype=bool), np.zeros(3, dtype=bool)]}, "tables"),
    (lambda a: {**a, "tables": [np.zeros(4, dtype=np.uint8)]}, "tables"),
    (lambda a: {**a, "tables": [np.zeros(8, dtype=bool)[::2]]}, "tables"),
    (lambda a: {**a, "places": (1,)}, "places"),
    (lambda a: {**a, "places": [2]}, "places"),  # offset 2 + 2: past the 4 groups
    (lambda a: {**a, "places": [-1]}, "places"),
    (lambda a: {**a, "offset": 5}, "offset"),
    (lambda a: {**a, "offset": -1}, "offset"),
    (lambda a: {**a, "out": np.zeros(4, dtype=np.int8)}, "out"),
    (lambda a: {**a, "out": np.zeros(4, dtype=bool)[::-1]}, "out"),
])
def test_a_wrong_call_of_the_union_raises_value_error(change, message):
    arrays = {"tables": [np.array([1, 0, 0, 0], dtype=bool), np.array([0, 0, 1, 0], dtype=bool)], "places": [1],
              "offset": 2, "out": np.zeros(4, dtype=bool)}

    def union(a: dict) -> None:
        _pass.union(a["tables"], a["places"], a["offset"], a["out"])

    union(arrays)
    assert arrays["out"].tolist() == [True, False, True, True]
    with pytest.raises(ValueError, match=message):
        union(change(arrays))


def _boxes_rule(candidates: np.ndarray, lon: float, lat: float) -> tuple[list[int], list[int]]:
    """`boxes_holding`'s rule in Python floats: inside the bounding box, held when inside the inner box too."""
    held, unsure = [], []
    for number, ix0, iy0, ix1, iy1, x0, y0, x1, y1 in candidates.tolist():
        if x0 <= lon <= x1 and y0 <= lat <= y1:
            (held if ix0 <= lon <= ix1 and iy0 <= lat <= iy1 else unsure).append(int(number))
    return held, unsure


def test_the_polygons_boxes_about_a_point_are_the_rules():
    @_FIXTURES
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        # coordinates from a few values, so points fall on edges and boxes share them; empty boxes (inf) too
        values = data.draw(st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=5)) + [math.inf, -math.inf]
        coordinate = st.sampled_from(values)
        n = data.draw(st.integers(0, 30))
        rows = [[float(p), *(data.draw(coordinate) for _ in range(8))] for p in range(n)]
        candidates = np.array(rows, dtype=np.float64).reshape(n, 9)
        lon, lat = data.draw(coordinate), data.draw(coordinate)
        held, unsure = [99], []  # appended to, not replaced
        assert _pass.boxes_holding(candidates, lon, lat, held, unsure) is None
        rule = _boxes_rule(candidates, lon, lat)
        assert (held, unsure) == ([99, *rule[0]], rule[1])

    check()


def test_a_polygon_lookup_finds_what_geos_finds_with_the_compiled_boxes():
    """The lookup's answer through the compiled boxes, held to GEOS over every polygon (its test file does the same
    at length; here a few polygons, points on their edges and corners included)."""
    from search.polygons import PolygonLookup

    polygons = np.array([shapely.box(0.0, 0.0, 0.3, 0.2), shapely.Polygon([(0.1, 0.1), (0.5, 0.1), (0.1, 0.4)]),
                         shapely.box(-0.25, -0.05, 0.05, 0.35)], dtype=object)
    shapely.prepare(polygons)
    lookup = PolygonLookup(polygons)
    for lon in np.linspace(-0.3, 0.6, 19).tolist() + [0.0, 0.3, 0.05]:
        for lat in np.linspace(-0.1, 0.5, 13).tolist() + [0.2, 0.35]:
            expected = np.flatnonzero(shapely.intersects_xy(polygons, lon, lat)).tolist()
            assert sorted(lookup.holding(lon, lat)) == expected, (lon, lat)


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "candidates": np.zeros((2, 8))}, "candidates"),
    (lambda a: {**a, "candidates": np.zeros(9)}, "candidates"),
    (lambda a: {**a, "candidates": np.zeros((2, 9), dtype=np.int64)}, "candidates"),
    (lambda a: {**a, "candidates": np.zeros((2, 18))[:, ::2]}, "candidates"),
    (lambda a: {**a, "candidates": np.array([[-1.0, *a["candidates"][0, 1:]]])}, "candidates"),  # not a number
    (lambda a: {**a, "candidates": np.array([[0.5, *a["candidates"][0, 1:]]])}, "candidates"),
    (lambda a: {**a, "lon": "west"}, "lon"),
    (lambda a: {**a, "held": ()}, "held"),
    (lambda a: {**a, "unsure": None}, "unsure"),
])
def test_a_wrong_call_of_the_boxes_raises_value_error(change, message):
    # polygon 3: inner box (0, 0)-(1, 1), bounding box (-1, -1)-(2, 2); polygon 4: bounding box (5, 5)-(6, 6)
    arrays = {"candidates": np.array([[3.0, 0, 0, 1, 1, -1, -1, 2, 2], [4.0, 5, 5, 6, 6, 5, 5, 6, 6]]), "lon": 0.5,
              "lat": 0.5, "held": [], "unsure": []}

    def boxes(a: dict) -> None:
        _pass.boxes_holding(a["candidates"], a["lon"], a["lat"], a["held"], a["unsure"])

    boxes(arrays)
    assert arrays["held"] == [3] and arrays["unsure"] == []
    with pytest.raises(ValueError, match=message):
        boxes(change({**arrays, "held": [], "unsure": []}))
