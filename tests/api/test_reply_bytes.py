"""POST /match's reply, spliced from each record's JSON made once (`api.record_json`), is byte for byte what
the response models themselves serialise: for every record of the test index and of the benchmarks' 10k
corpus, odd text and missing fields, many per-request values, and real answers for many homes and requests."""

from __future__ import annotations

import itertools
import random
from datetime import date, timedelta

import pytest

from api.record_json import cut
from api.schemas import (CapacityOut, CoverageOut, CoveragePartOut, CqcOut, HomeOut, LeftOutOut,
                         MatchOut, MatchResultOut, ScheduleOut, TypeSummaryOut, _found, record_json)
from bench.common import SEED
from bench.synthetic import REALISTIC_MIX, load_small_areas, make_services
from geodata.geography import Home
from rehabmap.coverage import Coverage, Parts
from rehabmap.explanation import dated_listing, gender_said_by, measured_from
from rehabmap.index.base import ServiceQuery
from rehabmap.index.names import OVERLAY_SOURCE
from rehabmap.maintain.freshness import verification_due
from rehabmap.match import RANKING_RULE, MatchRequest, MatchResponse, MatchResult, TypeSummary, left_out, match
from rehabmap.per_record import PerRecord
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType
from tests.api.conftest import TODAY

ODD_TEXT = ("Ysbyty’r Waun — “quoted” \\ back\\slash, tab\t, newline\n, \x01\x1f\x7f, é ü ß, 中文, 😀, "
            "\u2028\u2029 </script>")
FLOATS = (0.0, -0.0, 0.001, 0.1, 1.0, 12.345, 99.999, 999.999, 1e-5, 2.5e-7, 123456.789, 1e16, 1e22, -3.25)


def model_reply(home: Home, response: MatchResponse, coverage: dict[ServiceType, Coverage], today: date,
                verify_after_days: int, left_out: dict[ServiceType, dict] | None = None,
                parts: dict[ServiceType, Parts] | None = None) -> bytes:
    """The reply as the response models serialise it: every field set by name, validated, dumped."""
    def result(r: MatchResult) -> MatchResultOut:
        s = r.service
        by_team, basis, from_source = gender_said_by(s)
        return MatchResultOut(
            id=s.id, name=s.name, service_type=s.service_type.value, subtype=s.subtype,
            original_label=s.original_label, legacy_locked_label=s.legacy_locked_label, organisation=s.organisation,
            distance_km=r.distance_km, in_home_icb=r.in_home_icb, icb_code=s.areas.icb_code,
            icb_name=s.areas.icb_name, matched_needs=r.matched_needs, unknown_needs=r.unknown_needs,
            needs_read_from_text=list(r.needs_read_from_text), needs_read_not_met=list(r.needs_read_not_met),
            gender=s.gender, gender_read_from_text=s.gender_read_from_text,
            gender_stated_by_maintainers=by_team, gender_basis=basis, gender_from_source=from_source,
            out_of_catchment=r.out_of_catchment,
            explanation=r.explanation,
            capacity=CapacityOut(status=r.capacity or "unknown", as_of=s.capacity_as_of, reported=s.capacity),
            accepting_referrals=s.accepting_referrals, self_referral=s.self_referral,
            referral_route=s.referral_route, schedules=ScheduleOut.all_of(s),
            cqc=CqcOut(location_id=s.cqc_location_id, rating=s.cqc_rating, rating_date=s.cqc_rating_date),
            phone=s.phone, email=s.email, website=s.website, postcode=s.postcode,
            distance_saved_km=r.distance_saved_km, dated_listing=r.dated_listing, last_verified=s.last_verified,
            verification_due=verification_due(s, today, verify_after_days))

    listed = {r.service.service_type for r in response.results}
    areas = home.areas
    return MatchOut(
        home=HomeOut(district=home.district, icb_code=areas.icb_code, icb_name=areas.icb_name,
                     lad_code=areas.lad_code, lad_name=areas.lad_name, precision=home.precision,
                     place=home.place, distances_from=measured_from(home.precision, home.district, home.place)),
        ranking=RANKING_RULE, results=[result(r) for r in response.results],
        summary=[TypeSummaryOut(service_type=t.service_type.value, in_home_icb=t.in_home_icb,
                                nearest=None if t.nearest is None else result(t.nearest),
                                found=_found(t.service_type in listed, coverage[t.service_type]),
                                coverage=CoverageOut.of(coverage[t.service_type], t.service_type in listed),
                                left_out=(left_out or {}).get(t.service_type),
                                parts=[CoveragePartOut(category=category, status=answer.part_status,
                                                       pending_review=answer.pending_review)
                                       for category, answer in (parts or {}).get(t.service_type, ())])
                         for t in response.summary],
        current_placement_km=None if response.current_placement_km is None
        else round(response.current_placement_km, 3)).model_dump_json().encode()


