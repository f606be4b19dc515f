"""The CQC connector against the replay of the CQC API, serving the 103 real recorded locations
(../shared/data/feeds/cqc_api/locations_detail_2021.json): a full crawl, a changes window that deregisters and
alters records, a crawl killed by a dropped connection that resumes, and what each of the 103 becomes."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
from pydantic import SecretStr

from indexer.rows import Candidate, Rejection
from indexer.sources.cqc import RIGHTS_RESTRICTED_MEANS, read_api
from indexer.sync.connectors.cqc import KEY_HEADER, SERVICE_TYPES, CqcConnector, map_location, reading_of
from indexer.sync.http import (
    HttpPolicy,
    SourceClient,
    SourceContradiction,
    SourceError,
    SourceKeyRefused,
    SourceUnavailable,
)
from indexer.sync.items import Gone, Refused, SourceItem
from rehabmap.taxonomy import ServiceType
from tests.cqc_records import DOVETAIL, FIELD_HOUSE, GROVELANDS
from tests.sync.replay import MemoryState, Replay


def connector(replay: Replay, *, key: str = "replay-cqc-key", page_size: int = 10, retries: int = 1,
              **kwargs) -> CqcConnector:
    http = SourceClient("CQC API", replay.cqc_url, key=SecretStr(key), key_header=KEY_HEADER,
                        key_setting="REHABMAP_CQC_API_KEY",
                        policy=HttpPolicy(rate=1000, retries=retries, backoff_base=0.01, backoff_max=0.02))
    return CqcConnector(http, page_size=page_size, **kwargs)


def outcome_table(outcomes) -> Counter:
    """Outcomes by kind and reason, the way a person would count them."""
    table: Counter = Counter()
    for o in outcomes:
        if isinstance(o, SourceItem):
            table[f"{o.type_status} {o.candidate.fields['service_type'].value}"] += 1
        elif isinstance(o, Gone):
            table["gone: deregistered by CQC"] += 1
        else:
            table["refused: " + o.reason] += 1
    return table


def test_each_of_the_103_real_records_through_a_changes_window(replay, feeds_dir):
    """Every recorded location changes in one window: the connector fetches all 103 over HTTP and says, for
    each, what it is. The counts are checked, and every reason is printed (pytest -s)."""
    state = MemoryState()
    cqc = connector(replay)
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    state.save("cqc", {"cursor": start.isoformat(), "reading": reading_of()})
    for location_id in list(replay.cqc.records):
        replay.cqc.alter(location_id, at=start)
    outcomes = list(cqc.fetch(state))
    assert len(outcomes) == 103 and not cqc.complete
    for o in outcomes:
        print(o.source_id if not isinstance(o, SourceItem) else o.key[1], o.reason if not isinstance(o, SourceItem)
              else f"{o.type_status} {o.candidate.fields['service_type'].value}: {[e.means for e in o.evidence]}")
    not_pathway = "refused: not a rehab pathway service: "
    assert outcome_table(outcomes) == {
        "gone: deregistered by CQC": 44,
        "confirmed supported_accommodation": 6,
        "inferred inpatient_rehab_level1": 1,
        not_pathway + "'Residential homes | Care home service without nursing' with no mental health specialism": 26,
        not_pathway + "'Nursing homes | Care home service with nursing' with no mental health specialism": 9,
        not_pathway + "'Residential homes | Care home service without nursing | Community services - Learning "
                      "disabilities | Community based services for people with a learning disability | Supported "
                      "living | Supported living service' with no mental health specialism": 1,
        not_pathway + "'Supported living | Supported living service' with no mental health specialism": 1,
        not_pathway + "'Homecare agencies | Domiciliary care service | Supported living | Supported living service' "
                      "with no mental health specialism": 1,
        not_pathway + "'Nursing homes | Care home service with nursing | Supported housing | Extra Care housing "
                      "services' with no mental health specialism": 1,
        not_pathway + "'Residential homes | Care home service without nursing' for adults over 65 only": 1,
        not_pathway + "'Nursing homes | Care home service with nursing | Residential homes | Care home service without "
                      "nursing' for adults over 65 only": 1,
        not_pathway + "CQC service types 'Homecare agencies | Domiciliary care service'": 4,
        not_pathway + "CQC service types 'Dentist | Dental service'": 4,
        not_pathway + "CQC service types 'Doctors/Gps | Doctors consultation service'": 2,
        not_pathway + "CQC service types 'Rehabilitation (substance abuse) | Residential substance misuse treatment "
                      "and/or rehabilitation service'": 1,
    }
    gone = [o for o in outcomes if isinstance(o, Gone)]
    assert all(o.on is not None and o.reason == f"deregistered by the Care Quality Commission (CQC) on {o.on.day} "
               f"{o.on:%B %Y}" and o.detail == f"deregistered by CQC on {o.on} (registrationStatus 'Deregistered')"
               for o in gone)
    mosaic = next(o for o in gone if o.source_id == "1-112787350")
    assert mosaic.on == date(2018, 2, 21)


def test_a_deregistration_staged_before_session_51_reads_in_todays_words(feeds_dir):
    """Each of the 44 real deregistered records as a release before session 51 staged it: its reason the operator's
    words ("deregistered by CQC on 2018-02-21 (registrationStatus 'Deregistered')"), no `detail`. Read back, each is
    the deregistration today's connector gives (before, the old words stayed the public's). One whose words do not
    say what its staged date and status would (a date that is not the staged one, words of another kind) is read as
    staged: what it would say today cannot be told."""
    from indexer.sync.codec import outcome_from_json, outcome_to_json

    now = datetime.now(timezone.utc)
    records = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    gone = [o for o in (map_location(r, "u", now) for r in records) if isinstance(o, Gone)]
    assert len(gone) == 44
    for today in gone:
        _, staged = outcome_to_json(today)
        old = {**{k: v for k, v in staged.items() if k != "detail"}, "reason": today.detail}
        assert outcome_from_json("gone", old) == today
    undated = map_location({**records[0], "registrationStatus": "Removed", "deregistrationDate": None}, "u", now)
    assert undated == Gone("cqc", records[0]["locationId"], "deregistered by the Care Quality Commission (CQC)", None,
                           "deregistered by CQC (no date given) (registrationStatus 'Removed')")
    assert outcome_from_json("gone", {"source": "cqc", "source_id": undated.source_id, "reason": undated.detail,
                                      "on": None}) == undated
    for reason, on in (("deregistered by CQC on 2021-03-02 (registrationStatus 'Deregistered')", "2021-03-01"),
                       ("closed by its provider", "2021-03-01")):
        assert outcome_from_json("gone", {"source": "cqc", "source_id": GROVELANDS, "reason": reason, "on": on}) == \
            Gone("cqc", GROVELANDS, reason, date(2021, 3, 1))


def test_the_mental_health_hospital_is_an_inpatient_candidate_with_its_evidence(feeds_dir):
    records = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    field_house = next(r for r in records if r["locationId"] == FIELD_HOUSE)
    item = map_location(field_house, "http://replay/locations/" + FIELD_HOUSE, datetime.now(timezone.utc))
    assert isinstance(item, SourceItem)
    # CQC inspects a long stay / rehabilitation ward there: a rehab unit; nothing states its level.
    assert item.type_status == "inferred"
    assert item.candidate.fields["service_type"] is ServiceType.inpatient_rehab_level1
    assert [(e.field, e.means) for e in item.evidence] == [
        ("gacServiceTypes", "a mental health hospital: a candidate inpatient rehabilitation unit"),
        ("inspectionAreas", "CQC inspects a rehabilitation ward here"),
        ("name", "nothing says which level: level 1 proposed"),
        ("specialisms", "states the need older_adult"),
        # RA6: detained under the Mental Health Act 1983, a regulated activity (before, said to be a specialism)
        ("regulatedActivities", "states the need detained_mha"),
    ]
    fields = item.candidate.fields
    assert (fields["beds"], fields["cqc_rating"]) == (8, "Inadequate")
    assert (fields["lat"], fields["lon"]) == (53.098841, -1.390792)
    assert fields["cqc_rating_date"] == date(2020, 10, 21) and "detained_mha" in fields["needs_met"]
    assert item.field_sources["beds"] == "cqc:numberOfBeds" and item.field_sources["lat"] == "cqc:onspdLatitude"
    assert item.field_sources["needs_met"] == "cqc:specialisms+regulatedActivities"   # detained_mha: RA6
    assert item.field_sources["service_type"] == "cqc:gacServiceTypes+inspectionAreas+name"
    assert item.keys == {"cqc_location_id": FIELD_HOUSE, "cqc_provider_id": "1-101634705"}
    assert item.candidate.origin.licence == "OGL-UK-3.0" and item.raw == field_house


@pytest.mark.parametrize("name, expected, status", [
    ("Kirkstall Locked Rehabilitation Ward", ServiceType.inpatient_rehab_level2, "confirmed"),
    ("Oak House High Dependency Unit", ServiceType.inpatient_rehab_level2, "confirmed"),
    ("Seacroft Community Rehabilitation Unit", ServiceType.inpatient_rehab_level1, "confirmed"),
    ("Harbour Rehabilitation Unit", ServiceType.inpatient_rehab_level1, "inferred"),   # says rehab, not the level
])
def test_a_hospital_level_is_confirmed_only_when_stated(feeds_dir, name, expected, status):
    """One rule, both paths: `rehabmap index` (`read_api`, no review queue) indexes what the sync confirms and
    rejects what the sync holds for review."""
    records = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    renamed = {**next(r for r in records if r["locationId"] == FIELD_HOUSE), "name": name}
    item = map_location(renamed, "u", datetime.now(timezone.utc))
    assert isinstance(item, SourceItem)
    assert (item.candidate.fields["service_type"], item.type_status) == (expected, status)
    [indexed] = read_api(renamed, "locations.json")
    if status == "confirmed":
        # the same fields, and the field sources the sync keeps beside them (by which needs are said as registered)
        assert isinstance(indexed, Candidate)
        assert indexed.fields == {**item.candidate.fields, "field_sources": item.field_sources}
    else:
        assert isinstance(indexed, Rejection) and indexed.reason.startswith(f"unconfirmed: '{name}' is a mental "
                                                                            "health hospital whose name says rehab")


def test_the_index_and_the_sync_read_the_real_locations_alike(feeds_dir):
    """All 103 recorded locations: `rehabmap index` indexes exactly the ones the sync confirms, with the same
    fields and field sources, and rejects the rest (Field House, held by the sync, among them)."""
    records = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    now = datetime.now(timezone.utc)
    synced = {r["locationId"]: map_location(r, "u", now) for r in records}
    confirmed = {i: {**o.candidate.fields, "field_sources": o.field_sources} for i, o in synced.items()
                 if isinstance(o, SourceItem) and o.type_status == "confirmed"}
    indexed = {r.origin.source_id: r.fields for r in read_api(records, "locations.json") if isinstance(r, Candidate)}
    assert indexed == confirmed and len(indexed) == 6 and FIELD_HOUSE not in indexed
    assert isinstance(synced[FIELD_HOUSE], SourceItem) and synced[FIELD_HOUSE].type_status == "inferred"


def test_a_secure_hospital_is_refused_with_the_reason(feeds_dir):
    records = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    renamed = {**next(r for r in records if r["locationId"] == FIELD_HOUSE), "name": "Kestrel Medium Secure Unit"}
    refused = map_location(renamed, "u", datetime.now(timezone.utc))
    assert isinstance(refused, Refused)
    assert refused.reason == ("not a rehab pathway service: 'Kestrel Medium Secure Unit' is an adult secure service, "
                              "which is not rehabilitation")


def test_full_crawl_lists_the_pathway_service_types_page_by_page(replay):
    state = MemoryState()
    cqc = connector(replay, page_size=10)
    outcomes = list(cqc.fetch(state))
    assert cqc.complete
    listed = [s for s in replay.seen("/cqc/locations") if s.path == "/cqc/locations"]
    assert {s.query["gacServiceTypeDescription"][0] for s in listed} == {
        "Care home service without nursing", "Care home service with nursing", "Supported living service",
        "Extra Care housing services", "Community based services for people with mental health needs",
        "Hospital services for people with mental health needs, learning disabilities and problems with substance "
        "misuse"}
    details = [s for s in replay.seen("/cqc/locations/")]
    assert len(details) == len(outcomes) == len({o.key if isinstance(o, SourceItem) else o.source_id for o in outcomes})
    # Care homes, supported living, extra care and the hospital: every recorded location of those types, once each.
    expected = {i for i, r in replay.cqc.records.items() if any(
        t["description"] in {"Care home service without nursing", "Care home service with nursing",
                             "Supported living service", "Extra Care housing services",
                             "Hospital services for people with mental health needs, learning disabilities and "
                             "problems with substance misuse"} for t in r["gacServiceTypes"])}
    assert {s.path.rsplit("/", 1)[1] for s in details} == expected and len(expected) == 78
    table = outcome_table(outcomes)
    assert (table["confirmed supported_accommodation"], table["inferred inpatient_rehab_level1"],
            table["gone: deregistered by CQC"]) == (6, 1, 30)
    saved = state.states["cqc"]
    started = datetime.fromisoformat(saved["crawl_started"])
    assert "crawl" not in saved and datetime.fromisoformat(saved["cursor"]) == started - timedelta(seconds=1)
    assert state.saves == len(listed) + 1          # after every page, and at the end
    assert all(s.had_key for s in replay.seen("/cqc/"))


def test_changes_window_retires_and_alters_between_two_runs(replay):
    state = MemoryState()
    cqc = connector(replay)
    list(cqc.fetch(state))
    cursor = state.states["cqc"]["cursor"]
    replay.cqc.deregister(GROVELANDS, on=date(2021, 3, 1))
    replay.cqc.alter(DOVETAIL, numberOfBeds=12)
    before = len(replay.seen("/cqc/"))
    outcomes = list(cqc.fetch(state))
    assert not cqc.complete
    changes = [s for s in replay.seen("/cqc/")[before:] if s.path == "/cqc/changes/location"]
    assert changes[0].query["startTimestamp"] == [datetime.fromisoformat(cursor).strftime("%Y-%m-%dT%H:%M:%SZ")]
    by_id = {o.source_id if isinstance(o, Gone) else o.key[1]: o for o in outcomes}
    assert set(by_id) == {GROVELANDS, DOVETAIL}
    assert by_id[GROVELANDS] == Gone("cqc", GROVELANDS, "deregistered by the Care Quality Commission (CQC) on 1 March "
                                     "2021", date(2021, 3, 1), "deregistered by CQC on 2021-03-01 (registrationStatus "
                                                               "'Deregistered')")
    assert by_id[DOVETAIL].candidate.fields["beds"] == 12
    # The next window starts where this one ended, so nothing is fetched twice or skipped.
    assert state.states["cqc"]["cursor"] > cursor
    assert list(cqc.fetch(state)) == []


def test_a_crawl_killed_by_a_dropped_connection_resumes_from_its_page(replay):
    state = MemoryState()
    replay.drop("/cqc/locations/", after=25, times=None)     # the source goes away after 25 details
    first = connector(replay)
    got = []
    with pytest.raises(SourceUnavailable, match="still failed after 2 tries \\(connection failed"):
        for outcome in first.fetch(state):
            got.append(outcome)
    saved = state.states["cqc"]["crawl"]
    # The hospital type (1 page) is done; care homes without nursing stopped in their third page of 10.
    assert not first.complete and len(got) == 25 and (saved["type"], saved["page"]) == (1, 3)
    replay.clear_faults()
    before = len(replay.seen("/cqc/"))
    second = connector(replay)
    rest = list(second.fetch(state))
    resumed = replay.seen("/cqc/")[before]
    assert resumed.path == "/cqc/locations" and resumed.query["page"] == ["3"]
    assert resumed.query["gacServiceTypeDescription"] == ["Care home service without nursing"]
    assert second.complete and "crawl" not in state.states["cqc"]
    keys = {o.source_id if not isinstance(o, SourceItem) else o.key[1] for o in got + rest}
    assert len(keys) == 78        # every listed location, the page in flight fetched again, none lost


def test_a_run_in_the_same_second_as_the_last_window_waits_for_the_clock(replay):
    moment = datetime(2026, 11, 30, 12, 0, 0, 400000, tzinfo=timezone.utc)
    clock = {"now": moment}
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock["now"] += timedelta(seconds=seconds)

    state = MemoryState()
    state.save("cqc", {"cursor": moment.replace(microsecond=0).isoformat(), "reading": reading_of()})
    cqc = connector(replay, now=lambda: clock["now"], sleep=sleep)
    assert list(cqc.fetch(state)) == []
    assert waits == [pytest.approx(0.6)]
    window = replay.seen("/cqc/changes/location")[0].query
    assert (window["startTimestamp"], window["endTimestamp"]) == (["2026-11-30T12:00:00Z"], ["2026-11-30T12:00:01Z"])


def test_a_missing_or_wrong_key_stops_the_run_with_what_to_check(replay):
    with pytest.raises(SourceKeyRefused, match=r"^CQC API refused the key \(401\): check REHABMAP_CQC_API_KEY$"):
        list(connector(replay, key="wrong").fetch(MemoryState()))


def test_connectors_for_builds_cqc_from_the_settings(replay):
    from indexer.sync.connectors import connectors_for
    from rehabmap.config import Settings

    [cqc] = connectors_for("cqc", Settings(cqc_api_url=replay.cqc_url, cqc_api_key="replay-cqc-key", cqc_rate=1000))
    assert cqc.name == "cqc" and cqc.attribution.startswith("Contains CQC information")
    # Care homes are all registered; floating support and most supported housing are not CQC's to list.
    assert cqc.covers() == {"supported_accommodation:residential_24h": {"E92000001"},
                            "inpatient_rehab_level1": {"E92000001"}, "inpatient_rehab_level2": {"E92000001"}}
    assert sum(isinstance(o, SourceItem) for o in cqc.fetch(MemoryState())) == 7


def test_an_upper_age_limit_from_the_registration_is_kept(feeds_dir):
    """Dovetail House is registered for adults under 65 and no other age band: 18 to 64, from CQC's words,
    on both paths. A home also registered for adults over 65 has no upper limit."""
    records = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    dovetail = next(r for r in records if r["name"] == "Dovetail House")
    item = map_location(dovetail, "u", datetime.now(timezone.utc))
    assert isinstance(item, SourceItem)
    assert (item.candidate.fields["min_age"], item.candidate.fields["max_age"]) == (18, 64)
    assert item.field_sources["max_age"] == "cqc:specialisms"
    [indexed] = read_api(dovetail, "locations.json")
    assert isinstance(indexed, Candidate) and (indexed.fields["min_age"], indexed.fields["max_age"]) == (18, 64)
    older_too = {**dovetail, "specialisms": [*dovetail["specialisms"], {"name": "Caring for adults over 65 yrs"}]}
    item = map_location(older_too, "u", datetime.now(timezone.utc))
    assert isinstance(item, SourceItem) and "max_age" not in item.candidate.fields


def test_only_the_regulated_activity_for_detained_persons_says_a_location_accepts_detained_patients(feeds_dir):
    """Before, CQC's band "Caring for people whose rights are restricted under the Mental Health Act" read as
    detained_mha, so three care homes of the recording (Dovetail House, Devonshire Manor, Grovelands Lodge) were
    shown as suitable for people detained under the Act. The band also covers people on a CTO, under guardianship
    or on s17 leave, whom a care home may look after; a location may detain only with CQC's regulated activity
    "Assessment or medical treatment for persons detained under the Mental Health Act 1983", which only Field
    House holds. The homes' need is unknown, not met, on both paths, and the evidence says why."""
    records = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    now = datetime.now(timezone.utc)
    items = {r["name"]: map_location(r, "u", now) for r in records if r["registrationStatus"] == "Registered"}
    detained = {name for name, o in items.items()
                if isinstance(o, SourceItem) and "detained_mha" in o.candidate.fields.get("needs_met", [])}
    assert detained == {"Field House"}
    dovetail = items["Dovetail House"]
    assert isinstance(dovetail, SourceItem)
    assert dovetail.candidate.fields["needs_met"] == ["learning_disability", "substance_misuse"]
    assert ("specialisms", "Caring for people whose rights are restricted under the Mental Health Act",
            RIGHTS_RESTRICTED_MEANS) in [(e.field, e.value, e.means) for e in dovetail.evidence]
    indexed = {r.origin.source_id: r.fields for r in read_api(records, "locations.json") if isinstance(r, Candidate)}
    assert not any("detained_mha" in fields.get("needs_met", []) for fields in indexed.values())
    assert indexed[DOVETAIL]["needs_met"] == ["learning_disability", "substance_misuse"]


