"""ORUK feeds against the replay: Bristol's 819 real list items (ORUK v1 paging) and the HSDS 3 example list.

The recording has no council detail pages, so the replay BUILDS each `/services/{id}` page in the published ORUK
v1 shape from the recorded list item, joined to the real service-at-location extract (lat/lon, terms, ages);
the extract covers few of the 819, so most detail pages have no location, as the list items had none."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from indexer.sync.connectors import connectors_for
from indexer.sync.connectors import oruk
from indexer.sync.connectors.oruk import FeedError, OrukConnector, _has_place, load_feed, map_service
from indexer.sync.http import HttpPolicy, SourceClient, SourceContradiction, SourceError, SourceUnavailable
from indexer.sync.items import Gone, Refused, SourceItem, Unchanged
from rehabmap.config import Settings
from rehabmap.oruk import oruk_to_fields
from rehabmap.taxonomy import ServiceType
from tests.sync.replay import MemoryState, OrukFeed, Replay, bristol_detail, running

ROOT = Path(__file__).resolve().parents[2]
LET_IN = ("Ask the feed's publisher to add the location where it is delivered (its next sync adds it), or make the "
          "service in the directory at /keepers/services/new with its postcode")


def bristol(replay: Replay, **settings) -> OrukConnector:
    [feed] = connectors_for("oruk", Settings(oruk_feed_urls={"bristol": replay.oruk_url("bristol")},
                                             oruk_rate=10_000, **settings))
    assert isinstance(feed, OrukConnector)
    return feed


def kind(outcome) -> str:
    if isinstance(outcome, SourceItem):
        return f"{outcome.type_status} {outcome.candidate.fields['service_type'].value}"
    if isinstance(outcome, Gone):
        return "gone"
    if outcome.reason.startswith("not on the rehab pathway"):
        return "refused: not on the rehab pathway"
    if "cannot be placed" in outcome.reason:
        return "refused: " + outcome.reason.split("' is ")[1].split(" (")[0] + ", no location"
    if "has the id of another service" in outcome.reason:
        return "refused: one id for two services"
    return "refused: " + outcome.reason


@pytest.fixture(scope="module")
def bristol_crawl(data_dir):
    """One full crawl of the Bristol feed, shared by the tests that only read its outcomes."""
    for replay in running(data_dir / "feeds"):
        connector = bristol(replay)
        state = MemoryState()
        outcomes = list(connector.fetch(state))
        yield replay, connector, outcomes, state


def test_every_one_of_bristols_819_services_is_accounted_for(bristol_crawl):
    replay, connector, outcomes = bristol_crawl[:3]
    assert connector.complete and connector.name == "oruk-bristol"
    assert Counter(map(kind, outcomes)) == {
        "refused: not on the rehab pathway": 665,
        "refused: vcfse, no location": 137,
        "refused: advocacy, no location": 9,
        "refused: supported_accommodation, no location": 2,
        "refused: of a type only a maintainer can say, no location": 4,   # NHS or council services
        "refused: service has no name": 1,
        "refused: one id for two services": 1,
    }
    # One id for two list items: the second is reported, naming both (before, one of them was lost unsaid).
    [twice] = [o for o in outcomes if kind(o) == "refused: one id for two services"]
    assert twice.source_id is None and twice.where == replay.oruk_url("bristol") + "/services?page=17 item 811"
    assert twice.reason == (
        "'Yoga for Fitness & Relaxation' has the id of another service the feed lists, 'Fishponds Yoga for Fitness & "
        f"Wellbeing' ({replay.oruk_url('bristol')}/services?page=8 item 374): 2af617e5-4532-bebe-1036-ffdf2e93ce55; "
        "one record per id, so only what the feed's page for that id says is read. Ask the feed's publisher to give "
        "each service its own id")
    # The 152 pathway services without a place are marked so, for the run's report to count them apart.
    assert sum(isinstance(o, Refused) and o.unplaced for o in outcomes) == 137 + 9 + 2 + 4
    # 17 pages of 50, and a detail page for each named service's id (list items carry no location).
    assert len([s for s in replay.seen("/oruk/bristol/services") if s.path == "/oruk/bristol/services"]) == 17
    assert len([s for s in replay.seen("/oruk/bristol/services/")]) == 817


def test_bristol_refusals_say_what_the_service_was_and_why(bristol_crawl):
    replay, _, outcomes = bristol_crawl[:3]
    by_name = {}
    for outcome in outcomes:
        assert isinstance(outcome, Refused)
        by_name[outcome.reason] = outcome
    reasons = set(by_name)
    # A mental health charity the feed lists for its "Mental Health" audience, without a location or an area: the
    # reason says what would let it in.
    assert ("'Bristol Mind' is vcfse (the feed's term, mapped to vcfse), but the feed gives no location, postcode "
            f"or service area for it, so it cannot be placed. {LET_IN}") in reasons
    # Typed by its words only: inferred.
    assert ("'Kindful Mind' is vcfse (mentions mental health: typed vcfse by keyword, to be confirmed), but the feed "
            f"gives no location, postcode or service area for it, so it cannot be placed. {LET_IN}") in reasons
    # Its terms mapped by the feed file (Improving mental health): the reason says so.
    assert ("'1625 Independent People' is vcfse (the feed's term, mapped to vcfse), but the feed gives no location, "
            f"postcode or service area for it, so it cannot be placed. {LET_IN}") in reasons
    # A service with a location but nothing about mental health: refused with the terms it had.
    assert ("not on the rehab pathway: no term the feed file maps, and no words about mental health (its terms: "
            "Lonely; Evening classes; Hobbies and interests; Arts  and creative classes)") in reasons
    some = next(iter(by_name.values()))
    assert some.where.startswith(replay.oruk_url("bristol") + "/services")


def test_an_unplaced_service_whose_description_names_postcodes_has_them_quoted(bristol_crawl):
    """5 of the 152 pathway services the feed gives no place for name postcodes in their descriptions: BLOOM its
    one venue ("Location: Bluebell Place, 2 Quay St, Bristol, BS1 2JL"), the carers' groups three, the mental
    health trust's page a recovery team's office. Prose places nothing (a venue, an office or one of several),
    but before the reason only said "with its postcode", and the person making the service by hand had to dig
    them out of an HTML description; now it quotes them, checked as postcodes."""
    _, _, outcomes = bristol_crawl[:3]
    quoted = {o.reason.split(" is ")[0].strip("'"): o.reason.rsplit("(its description names ", 1)[1].rstrip(")")
              for o in outcomes if isinstance(o, Refused) and o.unplaced and "(its description names" in o.reason}
    assert quoted == {
        "BLOOM - Music sessions for parents experiencing anxiety and depression": "BS1 2JL",
        "Mental Health Carers Support Groups": "BS15 8HU, BS37 4AX, BS7 0PQ",
        "Avon and Wiltshire Mental Health Services": "BS15 9TR",
        "Cost of Living - Welcoming Space at The Big Issue Foundation": "BS2 8QF",
        "Bristol City Council Services": "BS16 2QQ, BS3 4AQ",
    }
    bloom = next(o for o in outcomes if o.reason.startswith("'BLOOM"))
    assert bloom.reason.endswith(f"{LET_IN} (its description names BS1 2JL)")


def test_a_service_that_states_only_its_area_is_refused_saying_so_never_placed_at_a_made_up_point():
    """A service area says whom a service serves, not where it is: without a location or postcode the service
    is not given a point (an area's centre would be a made-up one), and the reason names the area it stated."""
    feed = load_feed(ROOT / "mappings" / "feeds" / "bristol.toml")
    item = {"id": "s1", "name": "Area Mind", "description": "Mental health support for residents",
            "service_taxonomys": [{"taxonomy": {"name": "Mental health support"}}],
            "service_areas": [{"uri": "http://statistics.data.gov.uk/id/statistical-geography/E06000023",
                               "name": "Bristol"}]}
    refused = map_service(feed, item, "https://feed.example/services/s1", 1, datetime.now(timezone.utc))
    assert isinstance(refused, Refused)
    assert refused.reason == ("'Area Mind' is vcfse (the feed's term, mapped to vcfse), but the feed states only the "
                              "area it serves (E06000023), no location or postcode, so it cannot be placed. " + LET_IN)


def test_a_mapped_term_types_a_placed_service_as_confirmed(replay, tmp_path):
    """A feed file that maps the term Bristol gives 'Autism Advice - Bristol' (whose detail page has a point)."""
    text = (ROOT / "mappings" / "feeds" / "bristol.toml").read_text()
    (tmp_path / "bristol.toml").write_text(text.replace('[terms]\n', '[terms]\n"Health support groups and '
                                                        'organisations" = "vcfse"\n'))
    [connector] = connectors_for("oruk", Settings(oruk_feeds_dir=tmp_path, oruk_rate=10_000,
                                                  oruk_feed_urls={"bristol": replay.oruk_url("bristol")}))
    items = [o for o in connector.fetch(MemoryState()) if isinstance(o, SourceItem)]
    assert [(i.candidate.fields["name"], i.type_status) for i in items] == [("Autism Advice - Bristol", "confirmed")]
    item = items[0]
    fields = item.candidate.fields
    assert fields["service_type"] is ServiceType.vcfse and fields["lat"] and fields["lon"] and fields["organisation"]
    assert [(e.field, e.value) for e in item.evidence] == [("taxonomy", "Health support groups and organisations")]
    assert item.field_sources["lat"] == "oruk-bristol:location.latitude"
    # The council's own check of its listing (its `assured_date`) is no person's check of rehabmap's or the service's:
    # before, it was read as `last_verified`, and the page said "Checked by the rehabmap team or the service: 5 June
    # 2020".
    assert item.raw["assured_date"] == "2020-06-05" and "last_verified" not in fields
    assert "last_verified" not in item.field_sources
    assert item.candidate.origin.source_id == item.raw["id"] and item.candidate.origin.licence == "OGL-UK-3.0"
    assert item.candidate.origin.file.endswith("/services/" + item.raw["id"])


def published_by_bristol(replay: Replay, tmp_path: Path, value: str, feed: str = "") -> tuple[list, str]:
    """What `sync oruk` reads of Bristol's feed with a "Provenance" attribute of `value` on 'Autism Advice -
    Bristol' (its detail page has a point), the feed file Bristol's own with `feed` added to its [feed] table; and
    that service's id."""
    text = (ROOT / "mappings" / "feeds" / "bristol.toml").read_text()
    (tmp_path / "bristol.toml").write_text(text.replace("[feed]\n", f"[feed]\n{feed}", 1).replace(
        '[terms]\n', '[terms]\n"Health support groups and organisations" = "vcfse"\n'))
    details = replay.oruk["bristol"].details
    [sid] = [k for k, d in details.items() if d["name"] == "Autism Advice - Bristol"]
    details[sid] = {**details[sid], "attributes": [
        {"taxonomy_term": {"taxonomy": "rehabmap", "name": "Provenance"}, "value": value}]}
    [connector] = connectors_for("oruk", Settings(oruk_feeds_dir=tmp_path, oruk_rate=10_000,
                                                  oruk_feed_urls={"bristol": replay.oruk_url("bristol")}))
    return list(connector.fetch(MemoryState())), sid


SPOOFED = {"source": "nhs-hospitals-2018", "source_id": "DAM04", "fetched_at": "2026-12-07T10:00:00+00:00",
           "edition": {"title": "NHS website hospital list (September 2018)", "dated": "September 2018"},
           "relayed_by": {"source": "cqc", "title": "NHS England"}}


def test_a_relay_a_feed_names_is_the_feed_itself_never_a_source_of_this_site(replay, tmp_path):
    """A feed's published provenance entry that says it was relayed by "cqc": the sync kept the name, a source of
    this rehabmap, so a record merged with a live CQC one read CQC's own listing as a relay's and hid it. Now the
    relay is always the feed read (`oruk-bristol`), the name it published kept as words only."""
    outcomes, _ = published_by_bristol(replay, tmp_path, json.dumps(SPOOFED), "rehabmap = true\n")
    [item] = [o for o in outcomes if isinstance(o, SourceItem)]
    [entry] = item.candidate.fields["provenance"]
    assert entry["relayed_by"] == {"source": "oruk-bristol", "title": "NHS England", "relaying": False}


def test_a_feed_not_said_to_be_another_rehabmaps_relays_nothing(replay, tmp_path):
    """A council's own feed (Bristol's file, no `rehabmap = true`) that publishes rehabmap's provenance attribute
    with a file's `edition`: every entry was marked relayed by the feed, so the feed's own listing dated nothing and
    the council's free-text title and date read as a file's ("Listed only in …, a file of September 2018, as
    relayed by …"), the council hidden as a source. Now only a feed its file says is another rehabmap's relays: the
    entry is kept as the feed gives it, any relay it names left out, and the feed is a live source."""
    outcomes, _ = published_by_bristol(replay, tmp_path, json.dumps(SPOOFED))
    [item] = [o for o in outcomes if isinstance(o, SourceItem)]
    [entry] = item.candidate.fields["provenance"]
    assert "relayed_by" not in entry and entry["edition"]["dated"] == "September 2018"


def test_a_provenance_attribute_that_is_not_json_leaves_out_itself_not_the_service(replay, tmp_path):
    """Bristol's 'Autism Advice - Bristol' (its detail page has a point) with a "Provenance" attribute cut off, which
    is not JSON: before, the service was refused ("cannot read the service: attributes[0] provenance: … is not valid
    JSON"). It is rehabmap's own note of where a record came from: now it alone is left out and said on the item, the
    service kept with nothing published from it, and no person's check read from it."""
    cut = '{"source": "cqc", "source_id": "1-1'
    outcomes, sid = published_by_bristol(replay, tmp_path, cut)
    assert [o for o in outcomes if isinstance(o, Refused) and o.source_id == sid] == []
    [item] = [o for o in outcomes if isinstance(o, SourceItem)]
    assert item.candidate.fields["name"] == "Autism Advice - Bristol" and item.type_status == "confirmed"
    assert item.candidate.warnings == [f"provenance attribute (attributes[0]) '{cut}' is not valid JSON: left out, "
                                       "the service is kept"]
    assert "provenance" not in item.candidate.fields and "last_verified" not in item.candidate.fields


def test_a_feed_of_rehabmaps_export_gives_its_check_not_the_feeds_stamp(replay, tmp_path):
    """A feed republishing rehabmap's export (the sample) with `assured_date` stamped its own: `sync oruk` reads each
    service's `last_verified` from rehabmap's term, the person's check, said as read from it. Before, the stamp
    (2020-06-05) was read as the person's check wherever the item carried rehabmap's provenance."""
    items = json.loads((ROOT / "sample" / "rehabmap-sample.oruk.json").read_text(encoding="utf-8"))["contents"]
    checks = {item["id"]: next(a["value"] for a in item["attributes"]
                               if a["taxonomy_term"]["code"] == "last_verified") for item in items}
    replay.oruk["rehabmap"] = OrukFeed("hsds3", [{**item, "assured_date": "2020-06-05"} for item in items], {})
    (tmp_path / "rehabmap.toml").write_text(
        '[feed]\nlabel = "rehabmap"\nurl = "x"\npaging = "hsds3"\nper_page = 50\nlicence = "OGL-UK-3.0"\n'
        'attribution = "rehabmap"\n')
    [connector] = connectors_for("oruk", Settings(oruk_feeds_dir=tmp_path, oruk_rate=10_000,
                                                  oruk_feed_urls={"rehabmap": replay.oruk_url("rehabmap")}))
    read = [o for o in connector.fetch(MemoryState()) if isinstance(o, SourceItem)]
    assert len(read) == 59  # the sample's one inactive service is gone
    assert {i.raw["id"]: str(i.candidate.fields["last_verified"]) for i in read} == {
        i.raw["id"]: checks[i.raw["id"]] for i in read}
    assert {i.field_sources["last_verified"] for i in read} == {"oruk-rehabmap:last_verified"}


def test_hsds3_paging_and_a_detail_page_with_a_location(replay, tmp_path):
    (tmp_path / "example.toml").write_text(
        '[feed]\nlabel = "HSDS 3 example"\nurl = "x"\npaging = "hsds3"\nper_page = 50\n'
        'licence = "CC-BY-4.0"\nattribution = "Open Referral"\n')
    [connector] = connectors_for("oruk", Settings(oruk_feeds_dir=tmp_path, oruk_rate=10_000,
                                                  oruk_feed_urls={"example": replay.oruk_url("hsds3")}))
    outcomes = list(connector.fetch(MemoryState()))
    assert connector.complete
    assert len([s for s in replay.seen("/oruk/hsds3/services") if s.path == "/oruk/hsds3/services"]) == 3
    # The list items have no location, so the detail page is fetched: the published example's own placeholder
    # values (extent "extent", latitude 100) cannot be read, and it says so. The example lists that one service
    # 128 times: before, it was fetched and read 128 times, unsaid; now once, and one line names the repeats.
    sid = "ac148810-d857-441c-9679-408f346de14b"
    assert [(o.source_id, o.reason) for o in outcomes if isinstance(o, Refused)] == [
        (sid, "cannot read the service: service_areas[0].extent: 'extent' is not valid JSON"),
        (None, f"'Community Counselling' is listed 128 times under one id, {sid}: it is read once and the 127 "
               "repeats are left out. Ask the feed's publisher to list each service once")]
    assert outcomes[-1].where == replay.oruk_url("hsds3") + "/services?page=1 item 1"
    assert len(replay.seen("/oruk/hsds3/services/")) == 1


def test_a_killed_crawl_resumes_at_its_page(replay):
    state = MemoryState()
    replay.drop("/oruk/bristol/services", after=300, times=None)
    connector = bristol(replay, sync_retries=0)
    with pytest.raises(SourceUnavailable, match="connection failed"):
        list(connector.fetch(state))
    page = state.states["oruk-bristol"]["page"]
    replay.clear_faults()
    again = bristol(replay)
    rest = list(again.fetch(state))
    assert again.complete and len(rest) == 819 - (page - 1) * 50
    assert "page" not in state.states["oruk-bristol"]


def test_inactive_services_are_gone(replay, feeds_dir):
    feed = load_feed(ROOT / "mappings" / "feeds" / "bristol.toml", replay.oruk_url("bristol"))
    replay.oruk["bristol"].items[5]["status"] = "defunct"
    connector = OrukConnector(feed, SourceClient("Bristol", feed.url, policy=HttpPolicy(rate=10_000)))
    gone = [o for o in connector.fetch(MemoryState()) if isinstance(o, Gone)]
    assert gone == [Gone("oruk-bristol", replay.oruk["bristol"].items[5]["id"], "the feed marks it 'defunct'", None)]


@pytest.mark.parametrize("text, message", [
    ('[feed]\nlabel = "x"\n', "[feed] needs url, paging, licence, attribution"),
    ('[feed]\nlabel="x"\nurl="u"\npaging="v9"\nlicence="l"\nattribution="a"\n', "paging 'v9' is not one of v1, hsds3"),
    ('[feed]\nlabel="x"\nurl="u"\npaging="v1"\nlicence="l"\nattribution="a"\n[terms]\n"A" = "day_centre"\n',
     "'day_centre' is not a type"),
    ('[feed]\nlabel="x"\nurl="u"\npaging="v1"\nlicence="l"\nattribution="a"\n[terms]\n"A" = "vcfse/imha"\n',
     "Subtype 'imha' does not belong to vcfse"),
    ('[feed]\nlabel="x"\nurl="u"\npaging="v1"\nlicence="l"\nattribution="a"\n'
     '[feed.covers]\nday_centre = ["E06000023"]\n',
     "[feed.covers] names no type 'day_centre'"),
    # Each of these was a traceback (a ValueError, an AttributeError) rather than a line naming what to mend.
    ('[feed]\nlabel="x"\nurl="u"\npaging="v1"\nper_page="fifty"\nlicence="l"\nattribution="a"\n',
     "[feed] per_page must be a whole number, 1 or more, not 'fifty'"),
    ('[feed]\nlabel="x"\nurl="u"\npaging="v1"\ntrust_count="false"\nlicence="l"\nattribution="a"\n',
     "[feed] trust_count must be true or false, written without quotes, not 'false'"),
    ('[feed]\nlabel="x"\nurl="u"\npaging="v1"\ntrust_count=0\nlicence="l"\nattribution="a"\n',
     "[feed] trust_count must be true or false, written without quotes, not 0"),
    ('[feed]\nlabel="x"\nurl="u"\npaging="v1"\nrehabmap="yes"\nlicence="l"\nattribution="a"\n',
     "[feed] rehabmap must be true or false, written without quotes, not 'yes'"),
    ('terms = "vcfse"\n[feed]\nlabel="x"\nurl="u"\npaging="v1"\nlicence="l"\nattribution="a"\n',
     "[terms] must be a table of entries, not 'vcfse'"),
    ('[feed]\nlabel="x"\nurl="u"\npaging="v1"\nlicence="l"\nattribution="a"\n[keywords]\n"(?i)club(" = "vcfse"\n',
     "[keywords] '(?i)club(' is not a regular expression: missing ), unterminated subpattern"),
])
def test_a_bad_feed_file_says_what_to_fix(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(FeedError) as caught:
        load_feed(path)
    # named by the file's name (a failed run's error is shown on the keepers' pages), its path the operator's
    assert str(caught.value).startswith("bad.toml: ") and message in str(caught.value)
    assert caught.value.where == str(path)


def test_a_feed_file_that_cannot_be_opened_is_named_without_its_folder(tmp_path):
    """An OSError's own words name the path ("[Errno 21] Is a directory: '/srv/…/town.toml'"): its reason alone."""
    path = tmp_path / "town.toml"
    path.mkdir()
    with pytest.raises(FeedError) as caught:
        load_feed(path)
    assert (caught.value.message, caught.value.where) == ("town.toml: cannot read the feed file: Is a directory",
                                                          str(path))


def test_a_feed_covers_what_its_file_says(tmp_path):
    path = tmp_path / "town.toml"
    path.write_text('[feed]\nlabel="x"\nurl="u"\npaging="v1"\nlicence="l"\nattribution="a"\n'
                    '[feed.covers]\nvcfse = ["E06000023"]\n')
    connector = OrukConnector(load_feed(path), SourceClient("x", "http://127.0.0.1:9"))
    assert connector.covers() == {"vcfse": frozenset({"E06000023"})} and connector.name == "oruk-town"


def test_an_answer_that_is_no_page_or_no_service_ends_no_crawl(replay):
    """Bristol's first page answered 200 with a message in place of `content`: before, it was read as an empty
    last page, a complete listing of nothing, so a sync would retire every service held from the feed. A detail
    page answered so made the crawl fail with a KeyError. Now each is an error naming the page, and the crawl
    stays where it was, for the next run to ask again."""
    state = MemoryState()
    replay.fail("/oruk/bristol/services", 200)
    connector = bristol(replay, sync_retries=0)
    with pytest.raises(SourceError, match=r"services\?page=1&per_page=50 with something that is not a page of "
                                          r"its listing \(no 'content' list\): '\{\"message\""):
        list(connector.fetch(state))
    assert not connector.complete and state.states == {}, "nothing moved on: the next run asks again"
    second = replay.oruk["bristol"].items[1]["id"]
    replay.fail(f"/oruk/bristol/services/{second}", 200)
    with pytest.raises(SourceError, match=f"services/{second} with something that is not a record \\(no 'id'\\)"):
        list(connector.fetch(state))
    assert not connector.complete and state.states == {}


def page_of(number: int, change):
    """A `Replay.alter` change for Bristol's list page `number` alone: `change(page)` gives the page's new keys."""
    return lambda query, page: {**page, **change(page)} if query["page"] == [str(number)] else page


def test_an_empty_page_the_feed_says_is_not_the_last_fails_the_crawl(replay):
    """Bristol's last page (17 of 17) answers with no services and `"last": false` (the auditor's case). Before,
    an empty page ended the listing, read as complete: a sync retired the 19 services that page held, and exited
    0. Now the crawl fails naming the feed, the page and what it contradicts, stays at that page, and is not
    complete, so nothing is retired."""
    state = MemoryState()
    replay.alter("/oruk/bristol/services", page_of(17, lambda page: {"content": [], "last": False}))
    connector = bristol(replay)
    with pytest.raises(SourceContradiction) as caught:
        list(connector.fetch(state))
    assert caught.value.message == (
        f"Bristol City Council service directory answered {replay.oruk_url('bristol')}/services?page=17&per_page=50 "
        "with a page that contradicts its own listing: page 17 lists no services, yet says it is not the last "
        "('last': false). Read as the end of the listing it would retire, or skip, what the rest holds, so nothing "
        "is applied.")
    assert not connector.complete and state.states["oruk-bristol"]["page"] == 17


def test_an_empty_page_before_the_last_the_feed_announces_fails_the_crawl(replay):
    """Page 5 of the 17 Bristol's `totalPages` announces answers with no services (and says nothing of being the
    last). Before, it ended the listing there: the 619 services of pages 5 to 17 would be retired."""
    replay.alter("/oruk/bristol/services", page_of(5, lambda page: {"content": [], "last": None}))
    with pytest.raises(SourceContradiction, match=r"page 5 lists no services, yet the listing has 17 pages by its "
                                                  r"'totalPages'\. "):
        list(bristol(replay).fetch(MemoryState()))


def test_a_listing_short_of_its_own_count_fails_and_is_listed_afresh(replay):
    """Page 3 answers with 40 of its 50 services, every page still counting 819 (`totalElements`). Before, the
    crawl read the 17 pages as a complete listing of 809, and a sync retired the 10 it never saw. Now it fails at
    the last page, saying how many it listed and what the feed counts, and starts again at page 1, so the next run
    lists the feed afresh rather than count the same short page again; with page 3 whole, it completes."""
    state = MemoryState()
    replay.alter("/oruk/bristol/services", page_of(3, lambda page: {"content": page["content"][:40]}))
    with pytest.raises(SourceContradiction, match=r"page=17&per_page=50 with a page that contradicts its own "
                                                  r"listing: the listing ends at page 17, having listed 809 services "
                                                  r"in all, yet it holds 819 by its 'totalElements'\. "):
        list(bristol(replay).fetch(state))
    assert state.states["oruk-bristol"]["page"] == 1 and state.states["oruk-bristol"]["listed"] == 0
    replay.clear_faults()
    again = bristol(replay)
    assert len(list(again.fetch(state))) == 819 and again.complete


def counting_900(query, page):
    """Bristol's pages as a publisher whose count takes in 81 services it has deleted or hidden gives them: every page
    counts 900 (`totalElements`) in 18 pages, and only the 18th, empty, says it is the last."""
    return {**page, "totalElements": 900, "totalPages": 18, "last": int(query["page"][0]) >= 18}


def untrusting(replay: Replay, folder: Path) -> OrukConnector:
    """Bristol's feed read by its file as shipped with `trust_count = false` in its [feed] table."""
    text = (ROOT / "mappings" / "feeds" / "bristol.toml").read_text()
    (folder / "bristol.toml").write_text(text.replace("per_page = 50\n", "per_page = 50\ntrust_count = false\n"))
    [connector] = connectors_for("oruk", Settings(oruk_feeds_dir=folder, oruk_rate=10_000,
                                                  oruk_feed_urls={"bristol": replay.oruk_url("bristol")}))
    assert isinstance(connector, OrukConnector) and not connector.feed.trust_count
    return connector


def test_a_feed_whose_count_is_always_wrong_is_read_whole_where_its_file_says_not_to_trust_it(bristol_crawl, replay,
                                                                                              tmp_path):
    """A publisher that counts services it has deleted or hidden lists fewer than its count on every run: each run
    failed and listed the feed afresh at the next, so its services went stale, and the operator could do nothing
    until the publisher mended it. The error now names the remedy in the feed file; with `trust_count = false` the
    listing is read to the page that ends it, as a feed that gives no count is, and is complete, the shortfall a line
    for the run's report. The feed was read whole before its count went wrong (the module's crawl), so each run
    here lists its pages and reads none of its unchanged services' pages again."""
    replay.alter("/oruk/bristol/services", counting_900)
    state = MemoryState()
    state.states = {"oruk-bristol": bristol_crawl[3].load("oruk-bristol")}  # a copy: the other tests keep theirs
    trusting = bristol(replay)
    with pytest.raises(SourceContradiction) as caught:
        list(trusting.fetch(state))
    assert caught.value.message.endswith(
        "the listing ends at page 18, having listed 819 services in all, yet it holds 900 by its 'totalElements'. "
        "Read as the end of the listing it would retire, or skip, what the rest holds, so nothing is applied. If its "
        "count is always more than it lists (counting services it has deleted or hidden), ask the feed's publisher to "
        "mend its count; until then, 'trust_count = false' in the [feed] table of bristol.toml reads its listing to "
        "the page that ends it, as a feed that gives no count, and says in the run's report how many it listed of "
        "its count.")
    assert not trusting.complete and state.states["oruk-bristol"]["page"] == 1

    connector = untrusting(replay, tmp_path)
    outcomes = list(connector.fetch(state))
    assert connector.complete and len(outcomes) == 819
    assert connector.short_of_count == (
        "listed 819 of the 900 services its 'totalElements' counts: the feed file says its count is not to be "
        "trusted (trust_count = false), so the listing was read to the page that ends it")
    assert "page" not in state.states["oruk-bristol"]
    # Its 17 pages of services, then the empty 18th, the first run's pages asked for again.
    assert len([s for s in replay.seen("/oruk/bristol/services") if s.path == "/oruk/bristol/services"]) == 18 + 18
    # A listing whole by its count says nothing.
    replay.clear_faults()
    again = untrusting(replay, tmp_path)
    list(again.fetch(state))
    assert again.complete and again.short_of_count is None


def test_a_feed_not_trusted_for_its_count_still_fails_where_its_paging_contradicts_itself(replay, tmp_path):
    """`trust_count = false` sets aside the counts alone: an empty page that says it is not the last still fails the
    crawl, as it would be the end of a listing that goes on (Bristol's page 17 so, the auditor's case)."""
    replay.alter("/oruk/bristol/services", lambda query, page: {**counting_900(query, page), **(
        {"content": [], "last": False} if query["page"] == ["17"] else {})})
    state = MemoryState()
    connector = untrusting(replay, tmp_path)
    with pytest.raises(SourceContradiction, match=r"page 17 lists no services, yet says it is not the last "
                                                  r"\('last': false\)\. "):
        list(connector.fetch(state))
    assert not connector.complete and state.states["oruk-bristol"]["page"] == 17


def test_a_feed_file_key_rehabmap_does_not_read_is_named_and_the_feed_read_as_before(bristol_crawl, replay,
                                                                                    tmp_path):
    """An operator who wrote `trust_cout = false` in Bristol's [feed] table: the key did nothing, unsaid, and the feed
    went on failing on its count. It is still no error (a file that read before must keep syncing), but the run names
    it, with the file, the table and the key meant, and reads the feed as the file without it does."""
    text = (ROOT / "mappings" / "feeds" / "bristol.toml").read_text()
    (tmp_path / "bristol.toml").write_text(text.replace("per_page = 50\n", "per_page = 50\ntrust_cout = false\n"))
    [connector] = connectors_for("oruk", Settings(oruk_feeds_dir=tmp_path, oruk_rate=10_000,
                                                  oruk_feed_urls={"bristol": replay.oruk_url("bristol")}))
    assert isinstance(connector, OrukConnector)
    assert connector.warnings == ("bristol.toml: [feed] 'trust_cout' is not a key rehabmap reads: "
                                  "ignored (did you mean 'trust_count'?)",)
    outcomes = list(connector.fetch(MemoryState()))
    shipped = bristol_crawl[2]  # the outcomes of the feed read by its file as shipped
    assert connector.feed.trust_count and connector.complete and len(outcomes) == 819
    assert [kind(o) for o in outcomes] == [kind(o) for o in shipped]


@pytest.mark.parametrize("text, said", [
    ('trust_count = false\n[feed]\n', "'trust_count', above every table, is not a key rehabmap reads: ignored "
                                       "(did you mean 'trust_count' in [feed]?)"),
    ('[feed]\nper_pages = 100\n', "[feed] 'per_pages' is not a key rehabmap reads: ignored (did you mean 'per_page'?)"),
    ('[feed]\n[feed.cover]\nvcfse = ["E06000023"]\n',
     "[feed] 'cover' is not a key rehabmap reads: ignored (did you mean 'covers'?)"),
    ('[feed]\n[term]\n"Mental health" = "vcfse"\n',
     "[term] is not a table rehabmap reads: ignored (did you mean 'terms'?)"),
    ('[feed]\nowner = "Bristol City Council"\n', "[feed] 'owner' is not a key rehabmap reads: ignored"),
])
def test_each_key_of_a_feed_file_rehabmap_does_not_read_is_named(tmp_path, text, said):
    """Above every table, in [feed] (a table under it too) and as a table of its own: each key the loader does not
    read is named with the file and the table, and the nearest key it reads where one is close. The file reads."""
    path = tmp_path / "town.toml"
    path.write_text(text.replace("[feed]\n", '[feed]\nlabel="x"\nurl="u"\npaging="v1"\nlicence="l"\nattribution="a"\n'))
    assert load_feed(path).ignored == (f"town.toml: {said}",)


@pytest.mark.parametrize("text, error, said", [
    ('[feed]\nlable="x"\nurl="u"\npaging="v1"\nlicence="l"\nattribution="a"\n', "[feed] needs label",
     ("[feed] 'lable' is not a key rehabmap reads: ignored (did you mean 'label'?)",)),
    ('pagin="v1"\n[feed]\nlabel="x"\nurl="u"\nlicence="l"\nattribution="a"\n', "[feed] needs paging",
     ("'pagin', above every table, is not a key rehabmap reads: ignored (did you mean 'paging' in [feed]?)",)),
    ('feed = "x"\n[term]\n"A" = "vcfse"\n', "[feed] must be a table of entries",
     ("[term] is not a table rehabmap reads: ignored (did you mean 'terms'?)",)),
    ('[feed]\nlabel = "York\n', "cannot read the feed file", ()),
])
def test_a_feed_file_that_cannot_be_used_names_the_keys_rehabmap_does_not_read(tmp_path, text, error, said):
    """A file that parses yet cannot be used: its error comes with each key rehabmap does not read, where a required
    key misspelt is often the cause (before, they were named only once the file was mended). A file that does not
    parse has no keys to name."""
    path = tmp_path / "town.toml"
    path.write_text(text)
    with pytest.raises(FeedError, match=re.escape(error)) as caught:
        load_feed(path)
    assert caught.value.ignored == tuple(f"town.toml: {line}" for line in said)


@pytest.mark.parametrize("path", sorted((ROOT / "mappings" / "feeds").glob("*.toml")), ids=lambda p: p.name)
def test_every_feed_file_shipped_has_only_keys_rehabmap_reads(path):
    assert load_feed(path).ignored == ()


def test_a_feed_that_gives_no_count_or_only_its_last_flag_is_read_whole(replay):
    """ORUK feeds need not give `totalElements` or `totalPages`: without them nothing is checked against a count,
    and a page's `last` alone says where the listing ends. Before, a page without `totalPages` was read as the
    only page whatever its `last` said: 769 of Bristol's 819 services were never listed."""
    replay.alter("/oruk/bristol/services", lambda query, page: {
        k: v for k, v in page.items() if k not in ("totalElements", "totalPages")})
    connector = bristol(replay)
    outcomes = list(connector.fetch(MemoryState()))
    assert connector.complete and len(outcomes) == 819
    assert len([s for s in replay.seen("/oruk/bristol/services") if s.path == "/oruk/bristol/services"]) == 17


def test_hsds3_example_that_lists_more_than_it_counts_is_read(replay, tmp_path, feeds_dir):
    """HSDS 3's published example page counts 31 services (`total_items`) and lists 128 (one service, repeated):
    more than a listing counts is no contradiction (a listing may also grow while it is read), so the example,
    served with the counts it was recorded with, is read whole, as before."""
    recorded = json.loads((feeds_dir / "oruk" / "v3_test_service_list.json").read_text())
    assert (recorded["total_items"], recorded["total_pages"], len(recorded["contents"])) == (31, 1, 128)
    (tmp_path / "example.toml").write_text(
        '[feed]\nlabel = "HSDS 3 example"\nurl = "x"\npaging = "hsds3"\nper_page = 200\n'
        'licence = "CC-BY-4.0"\nattribution = "Open Referral"\n')
    [connector] = connectors_for("oruk", Settings(oruk_feeds_dir=tmp_path, oruk_rate=10_000,
                                                  oruk_feed_urls={"example": replay.oruk_url("hsds3")}))
    replay.alter("/oruk/hsds3/services", lambda query, page: {**page, "total_items": 31, "total_pages": 1})
    outcomes = list(connector.fetch(MemoryState()))
    assert connector.complete and len(outcomes) == 2  # the service, and the line naming its 127 repeats


def test_a_count_that_is_no_number_fails_the_crawl_naming_the_page(replay):
    """Page 2 gives `"totalPages": "four"` (the auditor's case). Before, int() raised ValueError: a traceback,
    and the run was left "unfinished" while sync-status said the last run applied. Now it is a source error
    naming the feed, the page, the key and its value, which the runner records as a failed run."""
    replay.alter("/oruk/bristol/services", page_of(2, lambda page: {"totalPages": "four"}))
    with pytest.raises(SourceError) as caught:
        list(bristol(replay).fetch(MemoryState()))
    assert caught.value.message == (
        f"Bristol City Council service directory answered {replay.oruk_url('bristol')}/services?page=2&per_page=50 "
        "with a page that cannot be read: its 'totalPages' is not a count: \"four\"; where the listing ends is not "
        "known, so nothing is applied.")
    replay.clear_faults()
    replay.alter("/oruk/bristol/services", page_of(2, lambda page: {"last": "no"}))
    with pytest.raises(SourceError, match=r"page that cannot be read: its 'last' is neither true nor false: \"no\""):
        list(bristol(replay).fetch(MemoryState()))


STATUTORY = "so reading it as VCFSE says nothing of its type"


def test_a_service_the_nhs_or_a_council_runs_is_not_typed_vcfse(bristol_crawl):
    """The feed's VCFSE terms and audience ("Mental Health" → vcfse) typed services the NHS or a council runs as
    voluntary-sector support, confirmed: "Avon and Wiltshire Mental Health Services" (organization "NHS": the
    trust's recovery teams), "Homeless Health Service" (NHS), "Care for Adults and Older People" (Bristol City
    Council). No voluntary or community organisation runs them, the importers' rule (`said_of`): now such a service
    is typed only by what else it says (the council's page, whose words name advocacy: inferred, for review), and
    otherwise has no type, for a maintainer to say (4 of Bristol's 152)."""
    _, _, outcomes = bristol_crawl[:3]
    reasons = {o.reason.split("' is ")[0].strip("'"): o.reason.split(", but ")[0].split("' is ")[1]
               for o in outcomes if isinstance(o, Refused) and o.unplaced}
    nhs = (f"of a type only a maintainer can say (run by the NHS: no voluntary or community organisation runs it, "
           f"{STATUTORY})")
    council = nhs.replace("the NHS", "a council")
    assert {name: why for name, why in reasons.items() if STATUTORY in why} == {
        "Avon and Wiltshire Mental Health Services": nhs, "Homeless Health Service": nhs,
        "Cost of Living service: Yate Warm Welcome Space - Poole Court": council,
        "South Gloucestershire Council Services": council}
    assert reasons["Care for Adults and Older People"] == (
        "advocacy (mentions mental health: typed advocacy by keyword, to be confirmed)")
    assert reasons["Bristol Mind"] == "vcfse (the feed's term, mapped to vcfse)"    # a charity: as before


def test_an_nhs_service_with_a_place_is_held_with_no_type(replay):
    """The trust's real list item, with the location its own description names (Kingswood Civic Centre, BS15 9TR),
    as a detail page would carry it: held for review with no type (unknown) and the evidence, never published as
    VCFSE; its provider is the NHS, from the feed's organization name."""
    feed = load_feed(ROOT / "mappings" / "feeds" / "bristol.toml")
    awp = next(i for i in replay.oruk["bristol"].items if i["name"] == "Avon and Wiltshire Mental Health Services")
    placed = {**awp, "service_at_locations": [{"id": "l1", "location": {
        "id": "l1", "name": "Kingswood Civic Centre", "physical_addresses": [
            {"address_1": "High Street", "city": "Kingswood", "postal_code": "BS15 9TR"}]}}]}
    item = map_service(feed, placed, "https://feed.example/services/x", 1, datetime.now(timezone.utc))
    assert isinstance(item, SourceItem) and item.type_status == "unknown"
    assert "service_type" not in item.candidate.fields and item.candidate.fields["provider_type"] == "nhs"
    assert item.field_sources["provider_type"] == "oruk-bristol:organization.name"
    assert [(e.field, e.value) for e in item.evidence] == [("pc_targetAudience", "Mental Health"),
                                                           ("organization.name", "NHS")]


def test_a_counselling_service_the_feed_tags_access_to_advocacy_is_not_typed_advocacy(data_dir):
    """The feed file mapped "Access to advocacy" to advocacy/community, confirmed. The feed gives the term to 4
    services of its service-at-location extract, each counselling or outreach, tagged with one template of terms
    ("Gambling addict; Mental illness; Separated; Access to advocacy; Improving mental health; …"): they read as
    advocacy, where a person looks for someone to speak up for them. Each real row, as the replay builds its detail
    page: now typed by its mental health terms (vcfse, confirmed)."""
    feed = load_feed(ROOT / "mappings" / "feeds" / "bristol.toml")
    with (data_dir / "feeds" / "oruk" / "bristol_services_at_locations.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if "access to advocacy" in r["taxonomy_of_services"].casefold()]
    typed = {}
    for row in rows:
        detail = bristol_detail({"id": row["sal_id"], "name": row["sal_name"], "description": ""}, row)
        refused = map_service(feed, detail, "u", 1, datetime.now(timezone.utc))
        assert isinstance(refused, Refused) and refused.unplaced    # the extract gives none of them a point
        typed[row["sal_name"]] = refused.reason.split("' is ")[1].split(", but ")[0]
    assert typed == dict.fromkeys(
        ("Annie Robinson Counselling", "Assertive Contact and Engagement Service (Barton Hill)", "ATSAC",
         "Avon Counselling and Psychotherapy Service"), "vcfse (the feed's term, mapped to vcfse)")


def test_the_reason_cites_the_term_that_chose_the_type(data_dir, tmp_path):
    """A feed file that maps one of a service's terms to advocacy and others to vcfse: the service is advocacy,
    and before, its refusal cited the first term it had ("advocacy (the feed's term, mapped to vcfse)")."""
    text = (ROOT / "mappings" / "feeds" / "bristol.toml").read_text()
    (tmp_path / "bristol.toml").write_text(text.replace('[terms]\n', '[terms]\n"Access to advocacy" = '
                                                        '"advocacy/community"\n'))
    feed = load_feed(tmp_path / "bristol.toml")
    with (data_dir / "feeds" / "oruk" / "bristol_services_at_locations.csv").open(newline="", encoding="utf-8") as f:
        atsac = next(r for r in csv.DictReader(f) if r["sal_name"] == "ATSAC")
    refused = map_service(feed, bristol_detail({"id": atsac["sal_id"], "name": "ATSAC", "description": ""}, atsac),
                          "u", 1, datetime.now(timezone.utc))
    assert isinstance(refused, Refused)
    assert refused.reason.startswith("'ATSAC' is advocacy (the feed's term, mapped to advocacy), but ")


def test_a_service_is_placed_by_whichever_of_its_locations_places_it(data_dir):
    """Bristol's service-at-location extract holds two locations of '5678 School Of Dance': one with no
    location at all (n/a), one with a point. A detail page lists them in the feed's order; before, the reader took
    only the first, so with the unplaced one first it read no place while the connector (any location) took the
    page as placed: the service was refused as having no place. Now either order reads the point, and the
    connector's test and the reader's choice are one rule (`rehabmap.oruk.places`)."""
    with (data_dir / "feeds" / "oruk" / "bristol_services_at_locations.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["sal_name"] == "5678 School Of Dance"]
    assert [r["latitude"] for r in rows] == ["51.5278298", "n/a"]
    item = {"id": rows[0]["sal_id"], "name": "5678 School Of Dance", "description": ""}
    # The replay's page shape, the second location without the point and the address its row has not got.
    [placed] = bristol_detail(item, rows[0])["service_at_locations"]
    unplaced = {"id": rows[1]["sal_id"], "location": {"name": item["name"], "physical_addresses": []},
                "regular_schedules": []}
    locations = [placed, unplaced]
    for order in (locations, locations[::-1]):
        detail = bristol_detail(item, rows[0]) | {"service_at_locations": order}
        fields, _ = oruk_to_fields(detail)
        assert _has_place(detail) and (fields["lat"], fields["lon"]) == (51.5278298, -2.4988395)


def test_a_service_listed_as_unchanged_since_its_page_was_read_is_not_fetched_again(bristol_crawl):
    """Every run fetched all 817 of Bristol's detail pages (834 requests) though nothing changed: a sync that keeps
    the directory current must be cheap to run often. Each list item says when its service last changed
    (`pc_metadata.date_modified`, a day): a later crawl fetches only the pages of services listed as changed since
    the day they were read, and still lists every page (a complete listing, which retires what the feed dropped)."""
    replay, _, first, state = bristol_crawl
    details = [s.path for s in replay.seen("/oruk/bristol/services/")]
    assert len(details) == 817 and "read_all" in state.states["oruk-bristol"]

    def crawl(**kwargs) -> tuple[list, list[str]]:
        asked = len(replay.seen())
        connector = bristol(replay)
        outcomes = list(connector.fetch(state, **kwargs))
        assert connector.complete
        return outcomes, [s.path for s in replay.seen()[asked:]]

    again, asked = crawl()
    assert len(asked) == 17 and all(path == "/oruk/bristol/services" for path in asked), "the list pages only"
    unchanged = [o for o in again if isinstance(o, Unchanged)]
    assert len(again) == len(first) and {o.source_id for o in unchanged} == {p.rsplit("/", 1)[1] for p in details}

    # A service the council edits today is listed with today's date: its page, and only its page, is read again.
    item = next(i for i in replay.oruk["bristol"].items if i["name"] == "Bristol Mind")
    dated = item["pc_metadata"]["date_modified"]
    item["pc_metadata"]["date_modified"] = datetime.now(timezone.utc).date().isoformat()
    try:
        edited, asked = crawl()
        assert asked.count("/oruk/bristol/services") == 17 and asked[-1] != "/oruk/bristol/services/" + item["id"]
        assert [p for p in asked if p != "/oruk/bristol/services"] == ["/oruk/bristol/services/" + item["id"]]
        assert not any(isinstance(o, Unchanged) and o.source_id == item["id"] for o in edited)
        # Edited again the same day, its date stays today's: a page read today is read again, never skipped; so is
        # one dated yesterday (a feed's day may be behind UTC's).
        _, asked = crawl()
        assert [p for p in asked if p != "/oruk/bristol/services"] == ["/oruk/bristol/services/" + item["id"]]
        item["pc_metadata"]["date_modified"] = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
        _, asked = crawl()
        assert [p for p in asked if p != "/oruk/bristol/services"] == ["/oruk/bristol/services/" + item["id"]]
    finally:
        item["pc_metadata"]["date_modified"] = dated
    # --full (and the weekly reading, or a changed feed file) reads every page again.
    _, asked = crawl(full=True)
    assert len(asked) == 17 + 817


def test_a_release_that_reads_oruk_differently_reads_every_page_at_its_next_run(bristol_crawl, monkeypatch):
    """A service refused by a reading is not stored, and while the feed lists it as unchanged its page is not read
    again: after a release that fixed how rehabmap reads ORUK (a location it could not place, a term it missed),
    Bristol's refused services waited up to FULL_READING_DAYS for the next full reading. A new `READER_VERSION`
    reads every page at the next run, and the run says why; the run after it reads what changed again."""
    replay, _, _, crawled = bristol_crawl
    state = MemoryState()
    state.states = {"oruk-bristol": crawled.load("oruk-bristol")}  # a copy: the other tests keep theirs

    def crawl() -> tuple[OrukConnector, list[str]]:
        asked = len(replay.seen())
        connector = bristol(replay)
        list(connector.fetch(state))
        assert connector.complete
        return connector, [s.path for s in replay.seen()[asked:] if s.path != "/oruk/bristol/services"]

    same, details = crawl()
    assert details == [] and same.read_all is None
    monkeypatch.setattr(oruk, "READER_VERSION", oruk.READER_VERSION + 1)  # the next release's reading
    released, details = crawl()
    assert len(details) == 817
    assert released.read_all == ("this release of rehabmap reads ORUK services differently, so what it refused "
                                 "before is read again")
    after, details = crawl()
    assert details == [] and after.read_all is None


def list_pages(replay) -> list[int]:
    """The numbers of Bristol's list pages asked for, in order."""
    return [int(seen.query["page"][0]) for seen in replay.seen("/oruk/bristol/services")
            if seen.path == "/oruk/bristol/services"]


def test_a_page_that_says_it_is_not_the_last_is_not_read_as_the_end_at_the_announced_last_page(replay):
    """Page 16 gives counts of a listing of 16 pages and 800 services (`totalPages`, `totalElements`, stale) while its
    `"last": false` says there is more, as there is: page 17's 19 services. Before, the count won: the crawl ended at
    page 16, complete, and a sync retired the 19 services it never asked for. Now a page that says it is not the last
    is not the end: page 17 is asked for, and the listing is read whole."""
    replay.alter("/oruk/bristol/services", page_of(16, lambda page: {"totalPages": 16, "totalElements": 800,
                                                                     "last": False}))
    connector = bristol(replay)
    outcomes = list(connector.fetch(MemoryState()))
    assert connector.complete and len(outcomes) == 819 and list_pages(replay) == list(range(1, 18))


def test_a_last_announced_page_that_says_there_is_more_is_settled_by_the_next_page(replay):
    """Page 17, the last of the 17 its `totalPages` announces, says `"last": false`. The next page settles it:
    empty, it proves the listing ended (complete); answering with services again (a feed that gives its last page
    for any page past it) it contradicts the pages the listing announces, and the crawl fails, retiring nothing,
    rather than asking for ever."""
    replay.alter("/oruk/bristol/services", page_of(17, lambda page: {"last": False}))
    connector = bristol(replay)
    assert len(list(connector.fetch(MemoryState()))) == 819 and connector.complete
    assert list_pages(replay)[-2:] == [17, 18]

    replay.clear_faults()
    replay.alter("/oruk/bristol/services", lambda query, page: {**page, "number": 17, "last": False, "content": [
        *replay.oruk["bristol"].items[800:]]} if query["page"] in (["17"], ["18"]) else page)
    again = bristol(replay)
    with pytest.raises(SourceContradiction, match=r"page=18&per_page=50 with a page that contradicts its own listing: "
                                                  r"page 18 lists services, yet the listing has 17 pages by its "
                                                  r"'totalPages'\. "):
        list(again.fetch(MemoryState()))
    assert not again.complete


def test_a_feed_that_gives_neither_its_last_page_nor_its_pages_is_read_to_an_empty_page(replay):
    """A feed whose pages say neither `last` nor `totalPages` (nor count their services). Before, its first page was
    read as its only one: the crawl was complete after 50 of Bristol's 819 services, and a sync retired the other
    769. Now only an empty page ends such a listing (page 18), and a feed that answers every page with the same
    services (it ignores `page`, and says nothing of its paging) fails the crawl rather than be read for ever."""
    replay.alter("/oruk/bristol/services", lambda query, page: {
        k: v for k, v in page.items() if k not in ("totalElements", "totalPages", "last")})
    connector = bristol(replay)
    assert len(list(connector.fetch(MemoryState()))) == 819 and connector.complete
    assert list_pages(replay) == list(range(1, 19))

    replay.clear_faults()
    first = replay.oruk["bristol"].items[:50]
    replay.alter("/oruk/bristol/services", lambda query, page: {"content": first})
    again = bristol(replay)
    with pytest.raises(SourceContradiction, match=r"page=2&per_page=50 with a page that contradicts its own listing: "
                                                  r"page 2 lists the same services as page 1, and no page says where "
                                                  r"the listing ends \(that it is the last, or its 'totalPages'\): "
                                                  r"the feed seems to ignore the page asked for\. "):
        list(again.fetch(MemoryState()))
    assert not again.complete


def test_a_null_in_a_list_is_said_where_it_is_in_words_a_publisher_can_act_on(replay):
    """Bristol's second page lists a null before its first service, and the detail page of that service gives a
    null among its locations and its contacts. Before, the run said "item is NoneType, not a service" and
    "cannot read the service: 'NoneType' object has no attribute 'get'": Python's words, naming neither the list
    nor the entry. Now each says, with the page and the service's id, which list holds the empty entry and where,
    and asks the feed's publisher to leave empty entries out."""
    first = replay.oruk["bristol"].items[50]
    replay.alter("/oruk/bristol/services", page_of(2, lambda page: {"content": [None, *page["content"]]}))
    detail = replay.oruk["bristol"].details[first["id"]]
    detail["service_at_locations"] = [None, *detail["service_at_locations"]]
    detail["contacts"] = [*(detail.get("contacts") or []), None]
    outcomes = list(bristol(replay).fetch(MemoryState()))

    [empty] = [o for o in outcomes if isinstance(o, Refused) and o.source_id is None and "null" in o.reason]
    assert empty.where.endswith("/services?page=2 item 51")
    assert empty.reason == ("the listing's entry is null, not a service: ask the feed's publisher to leave empty "
                            "entries out of its pages")
    [service] = [o for o in outcomes if isinstance(o, Refused) and o.source_id == first["id"]]
    assert service.where.endswith(f"/services/{first['id']}")
    assert service.reason == (
        "cannot read the service: its service_at_locations entry 1 and its contacts entry "
        f"{len(detail['contacts'])} are null, where each entry should be an object: ask the feed's publisher to "
        "leave empty entries out")


def test_a_refusal_staged_before_session_51_is_read_off_the_pathway_only_from_a_feed():
    """A refusal staged before session 51 has no cause: a feed reader's words ("not on the rehab pathway: …") are read
    as rehabmap's reading. Before, the same words from any other source's refusal were read so too; now only a
    feed's (`oruk-<name>`)."""
    from indexer.sync.codec import outcome_from_json

    reason = f"{oruk.OFF_PATHWAY}no term the feed file maps, and no words about mental health (its terms: none)"
    staged = {"source_id": "1", "where": "https://example.org/services/1", "reason": reason}
    assert outcome_from_json("refused", {**staged, "source": "oruk-bristol"}).off_pathway == "reading"
    for source in ("listed", "ods", "charity"):
        assert outcome_from_json("refused", {**staged, "source": source}).off_pathway == ""