def coverage_of(types: list[ServiceType], rng: random.Random) -> dict[ServiceType, Coverage]:
    return {t: rng.choice([Coverage(t.value, "covered", 1.0, "2026-10-01", ("sync:cqc",)),
                           Coverage(t.value, "partly_covered", 0.41234567, "2026-09-30", ("curated:x.csv",), 2),
                           Coverage(t.value, "not_covered", 0.0, None)]) for t in types}


def parts_of(coverage: dict[ServiceType, Coverage], rng: random.Random) -> dict[ServiceType, Parts]:
    """Per type, its own answer as its one part, or its kinds' answers (held, awaiting review, not held)."""
    def kinds(t: ServiceType) -> Parts:
        return ((f"{t.value}:a", Coverage(f"{t.value}:a", "covered", 1.0, "2026-10-01")),
                (f"{t.value}:b", Coverage(f"{t.value}:b", "not_covered", 0.0, None, (), 3)),
                (f"{t.value}:c", Coverage(f"{t.value}:c", "not_covered", 0.0, None)))

    return {t: rng.choice([((t.value, answer),), kinds(t)]) for t, answer in coverage.items()}


def odd(service: Service, rng: random.Random) -> Service:
    """The record with odd text in its free-text fields and its optional fields missing, by turns."""
    return service.model_copy(update=rng.choice([
        {"name": ODD_TEXT, "organisation": ODD_TEXT, "referral_route": ODD_TEXT, "phone": "0113 496 0000 “x”",
         "gender": None, "gender_read_from_text": {"female_only": ODD_TEXT}},
        {"organisation": None, "subtype": None, "original_label": None, "phone": None, "email": None,
         "website": None, "postcode": None, "cqc_location_id": None, "cqc_rating": None, "cqc_rating_date": None,
         "capacity": None, "capacity_as_of": None, "last_verified": None, "accepting_referrals": None,
         "self_referral": None, "schedules": []},
        {"last_verified": TODAY - timedelta(days=180), "capacity_as_of": TODAY, "capacity": "limited"},
        # a gender a maintainer stated over its source's (`gender_stated_by_maintainers` true, `gender_basis`
        # changed_by_maintainers, `gender_from_source` the source's)
        {"gender": "male_only", "source_gender": "mixed_gender", "field_sources": {"gender": OVERLAY_SOURCE}},
        # one a maintainer removed (`gender_basis` removed_by_maintainers, `gender_from_source` the source's)
        {"gender": None, "source_gender": "female_only", "field_sources": {"gender": OVERLAY_SOURCE}}]))


def made_up_results(services: list[Service], rng: random.Random) -> list[MatchResult]:
    """Each service as a result with per-request values drawn from the odd and the usual."""
    return [MatchResult(
        service=s, distance_km=rng.choice(FLOATS), in_home_icb=rng.random() < 0.5,
        matched_needs=rng.sample(["autism", "detained_mha", "language:ur", "restricted_s37_41"], rng.randint(0, 3)),
        unknown_needs=rng.sample(["older_adult", "language:pl"], rng.randint(0, 2)),
        needs_read_from_text=tuple(rng.sample(["older_adult", "autism"], rng.randint(0, 2))),
        needs_read_not_met=tuple(rng.sample(["language:pl"], rng.randint(0, 1))),
        out_of_catchment=rng.random() < 0.2, capacity=rng.choice([None, "available", "limited", "none"]),
        explanation=rng.choice(["", "2.1 miles (3.4 km) from home, inside the person's ICB.", ODD_TEXT]),
        distance_saved_km=rng.choice((None, *FLOATS)),
        dated_listing=rng.choice((None, dated_listing(s), ODD_TEXT))) for s in services]


def check_replies(services: list[Service], home: Home, seed: int) -> None:
    """The services in replies of 1-12 results (each twice, so also from the pieces kept), against the models."""
    rng = random.Random(seed)
    for start in range(0, len(services), 7):
        chunk = services[start:start + rng.randint(1, 12)]
        for today, days in ((TODAY, 180), (TODAY + timedelta(days=400), 30)):
            results = made_up_results(chunk, rng)
            types = sorted({r.service.service_type for r in results}, key=list(ServiceType).index)
            summary = [TypeSummary(t, rng.randint(0, 9), rng.choice([None, next(r for r in results if
                                                                       r.service.service_type == t)]))
                       for t in types]
            summary.append(TypeSummary(ServiceType.advocacy, 0, rng.choice([None, *made_up_results(chunk[:1], rng)])))
            coverage = coverage_of(list(ServiceType), rng)
            response = MatchResponse(results=results, summary=summary,
                                     current_placement_km=rng.choice((None, *FLOATS)))
            parts = parts_of(coverage, rng)
            assert MatchOut.json_of(home, response, RANKING_RULE, coverage, today, days, None, parts) == \
                model_reply(home, response, coverage, today, days, None, parts)


@pytest.fixture(scope="module")
def leeds(geography) -> Home:
    return geography.resolve(postcode="LS9 7TF")


