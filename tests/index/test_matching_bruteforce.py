"""Matching on the embedded index equals an independent brute-force scan over the same records."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date

import pytest
from shapely.geometry import Point, shape

from geodata.areas import AreaCodes
from geodata.distance import great_circle_km, miles_and_km
from search.embedded import EmbeddedIndex, EmbeddedWriter
from rehabmap.match import LIMIT, OUT_OF_AREA_MARGIN_KM, LeftOut, MatchRequest, left_out, match
from rehabmap.index.base import Coverage, ServiceQuery
from rehabmap.taxonomy import GENDER_NEEDS, SUBTYPES, ServiceType, types_narrowed_by
from search.columns import ServiceColumns
from bench.synthetic import NEEDS, make_services
from tests.index.brute_force import Kept

TODAY = date(2026, 11, 23)
# Polish, whatever ISO 639 code a feed gave; Chinese, met by a Cantonese-speaking service (tests/index/conftest.py)
LANGUAGES = ["language:pl", "language:zh"]


@dataclass(frozen=True)
class Home:
    lat: float
    lon: float
    areas: AreaCodes
    precision: str = "postcode"
    district: str | None = None
    place: str | None = None


@pytest.fixture(scope="module")
def indexed(small_areas, tmp_path_factory):
    services = make_services(small_areas, 4000, seed=7, today=TODAY)
    path = tmp_path_factory.mktemp("index") / "index.sqlite"
    EmbeddedWriter(path).replace_all(services)
    return services, EmbeddedIndex(path)


def in_catchment(s, home: Home, home_codes: set) -> bool:
    area = s.service_area
    if not area.codes and area.polygon is None:
        return True
    return bool(home_codes & set(area.codes)) or (
        area.polygon is not None and shape(area.polygon).intersects(Point(home.lon, home.lat)))


def fit(s, request: MatchRequest) -> tuple[int, int, int]:
    """Best fit first, written out: needs confirmed (more first), referrals (yes, not said, no), capacity
    reported within 14 days (vacancy, limited, not known, none)."""
    confirmed = sum(n in s.needs_met for n in request.needs)
    referrals = {True: 0, None: 1, False: 2}[s.accepting_referrals]
    fresh = s.capacity if s.capacity_as_of is not None and (TODAY - s.capacity_as_of).days <= 14 else None
    return (-confirmed, referrals, {"available": 0, "limited": 1, None: 2, "none": 3}[fresh])


def brute_force(services, home: Home, request: MatchRequest) -> list[tuple[str, float]]:
    """The rules of DESIGN.md §4 written out plainly, one service at a time."""
    home_codes = {home.areas.icb_code, home.areas.lad_code}
    if request.types and not request.each_type:
        groups = [set(request.types)]
    else:
        groups = [{t} for t in ServiceType if not request.types or t in request.types]
    answer = []
    for types in groups:
        scored = []
        for s in services:
            if s.status != "active" or s.service_type not in types:
                continue
            if any(n in s.needs_not_met for n in request.needs):
                continue
            if request.needs_confirmed and any(n not in s.needs_met for n in request.needs):
                continue
            if request.age is not None and ((s.min_age is not None and s.min_age > request.age)
                                            or (s.max_age is not None and s.max_age < request.age)):
                continue
            if request.gender == "female" and s.gender == "male_only":
                continue
            if request.gender == "male" and s.gender == "female_only":
                continue
            if not request.include_out_of_catchment and not in_catchment(s, home, home_codes):
                continue
            if request.accepting_only and s.accepting_referrals is not True:
                continue
            d = great_circle_km(home.lat, home.lon, s.lat, s.lon)
            if request.max_distance_km is not None and d > request.max_distance_km:
                continue
            in_icb = s.areas.icb_code == home.areas.icb_code
            if request.own_icb_only and not in_icb:
                continue
            first = fit(s, request) if request.order == "best_fit" else ()
            scored.append((*first, d + (0 if in_icb else OUT_OF_AREA_MARGIN_KM), d, s.id))
        answer += [(sid, d) for *_, d, sid in sorted(scored)[:request.limit]]
    return answer


@pytest.fixture(scope="module")
def answers() -> Kept:
    """brute_force's answers, each worked out once a module (`Kept`), for the tests run on each backend in turn."""
    return Kept(brute_force)


