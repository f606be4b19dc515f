"""NHS website Service Search v3 against the replay, over the 50 real organisations recorded from the API's
published examples (../shared/data/feeds/nhs_service_search_v3/organisations_v3.json)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import SecretStr

from indexer.sync.connectors import connectors_for
from indexer.sync.connectors.nhs_service_search import KEY_HEADER, NhsServiceSearchConnector
from indexer.sync.http import (HttpPolicy, SourceClient, SourceContradiction, SourceError, SourceKeyRefused,
                                SourceUnavailable)
from indexer.pipeline import GeographyPlacer, prepare
from indexer.sync.items import SourceItem
from rehabmap.config import Settings
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType
from tests.sync.replay import MemoryState, Replay
from web.service_view import opening_rows


def connector(replay: Replay, *, key: str | None = "replay-nhs-key", retries: int = 1,
              **kwargs) -> NhsServiceSearchConnector:
    http = SourceClient("NHS Service Search API", replay.nhs_url, key=SecretStr(key) if key else None,
                        key_header=KEY_HEADER, key_setting="REHABMAP_NHS_SERVICE_SEARCH_KEY",
                        policy=HttpPolicy(rate=1000, retries=retries, backoff_base=0.01))
    return NhsServiceSearchConnector(http, **kwargs)


def test_the_community_mental_health_clinic_is_a_team_candidate(replay):
    [nhs] = connectors_for("nhs-service-search", Settings(nhs_service_search_url=replay.nhs_url,
                                                          nhs_service_search_key="replay-nhs-key",
                                                          nhs_service_search_rate=1000))
    [item] = list(nhs.fetch(MemoryState()))
    assert nhs.complete and nhs.covers() == {}
    assert isinstance(item, SourceItem) and item.type_status == "inferred"
    fields = item.candidate.fields
    assert (fields["name"], fields["service_type"], fields["postcode"]) == (
        "Glebelands Centre", ServiceType.community_rehab_team, "BN43 6GA")
    assert fields["organisation"] == "Sussex Partnership NHS Foundation Trust" and fields["provider_type"] == "nhs"
    assert fields["phone"] == "01273 267015" and fields["lat"] == pytest.approx(50.836, abs=1e-3)
    # The town and county as the NHS website gives them apart (City, County): the ORUK feed's city and county.
    assert (fields["address"], fields["town"], fields["county"]) == (
        "Middle Road, Shoreham-By-Sea, West Sussex", "Shoreham-By-Sea", "West Sussex")
    assert (item.field_sources["town"], item.field_sources["county"]) == ("nhs-service-search:City",
                                                                          "nhs-service-search:County")
    # The clinic's other service, for the maintainer who decides whom its team serves: before, only SRV0020 was
    # shown, and an older people's mental health team read as a candidate like any other.
    assert [(e.value, e.means) for e in item.evidence] == [
        ("SRV0020 Community mental health services",
         "a community mental health service: a candidate community rehabilitation team"),
        ("SRV0069 Older people's services", "another service the NHS website lists at this clinic")]
    assert item.keys == {"ods_code": "RX2D7"} and item.key == ("nhs-service-search", "RX2D7")
    [request] = replay.seen("/nhs")
    assert request.query["$filter"] == ["Services/any(s: s/ServiceCode eq 'SRV0020')"]
    assert request.query["api-version"] == ["3"] and request.had_key


def test_pages_with_top_and_skip_and_resumes(replay):
    """Another service code the recording holds 15 of (orthodontics), 4 a page, the source lost after page 2."""
    state = MemoryState()
    replay.drop("/nhs", after=2, times=None)
    first = connector(replay, service_code="SRV0087", page_size=4)
    got = []
    with pytest.raises(SourceUnavailable):
        for outcome in first.fetch(state):
            got.append(outcome)
    assert len(got) == 8 and state.states["nhs-service-search"]["skip"] == 8
    replay.clear_faults()
    second = connector(replay, service_code="SRV0087", page_size=4)
    rest = list(second.fetch(state))
    assert second.complete and len(rest) == 7
    assert len({o.key for o in got + rest}) == 15
    assert [s.query["$skip"] for s in replay.seen("/nhs") if s.status == 200] == [["0"], ["4"], ["8"], ["12"]]


def test_no_key(replay):
    with pytest.raises(SourceKeyRefused, match=r"^NHS Service Search API needs a key \(401\): set "
                                               r"REHABMAP_NHS_SERVICE_SEARCH_KEY$"):
        list(connector(replay, key=None).fetch(MemoryState()))


def test_an_answer_without_its_organisations_is_no_last_page(replay):
    """The third page of orthodontists (15, 4 a page) answered 200 with a message in place of `value`. Before, it
    read as the last page: a complete listing of 8, so a sync retired the 7 it never saw. Now it is an error,
    and the crawl stays at that page for the next run."""
    state = MemoryState()
    replay.fail("/nhs", 200, after=2)
    first = connector(replay, service_code="SRV0087", page_size=4)
    with pytest.raises(SourceError, match=r"not a page of its listing \(no 'value' list\)"):
        list(first.fetch(state))
    assert not first.complete and state.states["nhs-service-search"]["skip"] == 8


def test_a_clinics_opening_times_and_email_are_read(replay, geography):
    """The NHS website gives most organisations' usual week (47 of the 50 recorded). The connector read none, so
    a synced clinic's page said "Opening times not known". The recording's one clinic that offers SRV0020 gives
    none; a real clinic that gives its hours (Young Offenders Service, Lewisham: SRV0408, Monday to Friday 9 to
    5) is fetched the same way, and a dental practice's split days and closed weekend read as the NHS website
    says them. Nor did it read the clinic's own email (32 of the 50 give one): only its phone and website."""
    hours, emails = {}, {}
    for code in ("SRV0408", "SRV0087"):
        for item in connector(replay, service_code=code).fetch(MemoryState()):
            assert isinstance(item, SourceItem)
            hours[item.candidate.fields["name"]] = (item.candidate.fields.get("schedules"),
                                                    item.field_sources.get("schedules"))
            emails[item.candidate.fields["name"]] = item.candidate.fields.get("email")
    assert hours["Young Offenders Service (Lewisham)"] == (
        [{"byday": ["MO", "TU", "WE", "TH", "FR"], "opens_at": "09:00", "closes_at": "17:00"}],
        "nhs-service-search:OpeningTimes")
    assert hours["Station House Dental Practice"][0] == [
        {"byday": ["MO", "TU", "WE", "TH", "FR"], "opens_at": "09:00", "closes_at": "13:00"},
        {"byday": ["MO", "TU", "WE", "TH"], "opens_at": "14:00", "closes_at": "17:15"},
        {"byday": ["FR"], "opens_at": "14:00", "closes_at": "17:00"}]
    assert sum(1 for found, _ in hours.values() if found) == 16  # every one of the 16 that gives opening times
    assert emails["Bupa Dental Care, Wellington"] == "wellington@bupadentalcare.co.uk"
    assert emails["Young Offenders Service (Lewisham)"] is None  # its only email is the trust's PALS team's
    assert sum(1 for email in emails.values() if email) == 12
    # Through the import pipeline, as a sync prepares it: the record and the page say it.
    [clinic] = connector(replay, service_code="SRV0408").fetch(MemoryState())
    candidate = replace(clinic.candidate, fields={**clinic.candidate.fields, "service_type": ServiceType.vcfse})
    service = prepare(candidate, GeographyPlacer(geography))
    assert isinstance(service, Service)
    assert opening_rows(service.schedules) == [("Monday to Friday", "9am to 5pm")]


