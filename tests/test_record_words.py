"""What a record alone says in a result (`RecordWords`), made once per record object and kept (`RECORD_WORDS`):
an edited record (a new object) is worded afresh in the very next result, the kept words are bounded, and they
hold nothing of a search."""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

from geodata.areas import AreaCodes
from rehabmap.explanation import RECORD_WORDS, measured_from, record_words
from rehabmap.index.base import Hit
from rehabmap.match import MatchRequest, ResultMaker
from rehabmap.per_record import PerRecord
from rehabmap.record import Service, capacity_current_since

TODAY = date(2026, 11, 23)
HOME_ICB = AreaCodes(icb_code="E54000054", icb_name="NHS West Yorkshire Integrated Care Board")
OTHER_ICB = {"icb_code": "E54000061", "icb_name": "NHS South Yorkshire Integrated Care Board"}


class _Home(NamedTuple):
    """A home as matching reads it (`HomeLike`)."""

    lat: float
    lon: float
    areas: AreaCodes
    precision: str = "postcode"
    district: str | None = None
    place: str | None = None


def _service(**fields: object) -> Service:
    return Service.model_validate({
        "id": "test:one", "name": "One unit", "service_type": "inpatient_rehab_level1", "lat": 53.8, "lon": -1.5,
        "provenance": [{"source": "test", "source_id": "1", "fetched_at": "2026-11-01T00:00:00Z"}], **fields})


def _explanation(service: Service, needs: tuple[str, ...] = ("autism",), window: int = 14) -> str:
    request = MatchRequest(needs=needs)
    maker = ResultMaker(_Home(53.79, -1.54, HOME_ICB), request, TODAY, window)
    return maker.result(Hit(service, 3.2), None).explanation


def test_an_edited_record_is_worded_afresh_in_the_very_next_result():
    """The index hands out a new record object after an edit: each field the words come from, changed on such a
    copy, shows in the next result, and the record as it was keeps its own words."""
    given = {"gender": "female_only", "needs_met": ["autism"], "capacity": "limited", "capacity_as_of": TODAY,
             "areas": {"icb_code": HOME_ICB.icb_code, "icb_name": HOME_ICB.icb_name}}
    service = _service(**given)
    before = _explanation(service)
    assert "Women only." in before and "Meets: Autism." in before and "inside the person's ICB" in before
    assert "Capacity limited as of 2026-11-23." in before
    edits = {
        "gender": ("male_only", "Men only."),
        "pd_specialist": (True, "Commissioned for people with a diagnosis of personality disorder."),
        "legacy_locked_label": (True, "Uses the legacy 'locked rehabilitation' label."),
        "original_label": ("Slow stream unit", "(listed as 'Slow stream unit')."),
        "needs_met": ([], "Not known: Autism (ask the service)."),
        "areas": (OTHER_ICB, "outside the person's ICB, in NHS South Yorkshire Integrated Care Board."),
        "capacity": ("available", "Capacity available as of 2026-11-23."),
        "capacity_as_of": (TODAY - timedelta(days=30), "Capacity unknown: the last report is more than 14 days old."),
    }
    for field, (value, words) in edits.items():
        edited = _service(**{**given, field: value})
        assert words not in before
        assert words in _explanation(edited), field
        assert _explanation(service) == before  # the record as it was: its own words, kept
    assert RECORD_WORDS.of(service) is RECORD_WORDS.of(service)  # kept for the very object


def test_a_service_with_no_capacity_report_says_its_capacity_is_unknown():
    """Before, a service that never reported its capacity said nothing of it in its explanation, while the results
    table (`rehabmap match`, the pages) said "unknown": now it says so, as a stale report's explanation does."""
    never = _explanation(_service())
    assert never.endswith(" Capacity unknown: no report.") and never.count("Capacity") == 1
    stale = _explanation(_service(capacity="limited", capacity_as_of=TODAY - timedelta(days=30)))
    assert "no report" not in stale and stale.endswith(" Capacity unknown: the last report is more than 14 days old.")
    assert "Capacity unknown" not in _explanation(_service(capacity="limited", capacity_as_of=TODAY))


def test_a_results_capacity_is_the_records_capacity_since():
    """`ResultMaker.result` reads the capacity from the kept words by `Service.capacity_since`'s rule, on every
    day around the window's edge."""
    base = _service(capacity="limited", capacity_as_of=TODAY)
    for window in (1, 14):
        since = capacity_current_since(TODAY, window)
        maker = ResultMaker(_Home(53.79, -1.54, HOME_ICB), MatchRequest(), TODAY, window)
        for service in (base.model_copy(update={"capacity_as_of": None, "capacity": None}),
                        base.model_copy(update={"capacity_as_of": None}),
                        *(base.model_copy(update={"capacity_as_of": TODAY - timedelta(days=age)})
                          for age in range(window - 2, window + 3))):
            assert maker.result(Hit(service, 1.0), None).capacity == service.capacity_since(since)


def test_the_words_kept_are_bounded_and_hold_nothing_of_a_search():
    words = PerRecord(record_words, size=3)
    services = [_service(id=f"test:{n}", name=f"Unit {n}") for n in range(10)]
    for service in services:
        words.of(service)
        assert len(words.held) <= 3
    assert set(words.held) == {id(s) for s in services[-3:]}  # the longest held dropped first
    eighths = PerRecord(record_words, size=16)
    for n in range(20):
        eighths.of(_service(id=f"test:e{n}", name=f"Unit {n}"))
    # Full at the 17th and the 19th: each time the oldest two (an eighth) dropped together.
    assert [record.id for record, _ in eighths.held.values()] == [f"test:e{n}" for n in range(4, 20)]
    _explanation(services[-1], needs=("autism", "older_adult"))  # a search: its needs, home and distance
    for record, said in RECORD_WORDS.held.values():
        assert said == record_words(record)  # the record's data alone
        assert not any(isinstance(value, str) and ("3.2" in value or "inside" in value) for value in said)


def test_the_words_and_json_are_kept_for_every_record_the_index_keeps():
    """A smaller bound than the index's record cache remade the words and JSON of records the cache still held:
    a request naming no type touches ~5,700 records of a 10k directory in the bench's 200 homes."""
    from api.schemas import _RESULTS
    from search.embedded import RECORD_CACHE_SIZE

    assert RECORD_WORDS.size >= RECORD_CACHE_SIZE and _RESULTS.size >= RECORD_CACHE_SIZE


def test_where_distances_run_from_names_the_middle_or_says_which_kind_and_never_none():
    """A home found at a middle (a sector, a district, a place) names it; given unnamed (a reply names no sector),
    it says which kind of middle. Before, a place or district given no name read "the middle of None"."""
    assert measured_from("district", "TR21") == "the middle of TR21"
    assert measured_from("place", None, "Mansfield, Nottinghamshire") == "the middle of Mansfield, Nottinghamshire"
    assert measured_from("sector", "NG18") == "the middle of the postcode sector searched"  # a reply's: no sector
    assert measured_from("sector", "NG18", "NG18 2") == "the middle of NG18 2"
    assert [measured_from(p, None) for p in ("sector", "district", "place")] == [
        "the middle of the postcode sector searched", "the middle of the postcode district searched",
        "the middle of the place searched"]
    assert measured_from("postcode", "LS9") is None and measured_from("point", None) is None