def test_a_dormant_location_is_not_offered_and_the_reason_says_since_when(feeds_dir):
    """CQC marks a location registered but not carrying on its regulated activities as dormant ("dormancy": "Y",
    with "dormancyStartDate", as the recording's HELP Personal Services is since 2019-07-04). Before, the field was
    not read: a care home that had stopped providing care read as a home taking people. Dovetail House's real
    record, made dormant the way CQC records it: refused on both paths, and a synced record would be retired."""
    records = json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())
    help_personal = next(r for r in records if r["name"] == "HELP Personal Services")
    assert (help_personal["dormancy"], help_personal["dormancyStartDate"]) == ("Y", "2019-07-04")
    dovetail = next(r for r in records if r["locationId"] == DOVETAIL)
    dormant = {**dovetail, "dormancy": "Y", "dormancyStartDate": help_personal["dormancyStartDate"]}
    refused = map_location(dormant, "u", datetime.now(timezone.utc))
    reason = ("CQC records 'Dovetail House' as dormant since 2019-07-04: registered, but not providing care now; it "
              "is offered again when CQC records it active")
    assert isinstance(refused, Refused) and refused.reason == reason and not refused.unreadable
    [indexed] = read_api(dormant, "locations.json")
    assert isinstance(indexed, Rejection) and indexed.reason == reason
    assert isinstance(map_location(dovetail, "u", datetime.now(timezone.utc)), SourceItem)   # "dormancy": "N"