def test_a_page_short_of_the_count_the_listing_gives_fails_the_crawl(replay):
    """The second page of orthodontists (15 by `@odata.count`, 4 a page) answers with 3. Before, a page shorter
    than asked for ended the crawl whatever the count said: a complete listing of 7, and a sync retired the 8 it
    never saw (the auditor's case: a page of 3 organisations counting 4 retired one record). Now the crawl fails
    naming the page and the count it contradicts, and starts again at the first page for the next run."""
    state = MemoryState()
    replay.alter("/nhs", lambda query, page: {**page, "value": page["value"][:3]} if query["$skip"] == ["4"]
                 else page)
    first = connector(replay, service_code="SRV0087", page_size=4)
    with pytest.raises(SourceContradiction, match=r"%24skip=4&%24count=true with a page that contradicts its own "
                                                  r"listing: the listing ends at \$skip=4 \(3 of the 4 asked for\), "
                                                  r"having listed 7 organisations in all, yet it holds 15 by its "
                                                  r"'@odata.count'\. Read as the end"):
        list(first.fetch(state))
    assert not first.complete and state.states["nhs-service-search"]["skip"] == 0
    replay.clear_faults()
    second = connector(replay, service_code="SRV0087", page_size=4)
    assert len(list(second.fetch(state))) == 15 and second.complete


def test_a_count_that_is_no_number_fails_the_crawl_naming_the_page(replay):
    """`"@odata.count": "fifteen"`: before, int() raised ValueError, a traceback, and the run was not recorded as
    failed. Now it is a source error naming the page, the key and its value."""
    replay.alter("/nhs", lambda query, page: {**page, "@odata.count": "fifteen"})
    with pytest.raises(SourceError, match=r"%24count=true with a page that cannot be read: its '@odata.count' is not "
                                          r"a count: \"fifteen\"; where the listing ends is not known"):
        list(connector(replay, service_code="SRV0087", page_size=4).fetch(MemoryState()))