def read_needs(s, request: MatchRequest) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The needs asked for that the service does not state but its words suggest, met and not met, in the
    order asked: a need stated either way is never read (the statement wins)."""
    stated = {*s.needs_met, *s.needs_not_met}
    return (tuple(n for n in request.needs if n not in stated and n in s.needs_read_from_text),
            tuple(n for n in request.needs if n not in stated and n in s.needs_read_not_met))


def random_request(rng: random.Random) -> MatchRequest:
    types = None if rng.random() < 0.3 else tuple(rng.sample(list(ServiceType), rng.randint(1, 3)))
    return MatchRequest(
        needs=tuple(rng.sample(NEEDS + [*GENDER_NEEDS, *LANGUAGES], rng.randint(0, 2))), types=types,
        age=rng.choice([None, 30, 70]), gender=rng.choice([None, "female", "male"]),
        max_distance_km=rng.choice([None, 25.0, 80.0]), own_icb_only=rng.random() < 0.2,
        accepting_only=rng.random() < 0.3, needs_confirmed=rng.random() < 0.2,
        include_out_of_catchment=rng.random() < 0.2, limit=rng.choice([1, 5, 10, 25]),
        order=rng.choice(["nearest", "best_fit"]), each_type=rng.random() < 0.5)


def random_home(rng: random.Random, small_areas) -> Home:
    area = rng.choice(small_areas)
    return Home(area.lat, area.lon, AreaCodes(icb_code=area.icb, icb_name=area.icb_name, lad_code=area.lad))


def assert_brute_force(services, home: Home, request: MatchRequest, results: list) -> None:
    """The results are brute force's: the same services in the same order, each distance to the metre."""
    expected = brute_force(services, home, request)
    assert [r.service.id for r in results] == [sid for sid, _ in expected], request
    assert [r.distance_km for r in results] == pytest.approx([round(d, 3) for _, d in expected], abs=1e-3)


def test_match_equals_brute_force(indexed, small_areas):
    services, index = indexed
    rng = random.Random(11)
    nonempty = 0
    for _ in range(60):
        home = random_home(rng, small_areas)
        request = random_request(rng)
        results = match(index, home, request, TODAY).results
        assert_brute_force(services, home, request, results)
        nonempty += bool(results)
    assert nonempty > 40  # the comparison exercised real results, not empty lists


def test_both_orders_on_both_backends_equal_brute_force(backend_or_edited_elastic, small_areas, answers):
    """Nearest first and best fit first, one type at a time or together, on the embedded index and
    Elasticsearch alike, over a corpus with polygon catchments, languages and needs and genders read from
    services' words (which never filter nor count as confirmed); with every group's total and each result's
    read needs and gender."""
    services, index = backend_or_edited_elastic
    by_id = {s.id: s for s in services}
    rng = random.Random(29)
    best_fit_differs = read_shown = other_gender_shown = 0
    for i in range(50):
        home = random_home(rng, small_areas)
        request = MatchRequest(**{**random_request(rng).__dict__, "order": ("best_fit", "nearest")[i % 2]})
        response = match(index, home, request, TODAY)
        expected = answers(services, home, request)
        assert [r.service.id for r in response.results] == [sid for sid, _ in expected], request
        for r in response.results:
            assert read_needs(by_id[r.service.id], request) == (r.needs_read_from_text, r.needs_read_not_met)
            read_shown += bool(r.needs_read_not_met)
            # A gender read from its words: listed for either person, never as stated, with a caution.
            [read_gender] = r.service.gender_read_from_text or [None]
            if read_gender is not None:
                assert r.service.gender is None and "Its listing suggests it takes " in r.explanation
                other_gender_shown += read_gender == {"female": "male_only", "male": "female_only"}.get(request.gender)
        everything = MatchRequest(**{**request.__dict__, "limit": 100, "order": "nearest"})
        for group in response.groups:
            one = MatchRequest(**{**everything.__dict__, "types": tuple(group.types), "each_type": False})
            assert group.total == len(answers(services, home, one)) or group.total > 100, (request, group)
        # The summary's count in the home ICB: the request's filters, anywhere in the ICB (no radius), which
        # the ranking's pass over the circle answers when the ICB lies in its box.
        for summary in response.summary:
            in_icb = MatchRequest(**{**everything.__dict__, "types": (summary.service_type,), "each_type": False,
                                     "own_icb_only": True, "max_distance_km": None})
            object.__setattr__(in_icb, "limit", len(services))  # every one, past the API's cap on limit
            assert summary.in_home_icb == len(answers(services, home, in_icb)), (request, summary)
        if request.order == "best_fit":
            nearest = answers(services, home, MatchRequest(**{**request.__dict__, "order": "nearest"}))
            best_fit_differs += nearest != expected
    assert best_fit_differs >= 5  # the new order was exercised where it changes the answer
    assert read_shown >= 5  # services whose words suggest they do not meet a need asked for were still listed
    assert other_gender_shown >= 5  # and services whose words suggest they take the other gender only