CARE_HOMES = "Care home service without nursing"


def test_an_empty_page_that_ends_a_type_before_its_last_page_fails_the_crawl(replay):
    """The second page of care homes without nursing (10 a page) answers with no locations and no next page,
    while its `totalPages` says more. Before, the care homes' listing ended there, and the full crawl, complete,
    retired every care home on the pages after it. Now it fails naming the page and what it contradicts, and
    the crawl stays at that page."""
    state = MemoryState()
    replay.alter("/cqc/locations", lambda query, page: {**page, "locations": [], "nextPageUri": None} if (
        query["gacServiceTypeDescription"] == [CARE_HOMES] and query["page"] == ["2"]) else page)
    cqc = connector(replay)
    with pytest.raises(SourceContradiction, match=r"page 2 lists no locations, yet the listing has \d+ pages by its "
                                                  r"'totalPages'\. Read as the end"):
        list(cqc.fetch(state))
    assert not cqc.complete and (state.states["cqc"]["crawl"]["type"], state.states["cqc"]["crawl"]["page"]) == (1, 2)


def test_a_type_listed_short_of_its_total_fails_and_is_listed_afresh(replay):
    """Grovelands Lodge, a care home held from CQC, is left out of the care homes' listing, whose `total` still
    counts it. Before, the full crawl was complete without it, and a sync retired it. Now the crawl fails at the
    listing's last page saying how many it listed of its total, and the care homes are listed from their first
    page by the next run."""
    state = MemoryState()
    replay.alter("/cqc/locations", lambda query, page: {
        **page, "locations": [x for x in page["locations"] if x["locationId"] != GROVELANDS]})
    cqc = connector(replay)
    with pytest.raises(SourceContradiction, match=r"the listing ends at page \d+, having listed (\d+) locations in "
                                                  r"all, yet it holds \d+ by its 'total'\.") as caught:
        list(cqc.fetch(state))
    assert f"gacServiceTypeDescription={CARE_HOMES.replace(' ', '+')}" in caught.value.message
    assert state.states["cqc"]["crawl"] | {"started": ""} == {"started": "", "type": 1, "page": 1, "listed": 0,
                                                              "typed": [SERVICE_TYPES[0], CARE_HOMES]}
    replay.clear_faults()
    again = connector(replay)
    assert GROVELANDS in {o.key[1] for o in again.fetch(state) if isinstance(o, SourceItem)} and again.complete


def test_a_changes_page_whose_count_is_no_number_keeps_the_window(replay):
    """A changes page gives `"totalPages": "four"`. Before, int() raised ValueError: a traceback, the run not
    recorded as failed. Now it is a source error naming the page and the value, and the cursor stays where it
    was, so the next run asks for the same window."""
    state = MemoryState()
    cqc = connector(replay)
    list(cqc.fetch(state))
    cursor = state.states["cqc"]["cursor"]
    replay.cqc.alter(DOVETAIL, numberOfBeds=12)
    replay.alter("/cqc/changes/location", lambda query, page: {**page, "totalPages": "four"})
    with pytest.raises(SourceError, match=r"/changes/location\?startTimestamp=.* with a page that cannot be read: "
                                          r"its 'totalPages' is not a count: \"four\""):
        list(cqc.fetch(state))
    assert state.states["cqc"]["cursor"] == cursor
    replay.clear_faults()
    assert [o.key[1] for o in cqc.fetch(state)] == [DOVETAIL]