def test_every_record_of_the_test_index_as_the_models_serialise_it(backend, leeds):
    services = list(backend.scan(ServiceQuery(include_inactive=True)))
    assert len(services) > 800 and {s.service_type for s in services} == set(ServiceType)
    assert any(s.schedules for s in services) and any(not s.schedules for s in services)
    check_replies(services, leeds, seed=1)


def test_every_record_of_the_10k_corpus_as_the_models_serialise_it(data_dir, leeds):
    services = make_services(load_small_areas(data_dir), 10_000, seed=SEED, today=TODAY, mix=REALISTIC_MIX)
    assert any(s.service_area.polygon for s in services) and len({s.service_type for s in services}) == 7
    check_replies(services, leeds, seed=2)


def test_odd_text_and_missing_fields_as_the_models_serialise_them(backend, leeds):
    rng = random.Random(3)
    services = [odd(s, rng) for s in backend.scan(ServiceQuery(include_inactive=True))]
    check_replies(services, leeds, seed=4)


HOMES = [{"postcode": "LS9 7TF"}, {"postcode": "LS9"}, {"postcode": "E3 2AN"}, {"postcode": "TR1 3BT"},
         {"place": "Bradford"}, {"lat": 53.4794, "lon": -2.2453}, {"lat": 50.2632, "lon": -5.051},
         {"lat": 52.2053, "lon": 0.1218}, {"lat": 54.9783, "lon": -1.6178}]
REQUESTS = [
    MatchRequest(), MatchRequest(limit=1), MatchRequest(limit=25, include_out_of_catchment=True),
    MatchRequest(needs=("autism", "restricted_s37_41"), types=(ServiceType.inpatient_rehab_level2,),
                 max_distance_km=300, current_placement=(50.2632, -5.051)),
    MatchRequest(needs=("detained_mha", "language:bn"), needs_confirmed=True, age=30, gender="female"),
    MatchRequest(types=(ServiceType.advocacy, ServiceType.community_rehab_team), subtypes=("imha",),
                 own_icb_only=True, accepting_only=True, limit=20),
]


@pytest.mark.parametrize("request_number", range(len(REQUESTS)))
def test_real_answers_as_the_models_serialise_them(geography, backend, request_number):
    rng = random.Random(request_number)
    request = REQUESTS[request_number]
    for where, (today, days) in itertools.product(HOMES, ((TODAY, 180), (TODAY, 1), (TODAY + timedelta(days=90), 30))):
        home = geography.resolve(**where)
        response = match(backend, home, request, today)
        coverage = coverage_of([t.service_type for t in response.summary], rng)
        # What the request's options left out of each type it lists none of, as POST /match adds it.
        listed = {r.service.service_type for r in response.results}
        left = {t: LeftOutOut.fields_of(found, request) for t in {s.service_type for s in response.summary} - listed
                if (found := left_out(backend, home, request, response, t))}
        parts = parts_of(coverage, rng)
        assert MatchOut.json_of(home, response, RANKING_RULE, coverage, today, days, left, parts) == \
            model_reply(home, response, coverage, today, days, left, parts)


def test_a_records_pieces_are_kept_for_it_and_made_again_for_an_edited_copy(backend):
    service = backend.get("sample:aire-valley-rehabilitation-unit")
    pieces = PerRecord(record_json, size=2)
    first = pieces.of(service)
    assert pieces.of(service) is first  # the same object: kept
    assert pieces.of(service.model_copy(deep=True)) is first  # an equal record (another read): kept
    edited = service.model_copy(update={"phone": "0113 496 0999"})
    assert b'"phone":"0113 496 0999"' in b"".join(pieces.of(edited)[0])
    assert b'"phone":"0113 496 0999"' not in b"".join(first[0])
    retired = service.model_copy(update={"status": "inactive"})  # no longer listed: never due
    assert pieces.of(retired)[1] == date.max and first[1] == service.last_verified
    assert b"".join(pieces.of(service)[0]) == b"".join(first[0])  # and back, when the record is as it was


def test_the_pieces_kept_are_bounded(backend):
    services = list(itertools.islice(backend.scan(ServiceQuery()), 10))
    pieces = PerRecord(record_json, size=3)
    for s in services:
        pieces.of(s)
        assert len(pieces.held) <= 3
    assert set(pieces.held) == {id(s) for s in services[-3:]}  # the longest held dropped first


def test_a_cut_refuses_a_hole_that_is_not_one_null_key():
    assert cut({"a": 1, "b": None, "c": {"d": None}}, ("b", "d")) == (b'{"a":1,"b":', b',"c":{"d":', b"}}")
    with pytest.raises(ValueError, match="'b'"):
        cut({"a": 1, "b": 2}, ("b",))
    with pytest.raises(ValueError, match="'b'"):
        cut({"b": None, "c": {"b": None}}, ("b",))
    with pytest.raises(ValueError, match="'a'"):
        cut({"a": None, "b": None}, ("b", "a"))  # out of order