class Counting:
    """The index, with its calls of the named methods counted (each a pass over the rows or a box of them)."""

    def __init__(self, index: EmbeddedIndex, *names: str) -> None:
        self.index, self.names, self.calls = index, names, Counter[str]()

    def __getattr__(self, name: str):
        method = getattr(self.index, name)
        if name not in self.names:
            return method

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return method(*args, **kwargs)
        return counted


def test_without_a_radius_the_groups_totals_come_from_one_pass(indexed, small_areas):
    """Every type in a group of its own and no radius: each group's total is that type's own count (brute
    force, subtypes narrowing only their own type), all read from one pass over the rows (a second, the
    summary's, counts in the home ICB), not one pass a group."""
    services, index = indexed
    by_id = {s.id: s for s in services}
    every_subtype = [sub for subs in SUBTYPES.values() for sub in subs]
    rng = random.Random(41)
    full_groups = 0
    for _ in range(25):
        home = random_home(rng, small_areas)
        subtypes = tuple(rng.sample(every_subtype, rng.randint(1, 3))) if rng.random() < 0.6 else None
        request = MatchRequest(**{**random_request(rng).__dict__, "types": None, "each_type": True,
                                  "max_distance_km": None, "subtypes": subtypes, "limit": rng.choice([1, 5])})
        counting = Counting(index, "count_by_type")
        response = match(counting, home, request, TODAY)
        assert counting.calls["count_by_type"] <= 2, request
        narrowed = types_narrowed_by(frozenset(subtypes or ()))
        for group in response.groups:
            one = MatchRequest(**{**request.__dict__, "types": tuple(group.types), "each_type": False,
                                  "subtypes": None, "order": "nearest"})
            object.__setattr__(one, "limit", len(services))  # every one, past the API's cap on limit
            passing = [sid for sid, _ in brute_force(services, home, one)
                       if by_id[sid].service_type not in narrowed or by_id[sid].subtype in subtypes]
            assert group.total == len(passing), (request, group.types)
            full_groups += len(group.results) == request.limit
    assert full_groups > 50  # most groups were full, so their totals were counted, not read off their results


def test_without_a_radius_each_types_list_comes_from_two_passes(indexed, small_areas):
    """Every type its own list and no radius (the default request, or types named with `each_type`): each list
    equals brute force, nearest first or best fit first, in the home ICB only or not; and ranked nearest first,
    every type's nearest in the home ICB and overall (the summary's nearest, where the request keeps to its own
    ICB) come from two `nearest_of_types` passes, not from two `nearest` calls a type."""
    services, index = indexed
    rng = random.Random(59)
    nonempty = 0
    for _ in range(40):
        home = random_home(rng, small_areas)
        asked = random_request(rng)
        request = MatchRequest(**{**asked.__dict__, "max_distance_km": None, "each_type": True,
                                  "types": None if rng.random() < 0.6 else asked.types})
        counting = Counting(index, "nearest", "nearest_of_types")
        response = match(counting, home, request, TODAY)
        assert_brute_force(services, home, request, response.results)
        if request.order == "nearest" and len(response.groups) > 1:
            assert counting.calls["nearest"] == 0, request
            assert counting.calls["nearest_of_types"] == 2, request
        nonempty += len(response.results) >= 10
    assert nonempty > 20  # most answers held many results


