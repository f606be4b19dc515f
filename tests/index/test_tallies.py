"""`ServiceColumns.around` counts the blocks of cells wholly inside its radius from per-block tallies
(`search.tallies`) instead of reading their rows: every part of its answer must still equal brute force,
for every filter (those the tallies answer and those they leave to the rows), for radii whose circle crosses
cells anywhere, and on a reader that answered before an edit and answers after it."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from bench.synthetic import NEEDS, make_services
from geodata.distance import haversine_km
from rehabmap.index.base import ServiceQuery
from rehabmap.taxonomy import ServiceType
from search import tallies
from search.embedded import EmbeddedIndex, EmbeddedWriter
from tests.index.brute_force import brute_nearest, home_of, passes, random_query
from tests.index.conftest import TODAY, _vary

# West Yorkshire and around: a corpus dense enough that cells hold several rows each.
_REGION = (53.55, 53.95, -2.0, -1.3)


@pytest.fixture(scope="module")
def dense(small_areas):
    south, north, west, east = _REGION
    areas = [a for a in small_areas if south < a.lat < north and west < a.lon < east]
    return _vary(make_services(areas, 3000, seed=17, today=TODAY), seed=17)


@pytest.fixture
def counted(monkeypatch) -> list[bool]:
    """Count from the classes whenever a query allows it, however few rows that saves (a real directory's
    dense cells make it worth it; a test corpus's sparser ones would not), and record, per `around`, whether
    any block was counted so (so the tests know they tested the tallies, not only the rows)."""
    monkeypatch.setattr(tallies, "_ROWS_PER_CLASS", 0.0)
    monkeypatch.setattr(tallies, "MIN_ROWS", 0)
    seen: list[bool] = []
    original = tallies.Tallies.count

    def count(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen.append(out is not None)
        return out

    monkeypatch.setattr(tallies.Tallies, "count", count)
    return seen


def _index(services, path) -> EmbeddedIndex:
    EmbeddedWriter(path).replace_all(services)
    return EmbeddedIndex(path)


def _query(rng: random.Random, services, anchor) -> ServiceQuery:
    """Half the queries ask only what the tallies answer (types, one need, a catchment to cover, areas asked
    for or excluded), half anything (ages, genders, languages, several needs, inactive: the rows answer)."""
    if rng.random() < 0.5:
        return random_query(rng, services)
    some = rng.choice(services)
    return ServiceQuery(
        types=None if rng.random() < 0.3 else frozenset(rng.sample(list(ServiceType), rng.randint(1, 3))),
        needs=tuple(rng.sample(NEEDS, rng.choice([0, 1, 1]))), needs_confirmed=rng.random() < 0.3,
        covers=home_of(anchor) if rng.random() < 0.7 else None,
        area_codes=frozenset({some.areas.lad_code or ""}) if rng.random() < 0.1 else None,
        exclude_area_codes=frozenset({some.areas.lad_code or ""}) if rng.random() < 0.1 else None)


def _assert_around_is_brute_force(index, services, lat, lon, query, k, radius, within, count_within):
    found = index.around(lat, lon, query, k=k, radius_km=radius, within=within, count_within=count_within)
    case = (lat, lon, query, k, radius, within)
    everything = brute_nearest(services, lat, lon, query, len(services), radius)
    assert found.total == len(everything), case
    assert [(h.service.id, h.distance_km) for h in found.nearest] == everything[:k], case
    inside = [] if within is None else brute_nearest(services, lat, lon, replace(query, area_codes=within), k, radius)
    assert [(h.service.id, h.distance_km) for h in found.nearest_within] == inside, case
    if count_within and within is not None:
        asked = replace(query, area_codes=within)
        assert found.within_by_type == {t: sum(1 for s in services if s.service_type is t and passes(s, asked))
                                        for t in ServiceType}, case


def test_around_equals_brute_force_across_radii_filters_and_cells_the_circle_crosses(dense, tmp_path, counted):
    """Radii from a few cells to the whole region, and radii that pass within a metre of a service (its
    cell crosses the circle, or only just lies inside it); the ICB's per-type counts too."""
    index = _index(dense, tmp_path / "index.sqlite")
    rng = random.Random(31)
    active = [s for s in dense if s.status == "active"]
    for case in range(100):
        anchor = rng.choice(dense)
        lat, lon = anchor.lat + rng.uniform(-0.05, 0.05), anchor.lon + rng.uniform(-0.05, 0.05)
        if case % 4 == 0:  # the circle passes a metre inside or outside a service
            edge = rng.choice(active)
            radius = float(haversine_km(lat, lon, np.array([edge.lat]), np.array([edge.lon]))[0])
            radius += rng.choice([-0.001, 0.001])
        else:
            radius = rng.choice([4.0, 12.0, 25.0, 40.0, 70.0])
        within = frozenset({rng.choice([anchor, rng.choice(dense)]).areas.icb_code}) if rng.random() < 0.8 else None
        _assert_around_is_brute_force(index, dense, lat, lon, _query(rng, dense, anchor), rng.choice([1, 5, 25]),
                                      radius, within, rng.random() < 0.7)
    assert sum(counted) >= 25, counted  # the tallies answered many of these, not only the rows


def test_a_reader_that_counted_before_an_edit_counts_after_it_as_brute_force(dense, tmp_path, counted):
    """The tallies are made on a reader's first `around`; an edit laid over the loaded columns (ADR 0011)
    supersedes rows that the tallies still count, so their blocks must be read row by row after it (else
    a retired, retyped or moved service is still counted where it was). Retire and retype services well
    inside the circle but far from the k nearest (in blocks the tallies count), and move some away; then
    random rounds of edits."""
    from tests.index.conftest import edit_rounds

    path = tmp_path / "index.sqlite"
    writer = EmbeddedWriter(path)
    index = _index(dense, path)
    lat, lon, radius = 53.75, -1.65, 15.0  # a box narrower than the region's grid
    types = frozenset({ServiceType.supported_accommodation, ServiceType.vcfse})
    home = min(dense, key=lambda s: (s.lat - lat) ** 2 + (s.lon - lon) ** 2)
    queries = [ServiceQuery(), ServiceQuery(types=types, needs=(NEEDS[0],), covers=home_of(home))]
    within = frozenset({home.areas.icb_code})
    for query in queries:
        _assert_around_is_brute_force(index, dense, lat, lon, query, 1, radius, within, True)
    assert len(counted) == 2 and all(counted)  # both counted blocks from the tallies
    distance = {s.id: float(d) for s, d in zip(dense, haversine_km(lat, lon, np.array([s.lat for s in dense]),
                                                                     np.array([s.lon for s in dense])))}
    middle = [s for s in dense if 6 < distance[s.id] < 12 and s.status == "active"]
    rng = random.Random(5)
    changes: dict[str, dict] = {}
    for s in rng.sample(middle, 30):
        changes[s.id] = rng.choice([{"status": "inactive"}, {"lat": 52.5, "lon": -1.9},
                                    {"service_type": ServiceType.advocacy.value, "subtype": None}])
    current = {s.id: s for s in dense}
    current.update({s.id: s for s in writer.upsert(changes)})
    for query in queries:
        _assert_around_is_brute_force(index, list(current.values()), lat, lon, query, 1, radius, within, True)
    for changes in edit_rounds(dense, seed=37, rounds=2):
        current.update({s.id: s for s in writer.upsert(changes)})
        for query in queries:
            _assert_around_is_brute_force(index, list(current.values()), lat, lon, query, 3, radius, within, True)
    assert index.loads == 1  # every edit was laid over the loaded columns, none reloaded them


def test_blocks_told_inside_or_beyond_a_radius_from_their_cells_hold_no_point_on_the_wrong_side():
    """`around` counts a block the bands call wholly inside the radius, and leaves out one they call wholly
    beyond it, without testing its rows: every point of its cells must lie on that side, for radii passing a
    metre from a cell's corner too; and the bands must not give up more than the ring the circle crosses."""
    origin, cell = (49.9, -6.4), (0.02, 0.03)
    rng = random.Random(23)
    for case in range(120):
        lat, lon = rng.uniform(50.0, 55.8), rng.uniform(-5.5, 1.7)
        home_y, home_x = int((lat - origin[0]) // cell[0]), int((lon - origin[1]) // cell[1])
        span = rng.choice([3, 12, 40])
        rows = np.arange(home_y - span, home_y + span + 1) // tallies.BLOCK
        columns = np.arange(home_x - span, home_x + span + 1) // tallies.BLOCK
        rows, columns = np.unique(rows), np.unique(columns)
        side_lat, side_lon = tallies.BLOCK * cell[0], tallies.BLOCK * cell[1]
        # Per block, points of its cells: a grid over it (edges and corners included) and the point of it
        # nearest the home in latitude and longitude.
        fractions = np.linspace(0.0, 1.0, 7)
        south = (origin[0] + rows * side_lat)[:, None, None, None]
        west = (origin[1] + columns * side_lon)[None, :, None, None]
        full = (len(rows), len(columns), len(fractions), len(fractions))
        point_lat = np.broadcast_to(south + fractions[:, None] * side_lat, full)
        point_lon = np.broadcast_to(west + fractions[None, :] * side_lon, full)
        shape = (len(rows), len(columns), -1)
        near_lat = np.broadcast_to(np.clip(lat, south, south + side_lat), (*full[:2], 1, 1))
        near_lon = np.broadcast_to(np.clip(lon, west, west + side_lon), (*full[:2], 1, 1))
        lats = np.concatenate((point_lat.reshape(shape), near_lat.reshape(shape)), axis=2)
        lons = np.concatenate((point_lon.reshape(shape), near_lon.reshape(shape)), axis=2)
        distances = haversine_km(lat, lon, lats.ravel(), lons.ravel()).reshape(lats.shape)
        farthest, least = distances.max(axis=2), distances.min(axis=2)
        if case % 2:
            corners = distances[:, :, [0, 6, 42, 48]].ravel()  # the grid's corner points
            radius = float(rng.choice(corners[corners > 0])) + rng.choice([-0.001, 0.001])
        else:
            radius = rng.uniform(0.3, span * 2.0)
        bands = tallies._Bands(lat, lon, origin, cell, rows, columns)
        inside, beyond = bands.inside(radius), bands.beyond(radius)
        case_ = (lat, lon, radius, span)
        assert (farthest[inside] <= radius).all(), case_
        assert (least[beyond] > radius).all(), case_
        assert (inside == (farthest <= radius - 1e-6)).all(), case_  # the corners decide: exact
        assert (beyond | (least <= radius + 0.3)).all(), case_  # nothing well beyond is left to the rows