def test_left_out_of_a_shared_list_equals_brute_force(backend, small_areas, request, answers):
    """Of two types named together, one the list shows none of: each of its services passing every filter
    within the radius is left out by the limit alone, as many as a brute-force count finds. The embedded
    index reading its own build counts some in the ranking's pass (`TypeGroup.totals_of_types`: each type its
    k nearest hold none of); the rest, and any other index's, are counted by `count_near`."""
    services, index = backend
    rng = random.Random(37)
    limited = from_pass = 0
    for _ in range(80):
        home = random_home(rng, small_areas)
        asked = MatchRequest(**{**random_request(rng).__dict__, "types": tuple(rng.sample(list(ServiceType), 2)),
                                  "each_type": False, "max_distance_km": rng.choice([25.0, 80.0]),
                                  "limit": rng.choice([1, 2, 5])})
        response = match(index, home, asked, TODAY)
        listed = {r.service.service_type for r in response.results}
        [group] = response.groups
        for service_type in asked.types or ():
            if service_type in listed:
                continue
            one = MatchRequest(**{**asked.__dict__, "types": (service_type,)})
            object.__setattr__(one, "limit", len(services))  # every one, past the API's cap on limit
            passing = len(answers(services, home, one))
            found = left_out(index, home, asked, response, service_type)
            if passing:
                assert found == LeftOut(passing, {LIMIT: passing}), (asked, service_type)
                limited += 1
            else:
                assert found is None or LIMIT not in found.by, (asked, service_type)
            from_pass += bool(passing) and service_type in (group.totals_of_types or ())
    assert limited >= 10  # types the limit left out, each counted
    if request.node.callspec.params["backend"] == "embedded":
        assert from_pass >= 5  # counted in the ranking's pass (with a small limit the k nearest often hold it)


def test_best_fit_puts_confirmed_needs_and_referrals_first(indexed, small_areas):
    _, index = indexed
    leeds = next(a for a in small_areas if a.lad_name == "Leeds")
    home = Home(leeds.lat, leeds.lon, AreaCodes(icb_code=leeds.icb, icb_name=leeds.icb_name, lad_code=leeds.lad))
    request = MatchRequest(needs=("autism",), types=(ServiceType.supported_accommodation,), limit=20,
                           order="best_fit")
    fits = [r.fit.key() for r in match(index, home, request, TODAY).results]
    assert fits == sorted(fits) and fits[0] < fits[-1]
    assert fits[0][0] == -1  # the first confirms the need


def test_results_explain_needs_and_icb(indexed, small_areas):
    _, index = indexed
    leeds = next(a for a in small_areas if a.lad_name == "Leeds")
    home = Home(leeds.lat, leeds.lon, AreaCodes(icb_code=leeds.icb, icb_name=leeds.icb_name, lad_code=leeds.lad))
    request = MatchRequest(needs=("autism", "detained_mha"), types=(ServiceType.inpatient_rehab_level2,), limit=5)
    results = match(index, home, request, TODAY).results
    assert results
    for r in results:
        assert "autism" not in r.service.needs_not_met and "detained_mha" not in r.service.needs_not_met
        assert set(r.matched_needs) | set(r.unknown_needs) == {"autism", "detained_mha"}
        assert set(r.matched_needs) <= set(r.service.needs_met)
        assert r.in_home_icb == (r.service.areas.icb_code == leeds.icb)
        assert f"{miles_and_km(r.distance_km)} from home" in r.explanation
        for need in r.unknown_needs:
            assert "Not known" in r.explanation


def test_each_result_words_the_needs_it_meets(indexed, small_areas):
    """The needs' wording is written once per set of needs met within a match and shared by the results
    meeting the same ones: each result still reads exactly its own (labels, in the order asked)."""
    _, index = indexed
    leeds = next(a for a in small_areas if a.lad_name == "Leeds")
    home = Home(leeds.lat, leeds.lon, AreaCodes(icb_code=leeds.icb, icb_name=leeds.icb_name, lad_code=leeds.lad))
    request = MatchRequest(needs=("detained_mha", "autism"), limit=25)
    results = match(index, home, request, TODAY).results
    assert len({tuple(r.matched_needs) for r in results}) >= 3  # results meet different sets of the needs
    labels = {"detained_mha": "Detained under the Mental Health Act", "autism": "Autism"}
    for r in results:
        meets = f" Meets: {', '.join(labels[n] for n in r.matched_needs)}." if r.matched_needs else ""
        unknown = (f" Not known: {', '.join(labels[n] for n in r.unknown_needs)} (ask the service)."
                   if r.unknown_needs else "")
        assert r.matched_needs + r.unknown_needs == sorted(request.needs, key=lambda n: n not in r.matched_needs)
        assert meets + unknown in r.explanation
        assert r.explanation.count("Meets:") == bool(meets) and r.explanation.count("Not known:") == bool(unknown)


def test_coverage_excludes_or_marks(indexed, small_areas):
    services, index = indexed
    rng = random.Random(3)
    home = random_home(rng, small_areas)
    base = MatchRequest(types=(ServiceType.vcfse, ServiceType.advocacy), limit=100, max_distance_km=100)
    excluded = match(index, home, base, TODAY).results
    assert all(not r.out_of_catchment for r in excluded)
    marked = match(index, home, MatchRequest(**{**base.__dict__, "include_out_of_catchment": True}), TODAY).results
    outside = [r for r in marked if r.out_of_catchment]
    assert outside, "expected some nearby services whose catchment excludes this home"
    assert all("Out of catchment" in r.explanation for r in outside)
    assert not {r.service.id for r in outside} & {r.service.id for r in excluded}


def test_stale_capacity_reads_unknown(indexed):
    services, index = indexed
    stale = next(s for s in services if s.capacity and (TODAY - s.capacity_as_of).days > 14)
    fresh = next(s for s in services if s.capacity and (TODAY - s.capacity_as_of).days <= 14)
    assert stale.capacity_now(TODAY) is None
    assert fresh.capacity_now(TODAY) == fresh.capacity


def test_the_index_keeps_nothing_about_a_home_after_the_match(corpus, embedded_index):
    """A match may remember which catchment polygons hold the home while it asks its several questions, but
    not after it returns: a home's point is where a person lives (privacy rules, ADR 0007). Before, the
    columns kept the last 64 homes' points and their polygon tests across requests."""
    inside = next(s for s in corpus if s.service_area.polygon and s.status == "active")
    home = Home(inside.lat, inside.lon, inside.areas)
    response = match(embedded_index, home, MatchRequest(max_distance_km=50), TODAY)
    assert inside.id in {r.service.id for r in response.results}  # its polygon was tested: it holds the home
    assert len(embedded_index._current().columns._homes) == 0


def test_catchment_polygons_of_every_size_are_found_by_the_bucket_lookup(corpus):
    """The home's polygons are looked up by buckets of their boxes (`search.polygons.PolygonLookup`); a
    polygon too wide to list per bucket is in every bucket's candidates. Checked against the columns' own
    R-tree (`covered`) and shapely at homes inside, on the edge of and outside a narrow and a wide polygon."""
    def square(lon0: float, lat0: float, lon1: float, lat1: float) -> dict:
        return {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1],
                                                    [lon0, lat0]]]}
    narrow = square(-1.25, 52.55, -1.05, 52.75)
    wide = square(-40.0, 30.0, 20.0, 70.0)  # 600 x 400 buckets: past `search.polygons.MAX_BUCKETS`
    base = [s for s in corpus if s.status == "active"][:40]
    services = [s.model_copy(update={"service_area": s.service_area.model_copy(
        update={"codes": [], "polygon": (narrow, wide, None)[i % 3]})}) for i, s in enumerate(base)]
    columns = ServiceColumns.from_services(services)
    assert len(columns._polygon_lookup._wide[1]) == sum(s.service_area.polygon == wide for s in services) > 0
    homes = [(52.6, -1.1), (52.55, -1.25), (52.75, -1.05), (52.9, -1.1), (31.0, -39.0), (10.0, 0.0)]
    for lat, lon in homes:
        query = ServiceQuery(covers=Coverage(frozenset(), lat, lon))
        expected = [shape(s.service_area.polygon).intersects(Point(lon, lat)) if s.service_area.polygon
                    else True for s in services]
        assert columns.mask(query).tolist() == expected == columns.covered(query.covers).tolist(), (lat, lon)
