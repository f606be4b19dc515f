"""The maintainers' review queue, over the real Field House record (the one mental health hospital among the
103 real CQC records, only a candidate inpatient unit): in real Chromium a maintainer sees it beside its
evidence, accepts it, and it becomes searchable; in-process, the decisions the page refuses (bulk accept of
mixed types, a reject with no reason, a provider, a forged form) write nothing. Each runs on both stores:
the SQLite file, and PostgreSQL."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from playwright.sync_api import expect

from app.converge import Converger
from app.pending_rebuild import PENDING_FILE
from app.sync import converge
from indexer.precedence import source_precedence
from indexer.sync.review import ReviewQueue
from indexer.sync.store import SyncStore
from rehabmap import errors
from rehabmap.maintain.store import store_of
from rehabmap.record import id_in_path
from rehabmap.taxonomy import ServiceType
from tests.api.conftest import Clock
from tests.conftest import database_url
from tests.cqc_records import FIELD_HOUSE_ID
from tests.keepers.conftest import Keepers, csrf_of, make_keepers
from tests.keepers.maintainer_browser import signed_in_page
from tests.maintain.conftest import Site, cli_here, copy_site, make_site
from tests.sync.store_fixtures import (HELD_BACK_SAID, ListedConnector, Reads, both_lists_files, field_house_item,
                                       mistyped_supersedes, retired_once_read, runner_for)
from tests.web.browser import axe, shot
from web.keepers.words import AS_KEPT

LEVEL1 = "listed:1-112845365"  # Field House, proposed (inferred) as an inpatient rehabilitation unit, level 1
UNTYPED = "untyped:1-112845365"  # the same record from a source that proposes no type
FIND_NEAR = "/find/rehabilitation?where=DE55+7DT"
assert FIELD_HOUSE_ID.endswith(LEVEL1.split(":")[1])


def queued_site(root, sample_index, geodata_dir, data_dir, geography, url: str | None) -> Site:
    """A keepers' site (its store at `url`, or the SQLite file) whose review queue holds Field House twice:
    proposed as level 1, and with no type."""
    site = make_site(root / "home", sample_index, geodata_dir, data_dir, database_url=url)
    feeds = data_dir / "feeds"
    runner = runner_for(site.settings, geography)
    runner.run(ListedConnector([field_house_item(feeds, type_status="inferred",
                                                 service_type=ServiceType.inpatient_rehab_level1)]))
    untyped = field_house_item(feeds, type_status="unknown", service_type=None)
    origin = replace(untyped.candidate.origin, source="untyped")
    runner.run(ListedConnector([replace(untyped, candidate=replace(untyped.candidate, origin=origin))], name="untyped"))
    return site


def pending(keepers: Keepers) -> list[str]:
    return [i.service_id for i in ReviewQueue(SyncStore(store_of(keepers.site.settings))).items()]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def queued_once(request, sample_index, geodata_dir, data_dir, geography, tmp_path_factory) -> Site:
    """`queued_site` made once per module on each kind of store (before, once for each of the 26 tests on `queued`
    and for `queued_server`: its tokens, its organisations and two syncs), never changed: `queued` and
    `queued_server` each take a copy (`copy_site`)."""
    return queued_site(tmp_path_factory.mktemp("queued"), sample_index, geodata_dir, data_dir, geography,
                       database_url(request, request.param))


@pytest.fixture
def queued(request, queued_once, tmp_path) -> Keepers:
    return make_keepers(copy_site(queued_once, tmp_path / "home", request))


@pytest.fixture(scope="module")
def queued_server(request, queued_once, tmp_path_factory) -> Iterator[tuple[str, Keepers]]:
    from tests.web.site import serve

    keepers = make_keepers(copy_site(queued_once, tmp_path_factory.mktemp("review") / "home", request))
    with serve(keepers.app) as base_url:  # type: ignore[arg-type]
        yield base_url, keepers


def signed_in(keepers: Keepers, who: str = "maintainer"):
    client = keepers.client()
    keepers.sign_in(client, who)
    return client


# --- in-process: what the page refuses writes nothing -------------------------------------------------

def test_bulk_accept_is_refused_when_a_chosen_record_has_no_type_proposed(queued):
    """Before, a record with no type proposed, chosen alone or beside one proposed as level 1, was refused as if
    the two were proposed as different types ("… only when every record chosen is proposed as the same type")."""
    client = signed_in(queued)
    page = client.get("/keepers/review")
    assert page.status_code == 200 and "2 records await a decision" in page.text
    alone = client.post("/keepers/review/bulk", data={"csrf": csrf_of(page.text), "id": [UNTYPED], "action": "accept"})
    assert alone.status_code == 400 and "No type is proposed for a record chosen: open it and accept it as the type " \
        "it is" in html.unescape(alone.text)
    answer = client.post("/keepers/review/bulk", data={"csrf": csrf_of(page.text), "id": [LEVEL1, UNTYPED],
                                                       "action": "accept"})
    assert answer.status_code == 400
    assert "No type is proposed for a record chosen" in answer.text
    assert 'href="#id"' in answer.text and 'id="id"' in answer.text  # the error summary links to the first box
    assert answer.text.count(" checked>") == 2  # what was chosen is still chosen
    assert sorted(pending(queued)) == sorted([LEVEL1, UNTYPED])


def test_a_bulk_decision_reads_the_records_chosen_not_the_queue(queued):
    """Before, a bulk accept read the whole pending queue, each record of it and the facts about them, to learn the
    types proposed for the few chosen. It reads the records chosen alone: Untyped chosen, refused as no type is
    proposed for it, has read nothing of the other record in the queue (Field House proposed as level 1) before the
    page is shown again."""
    opened = queued.app.state.open_review
    stores: list[Reads] = []

    def counted() -> ReviewQueue:
        queue = opened()
        queue.store = Reads(queue.store.database)
        stores.append(queue.store)
        return queue

    queued.app.state.open_review = counted
    client = signed_in(queued)
    csrf = csrf_of(client.get("/keepers/review").text)
    stores.clear()
    alone = client.post("/keepers/review/bulk", data={"csrf": csrf, "id": [UNTYPED], "action": "accept"})
    assert alone.status_code == 400 and "No type is proposed for a record chosen" in html.unescape(alone.text)
    store = stores[0]  # the decision's (the page then shown again, the whole queue, opens its own)
    untyped = tuple(UNTYPED.split(":"))
    assert set(store.records_read) == set(store.reviews_read) == {untyped}, "the record chosen alone"
    assert sorted(pending(queued)) == sorted([LEVEL1, UNTYPED])


def test_accept_all_reads_the_queue_of_its_source_once(queued, monkeypatch):
    """Before, `rehabmap review accept --all --source S` read the source's pending queue (each row's record, and the
    facts about them) twice: for the records the filters select, and again for which of them have a type proposed.
    It reads it once, and accepts as before."""
    asked: list[dict] = []
    reviews = SyncStore.reviews

    def counted(self, **kwargs):
        asked.append(kwargs)
        return reviews(self, **kwargs)

    monkeypatch.setattr(SyncStore, "reviews", counted)
    done = cli_here(queued.site, "review", "accept", "--all", "--source", "listed")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"accepted {LEVEL1} (Field House) as ") and done.stdout.endswith("1 accepted\n")
    assert [a for a in asked if a.get("source") == "listed"] == [{"states": ("pending",), "source": "listed",
                                                                    "evidence_changed": False}]
    assert pending(queued) == [UNTYPED]


def test_bulk_reject_needs_a_reason_then_rejects_all_chosen_with_it(queued):
    client = signed_in(queued)
    csrf = csrf_of(client.get("/keepers/review").text)
    refused = client.post("/keepers/review/bulk", data={"csrf": csrf, "id": [LEVEL1, UNTYPED], "action": "reject",
                                                        "reason": ""})
    assert refused.status_code == 400 and 'href="#reason"' in refused.text and "Give a reason" in refused.text
    assert len(pending(queued)) == 2

    done = client.post("/keepers/review/bulk", data={"csrf": csrf, "id": [LEVEL1, UNTYPED], "action": "reject",
                                                     "reason": "acute ward, not rehabilitation"})
    assert done.status_code == 303 and "Rejected+2" in done.headers["location"]
    assert pending(queued) == []
    audit, _ = queued.site.directory.audit.entries(resource_id=UNTYPED)
    assert [(a.action, a.field, a.new) for a in audit][-1] == ("reject", "review_reason",
                                                               "acute ward, not rehabilitation")
    assert "maintainer of the tests" in audit[-1].actor


def test_a_reason_longer_than_the_audit_log_keeps_is_refused_one_within_it_kept_whole(queued):
    """Before, the review pages cut a reason to 200 characters: one of 501 was accepted, 200 of it stored, where the
    command line and the API refuse it; one of 300 was stored cut mid-sentence. Now a reason is kept to the audit
    log's own limit (500), whole, and one longer is refused against its box, typed as it was, nothing decided."""
    client = signed_in(queued)
    page = client.get(f"/keepers/review/{LEVEL1}")
    assert re.search(r'name="reason"', page.text) and not re.search(r'name="reason"[^>]* maxlength', page.text)
    csrf = csrf_of(page.text)
    too_long = "acute ward, not rehabilitation; " * 15 + "x" * 21
    assert len(too_long.strip()) == 501
    for path, data in ((f"/keepers/review/{LEVEL1}", {}), ("/keepers/review/bulk", {"id": [LEVEL1, UNTYPED]})):
        refused = client.post(path, data={"csrf": csrf, "action": "reject", "reason": too_long, **data})
        assert refused.status_code == 400, path
        said = f"The reason must be 500 characters or fewer: it has 501, {AS_KEPT}"
        assert f'<a href="#reason">{said}</a>' in refused.text
        assert f'value="{too_long.strip()}"' in refused.text
        assert sorted(pending(queued)) == sorted([LEVEL1, UNTYPED])
    reason = "acute ward, not rehabilitation: the unit's own page says it admits from A&E. " * 4
    assert 200 < len(reason.strip()) <= 500
    assert client.post(f"/keepers/review/{LEVEL1}", data={"csrf": csrf, "action": "reject",
                                                          "reason": reason}).status_code == 303
    audit, _ = queued.site.directory.audit.entries(resource_id=LEVEL1)
    assert (audit[-1].field, audit[-1].new) == ("review_reason", reason.strip())


def test_an_untyped_record_is_accepted_only_as_a_type_chosen(queued):
    client = signed_in(queued)
    page = client.get(f"/keepers/review/{UNTYPED}")
    assert page.status_code == 200 and "no type: neither its source nor what it says names one" in page.text
    answer = client.post(f"/keepers/review/{UNTYPED}", data={"csrf": csrf_of(page.text), "action": "accept",
                                                             "type": "", "subtype": ""})
    assert answer.status_code == 400 and 'href="#type"' in answer.text
    assert UNTYPED in pending(queued)
    answer = client.post(f"/keepers/review/{UNTYPED}", data={"csrf": csrf_of(page.text), "action": "accept",
                                                             "type": "community_rehab_team", "subtype": ""})
    assert answer.status_code == 303
    assert UNTYPED not in pending(queued)
    assert "It is now accepted" in client.get(answer.headers["location"]).text


def test_a_record_not_synced_is_refused_saying_where_the_queue_is_not_a_command(queued):
    """A record no sync holds, opened or chosen, was refused with "'rehabmap review list' shows the queue", a
    command a maintainer on a web page cannot run. Now the page says the review queue lists the records awaiting
    a decision (the item's page with the way back to it); the command line still names the command."""
    client = signed_in(queued)
    fact = "No synced record 'listed:1-000'."
    opened = client.get("/keepers/review/listed:1-000")
    assert opened.status_code == 404 and "<h1>Not in the review queue</h1>" in opened.text
    assert f"<p>{fact} The review queue lists the records awaiting a decision.</p>" in html.unescape(opened.text)
    assert '<a href="/keepers/review">Back to the review queue</a>' in opened.text
    chosen = client.post("/keepers/review/bulk", data={"csrf": csrf_of(client.get("/keepers/review").text),
                                                       "id": [LEVEL1, "listed:1-000"], "action": "reject",
                                                       "reason": "not rehabilitation"})
    assert chosen.status_code == 400
    assert f"{fact} The review queue lists the records awaiting a decision.</a>" in html.unescape(chosen.text)
    assert sorted(pending(queued)) == sorted([LEVEL1, UNTYPED])
    command = cli_here(queued.site, "review", "show", "listed:1-000")
    assert (command.returncode, command.stderr) == (2, f"error: {fact} 'rehabmap review list' shows the queue.\n")


def test_a_decision_refused_for_its_record_is_filed_against_the_record_not_a_box_it_does_not_concern(queued):
    """A reject naming a record not in the queue, chosen on the list, was filed against the reason's box (its error
    summary linked to #reason, a reason that was fine); a subtype refused on a record's page against the type's.
    Now each is filed where it belongs: the records chosen (#id), the subtype's box; one on a record's own page that
    the queue does not hold is a page saying so. Nothing is decided."""
    client = signed_in(queued)
    csrf = csrf_of(client.get("/keepers/review").text)
    chosen = client.post("/keepers/review/bulk", data={"csrf": csrf, "id": [LEVEL1, "listed:1-000"],
                                                       "action": "reject", "reason": "not rehabilitation"})
    assert chosen.status_code == 400
    assert "<a href=\"#id\">No synced record 'listed:1-000'." in html.unescape(chosen.text)
    assert 'href="#reason"' not in chosen.text and 'value="not rehabilitation"' in chosen.text
    alone = client.post("/keepers/review/listed:1-000", data={"csrf": csrf, "action": "reject",
                                                             "reason": "not rehabilitation"})
    assert alone.status_code == 404 and "<h1>Not in the review queue</h1>" in alone.text
    subtype = client.post(f"/keepers/review/{LEVEL1}", data={"csrf": csrf, "action": "accept",
                                                             "type": "supported_accommodation", "subtype": "imha"})
    assert subtype.status_code == 400 and '<a href="#subtype">' in subtype.text and 'href="#type"' not in subtype.text
    assert sorted(pending(queued)) == sorted([LEVEL1, UNTYPED])


def test_a_record_its_source_types_is_refused_naming_its_service_page_not_an_api_route(queued, data_dir, geography):
    """A synced record whose source confirms its type never enters the queue; opened or chosen there it was refused
    with "Change or retire it with the maintainers' API (PATCH or retire /maintain/services/{id})", a route a
    maintainer on a web page cannot call. Now the page says where it is changed, with a link to its page under
    Services; the command line names the API's routes, which have no command of their own. The page answers the
    refusal's own status, 400 (it was a 404, as if the record were not there)."""
    confirmed = field_house_item(data_dir / "feeds", type_status="confirmed",
                                 service_type=ServiceType.inpatient_rehab_level1)
    origin = replace(confirmed.candidate.origin, source="typed")
    runner_for(queued.site.settings, geography).run(
        ListedConnector([replace(confirmed, candidate=replace(confirmed.candidate, origin=origin))], name="typed"))
    typed = "typed:1-112845365"
    fact = f"'{typed}' is not in the review queue: typed confirms its type."
    client = signed_in(queued)
    opened = client.get(f"/keepers/review/{typed}")
    assert opened.status_code == 400 and "<h1>Not in the review queue</h1>" in opened.text
    assert f"<p>{fact} Change or retire it on its own page under Services.</p>" in html.unescape(opened.text)
    assert f'<a href="/keepers/services/{typed}">Change or retire this service</a>' in opened.text
    assert client.get(f"/keepers/services/{typed}").status_code == 200
    chosen = client.post("/keepers/review/bulk", data={"csrf": csrf_of(client.get("/keepers/review").text),
                                                       "id": [LEVEL1, typed], "action": "reject",
                                                       "reason": "not rehabilitation"})
    assert chosen.status_code == 400
    assert f"{fact} Change or retire it on its own page under Services.</a>" in html.unescape(chosen.text)
    assert sorted(pending(queued)) == sorted([LEVEL1, UNTYPED])
    command = cli_here(queued.site, "review", "show", typed)
    assert (command.returncode, command.stderr) == (2, f"error: {fact} PATCH /maintain/services/{{id}} of the "
                                                       "maintainers' API changes it; POST /maintain/services/{id}/"
                                                       "retire retires it.\n")


def test_a_provider_may_not_see_the_queue_and_a_forged_form_decides_nothing(queued):
    provider = signed_in(queued, "provider_a")
    assert provider.get("/keepers/review").status_code == 403
    maintainer = signed_in(queued)
    forged = maintainer.post(f"/keepers/review/{LEVEL1}", data={"csrf": "0" * 64, "action": "reject",
                                                                "reason": "forged from another site"})
    assert forged.status_code == 403
    assert len(pending(queued)) == 2


# --- real Chromium: accept, and it is searchable --------------------------------------------------------

@pytest.mark.slow
def test_a_maintainer_accepts_a_review_item_and_it_becomes_searchable(browser, queued_server, axe_source):
    base_url, keepers = queued_server
    with signed_in_page(browser, base_url, keepers.site.tokens["maintainer"], "/keepers/review") as page:
        assert page.get_by_role("heading", level=1).inner_text() == "Review queue"
        assert axe(page, axe_source) == []
        shot(page, "25-keepers-review-queue")
        page.goto(base_url + FIND_NEAR)
        assert page.get_by_role("link", name="Field House").count() == 0  # held for review: not shown

        page.goto(base_url + "/keepers/review")
        page.get_by_role("link", name="Field House").first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Field House")
        # The record and its evidence side by side.
        expect(page.get_by_role("heading", name="The evidence")).to_be_visible()
        expect(page.get_by_text("a mental health hospital: a candidate inpatient rehabilitation unit")).to_be_visible()
        assert axe(page, axe_source) == []
        shot(page, "26-keepers-review-item")
        # Keyboard only: the type is chosen and the form sent without a mouse.
        page.get_by_label("Accept as").focus()
        page.keyboard.press("Tab")  # to the subtype
        page.keyboard.press("Tab")  # to the button
        assert page.evaluate("() => document.activeElement.textContent.trim()") == "Accept as this type"
        page.keyboard.press("Enter")
        page.wait_for_url("**done=Accepted*")
        expect(page.get_by_text("It is now accepted.")).to_be_visible()
        assert axe(page, axe_source) == []
        # Then edit it: the accepted record is a service like any other.
        page.get_by_role("link", name="Change this service").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^Field House"))
        assert page.get_by_label("Type", exact=True).input_value() == "inpatient_rehab_level1"

        page.goto(base_url + FIND_NEAR)
        assert page.get_by_role("link", name="Field House").count() >= 1


@pytest.mark.slow
def test_the_review_queue_works_without_javascript(browser, queued_server):
    base_url, keepers = queued_server
    with signed_in_page(browser, base_url, keepers.site.tokens["maintainer"], "/keepers/review",
                        javascript=False) as page:
        page.get_by_role("button", name="Reject the chosen").click()
        expect(page.get_by_role("link", name="Choose at least one record")).to_be_visible()
        page.get_by_label("Choose Field House").last.check()
        page.get_by_label("Reason for rejecting").fill("no type, and a hospital we do not list")
        page.get_by_role("button", name="Reject the chosen").click()
        expect(page.get_by_text("Rejected 1 record.")).to_be_visible()


def test_a_decision_on_a_record_a_run_retired_meanwhile_is_refused_on_its_page_and_the_retirement_stands(queued):
    """A sync run (another process) retiring Field House after the page's decision read it, before it wrote: the
    decision is refused against the record, saying what changed, and nothing is decided. Before, the decision wrote
    the record back whole, active, undoing the run."""
    settings, opener = queued.site.settings, queued.app.state.open_review

    def opened_then_a_run_retires_it() -> ReviewQueue:
        queue = opener()
        retired_once_read(queue.store, settings, LEVEL1, "closed")
        return queue

    client = signed_in(queued)
    page = client.get(f"/keepers/review/{LEVEL1}")
    queued.app.state.open_review = opened_then_a_run_retires_it
    refused = client.post(f"/keepers/review/{LEVEL1}", data={"csrf": csrf_of(page.text), "action": "accept",
                                                             "type": "inpatient_rehab_level1", "subtype": ""})
    queued.app.state.open_review = opener
    assert refused.status_code == 400
    assert ("Field House changed at its source while you decided (now retired: closed): look at it again; nothing "
            "was decided.") in html.unescape(refused.text)
    [after] = SyncStore(store_of(settings)).records(service_ids=[LEVEL1])
    assert (after.status, after.retired_reason) == ("retired", "closed")
    assert LEVEL1 in pending(queued)


def test_a_decision_goes_through_the_servers_own_index_without_loading_another(queued, monkeypatch):
    """The queue is opened per request over the server's open parts: a decision writes through the index the
    server searches, already loaded, instead of a new backend that loads the whole index on its first read."""
    from search.embedded import EmbeddedIndex

    state = queued.app.state.rehabmap
    state.backend.info()  # the server's index, loaded as after its first search
    loads: list[EmbeddedIndex] = []
    load = EmbeddedIndex._load
    monkeypatch.setattr(EmbeddedIndex, "_load", lambda self: loads.append(self) or load(self))
    client = signed_in(queued)
    page = client.get(f"/keepers/review/{LEVEL1}")
    answer = client.post(f"/keepers/review/{LEVEL1}", data={"csrf": csrf_of(page.text), "action": "accept",
                                                            "type": "inpatient_rehab_level1", "subtype": ""})
    assert answer.status_code == 303, answer.text
    assert state.backend.get(LEVEL1).service_type == "inpatient_rehab_level1"
    assert loads == []


def test_a_decision_stored_whose_live_write_is_refused_says_so_and_searches_follow_once_mended(
        queued, tmp_path, monkeypatch, caplog):
    """A decision is committed before its live write reads which source supersedes which; with a mapping's
    `supersedes` put wrong, that write is refused. Before, the keeper was told the decision was refused, the record
    still on the page as undecided, where it was saved; and the server's log named no mapping. Now the page says it
    is saved and not yet shown, the log names the mapping file, and the live index follows once it is mended. The
    page names the mapping and its key in the Sources page's words, never its folder: before, it said "a mapping on
    the server is wrong, which the server's log names", naming none."""
    mapping = mistyped_supersedes(tmp_path, monkeypatch)
    client = signed_in(queued)
    csrf = csrf_of(client.get(f"/keepers/review/{LEVEL1}").text)
    with caplog.at_level(logging.ERROR, logger="rehabmap.api"):
        accepted = client.post(f"/keepers/review/{LEVEL1}", data={"csrf": csrf, "action": "accept",
                                                                   "type": "inpatient_rehab_level1", "subtype": ""})
        rejected = client.post("/keepers/review/bulk", data={"csrf": csrf, "id": [UNTYPED], "action": "reject",
                                                             "reason": "the same ward, listed twice"})

    assert (accepted.status_code, rejected.status_code) == (303, 303), accepted.text
    item_page, list_page = (html.unescape(" ".join(client.get(r.headers["location"]).text.split()))
                            for r in (accepted, rejected))
    assert re.search(r"Accepted\. It is now accepted\. " + HELD_BACK_SAID, item_page), item_page
    assert re.search(r"Rejected 1 record\. " + HELD_BACK_SAID, list_page), list_page
    assert str(mapping.parent) not in item_page + list_page
    assert pending(queued) == [], "both decisions are saved"
    state = queued.app.state.rehabmap
    assert state.backend.get(LEVEL1) is None, "not yet in searches"
    logged = [r.getMessage() for r in caplog.records if r.name == "rehabmap.api"]
    assert len(logged) == 1 and logged[0].startswith(
        "1 decision is stored, but not yet shown in searches: mapping nhs_website_hospitals_2018.toml: [source] "
        "supersedes names 'nhs-hospitals-2105', which no mapping in mappings/ gives;") and logged[0].endswith(
        f"The live index follows once that is put right, at the next sync, review decision or server start. "
        f"({mapping})"), logged

    decided = cli_here(queued.site, "review", "reject", UNTYPED, "--reason", "listed twice: the same ward")
    assert decided.returncode == 2 and decided.stderr.startswith(
        "error: 1 decision is stored, but not yet shown in searches: mapping nhs_website_hospitals_2018.toml: ") and (
        decided.stderr.rstrip().endswith(f"({mapping})")), decided.stderr
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rehabmap.api"):  # the server's start, then its catch-up's looks
        assert [converge(state) for _ in range(3)] == [0, 0, 0]
    logged = [r.getMessage() for r in caplog.records if r.name == "rehabmap.api"]
    # told once a minute at most, as every problem with a file of the server's: before, at each look
    assert len(logged) == 1 and logged[0].startswith(
        "what earlier runs and review decisions applied is stored, but not yet shown in searches: mapping "
        "nhs_website_hospitals_2018.toml: [source] supersedes names 'nhs-hospitals-2105'") and logged[0].endswith(
        f"({mapping})"), logged

    monkeypatch.undo()  # the mapping put right: the server's catch-up (`app.converge`) writes what was decided
    assert converge(state) >= 1
    assert state.backend.get(LEVEL1).service_type == "inpatient_rehab_level1"


def level1_accepted(queued: Keepers) -> tuple[Any, str]:
    """Field House accepted as an inpatient rehabilitation unit, level 1, on its review page by a signed-in
    maintainer: that client, and its page's CSRF token."""
    client = signed_in(queued)
    csrf = csrf_of(client.get(f"/keepers/review/{LEVEL1}").text)
    accepted = client.post(f"/keepers/review/{LEVEL1}", data={"csrf": csrf, "action": "accept",
                                                               "type": "inpatient_rehab_level1", "subtype": ""})
    assert accepted.status_code == 303, accepted.text
    return client, csrf


def test_the_servers_catch_up_held_back_by_a_mapping_tries_again_only_once_the_mapping_or_the_store_changes(
        queued, tmp_path, monkeypatch, caplog):
    """While a mapping's `supersedes` put wrong holds a decision back, /health does not wake the server's catch-up,
    but its timer's look did, every 30 seconds: each took the index lock and read the records the index lacks, only
    to be refused. Now a look that finds neither the mapping's refusal nor the store's applied changes changed since
    its last refused try leaves it; it tries once more when a new decision is stored, when the mapping is put wrong
    another way, and when it is mended, which writes what was decided. Tries counted by the store's reads of the
    records the index lacks (`SyncStore.changed_since`, still read through); the operator is told of the refusal as
    when each look tried."""
    folder = source_precedence.__defaults__
    mapping = mistyped_supersedes(tmp_path, monkeypatch)
    clock = Clock()
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog(clock=clock))
    client, csrf = level1_accepted(queued)
    state = queued.app.state.rehabmap
    looker = Converger(state)
    tries: list[int] = []
    changed_since = SyncStore.changed_since
    monkeypatch.setattr(SyncStore, "changed_since",
                        lambda store, revision: tries.append(revision) or changed_since(store, revision))

    caplog.clear()  # the decision's own refusal
    with caplog.at_level(logging.ERROR, logger="rehabmap.api"):
        assert [looker.look() for _ in range(3)] == [0, 0, 0]
        clock.now += 60
        assert looker.look() == 0
    assert len(tries) == 1, "tried once, then left while nothing changed"
    logged = [r.getMessage() for r in caplog.records if r.name == "rehabmap.api"]
    # the operator told as when each look tried: once a minute at most, with the looks that met it unlogged between
    assert len(logged) == 2 and all(line.startswith(
        "what earlier runs and review decisions applied is stored, but not yet shown in searches: mapping "
        "nhs_website_hospitals_2018.toml: [source] supersedes names 'nhs-hospitals-2105'") for line in logged) and (
        logged[1].endswith(f"({mapping}) [met 2 more times since, unlogged]")), logged

    again = client.post(f"/keepers/review/{UNTYPED}", data={"csrf": csrf, "action": "accept",
                                                             "type": "inpatient_rehab_level1", "subtype": ""})
    assert again.status_code == 303, again.text
    tries.clear()  # the decision's own live write was refused too
    assert [looker.look() for _ in range(2)] == [0, 0]
    assert len(tries) == 1, "a new change stored: tried again, once"

    mapping.write_text(mapping.read_text(encoding="utf-8").replace("nhs-hospitals-2105", "nhs-hospitals-2106"),
                       encoding="utf-8")
    assert [looker.look() for _ in range(2)] == [0, 0]
    assert len(tries) == 2, "the mapping put wrong another way: tried again, once"

    monkeypatch.setattr(source_precedence, "__defaults__", folder)  # the mapping mended
    assert looker.look() >= 1
    assert state.backend.get(LEVEL1).service_type == "inpatient_rehab_level1"
    assert looker.look() == 0 and len(tries) == 3, "caught up: nothing behind, nothing read"


def test_a_rebuild_left_that_cannot_be_finished_holds_no_look_of_the_servers_from_catching_the_index_up(
        queued, tmp_path, monkeypatch, caplog):
    """A decision stored and not yet shown (a mapping's `supersedes` put wrong refused its live write, then mended),
    and beside it a rebuild's pending file that cannot be read (cut off as a full disk leaves it). Each look first
    finishes a rebuild left so; before, its error ended the look, so no look wrote the index again while the file
    stayed. Now the operator is told, once a minute at most, and the look goes on to write the decision."""
    folder = source_precedence.__defaults__
    mistyped_supersedes(tmp_path, monkeypatch)
    level1_accepted(queued)
    state = queued.app.state.rehabmap
    assert state.backend.get(LEVEL1) is None, "held back from searches"
    monkeypatch.setattr(source_precedence, "__defaults__", folder)  # the mapping mended
    (state.settings.home / PENDING_FILE).write_text('{"at": "2026-12-0', encoding="utf-8")
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog(clock=Clock()))

    with caplog.at_level(logging.ERROR, logger="rehabmap.api"):
        assert Converger(state).look() >= 1
        assert Converger(state).look() == 0

    assert state.backend.get(LEVEL1).service_type == "inpatient_rehab_level1"
    logged = [r.getMessage() for r in caplog.records if "rebuild cut short" in r.getMessage()]
    assert logged == ["a rebuild cut short could not be finished (JSONDecodeError: Unterminated string starting at: "
                      "line 1 column 8 (char 7)); the server goes on catching the live index up, and tries again at "
                      "its next look"], logged


def test_the_history_of_a_service_no_one_has_is_a_404(queued):
    """Before, `/keepers/history/sample:nope` answered 200, "No change has been made to it here: it is as its
    source gives it", of a service that does not exist."""
    client = signed_in(queued)
    answer = client.get("/keepers/history/sample:nope")
    assert answer.status_code == 404 and "No such service" in answer.text and "sample:nope" in answer.text
    assert client.get("/keepers/history/sample:leeds-recovery-college").status_code == 200


@pytest.fixture(scope="module")
def both_lists_site(sample_index, geodata_dir, data_dir, tmp_path_factory) -> Site:
    """A keepers' site whose review queue holds the rows of both real NHS hospital lists (521 await a decision),
    made once per module (before, once for each of the three tests below) and never changed: each test that
    starts from it takes a copy (`both_lists_keepers`)."""
    site = make_site(tmp_path_factory.mktemp("both-lists") / "home", sample_index, geodata_dir, data_dir)
    done = cli_here(site, "index", *both_lists_files(data_dir), "--no-progress")
    assert done.returncode == 0, done.stderr
    return site


@pytest.fixture
def both_lists_keepers(both_lists_site, tmp_path, request) -> Keepers:
    """The keepers' pages over a copy of its own of `both_lists_site`, which a test may write to."""
    return make_keepers(copy_site(both_lists_site, tmp_path / "home", request))


def test_a_hospital_both_lists_give_under_two_names_says_so_on_its_page_and_in_the_queue(both_lists_keepers):
    """Before, Stockton Hall Hospital, NMV02 in both NHS hospital lists but named 'Partnerships in Care Stockton Hall
    Hospital' in 2014–15, sat in the queue twice, its page saying nothing of the other. Each page, and the queue
    beside each, now names the other with a link to it and why; Cygnet Hospital Bury (once Alpha Hospital Bury) too."""
    keepers = both_lists_keepers
    client = signed_in(keepers)

    page = client.get("/keepers/review/nhs-hospitals-2015:NMV02")

    assert page.status_code == 200
    hint = html.unescape(re.sub(r"\s+", " ", page.text))
    assert ('Possibly the same service as <a href="/keepers/review/nhs-hospitals-2018:NMV02">Stockton Hall Hospital</a>'
            " (nhs-hospitals-2018:NMV02, NHS website hospital list (September 2018)): both sources give it the ODS "
            "code NMV02; the same postcode, YO32 9UN, and a similar name.") in hint
    listed = html.unescape("".join(client.get("/keepers/review", params={"page": n}).text for n in range(1, 7)))
    assert ('Possibly the same service as <a href="/keepers/review/nhs-hospitals-2015:NVR01">Alpha Hospital Bury</a>: '
            "the same postcode, BL8 2BS, and a similar name") in listed


def test_the_api_names_a_held_records_page_in_the_queue_as_the_pages_link_it(sample_index, geodata_dir, data_dir,
                                                                              geography, tmp_path):
    """A source's own id may hold what a path must encode (an ORUK feed's ids are the feed's). Before, the API's 404
    for a change of a held record named its page in the review queue with the id as it is ("/keepers/review/listed:
    Maison-é#2", which no client can follow: the '#' ends the path); now it names it as the pages link it."""
    from urllib.parse import quote

    keepers = make_keepers(make_site(tmp_path / "home", sample_index, geodata_dir, data_dir))
    item = field_house_item(data_dir / "feeds", type_status="inferred", service_type=ServiceType.inpatient_rehab_level1)
    origin = replace(item.candidate.origin, source_id="Maison-é#2")
    runner_for(keepers.site.settings, geography).run(
        ListedConnector([replace(item, candidate=replace(item.candidate, origin=origin))]))
    service_id = "listed:Maison-é#2"
    assert pending(keepers) == [service_id]
    page_link = re.search(r'href="(/keepers/review/listed:[^"]+)"', signed_in(keepers).get("/keepers/review").text)
    assert page_link and page_link.group(1) == "/keepers/review/listed:Maison-%C3%A9%232"
    answer = keepers.client().patch(f"/maintain/services/{quote(service_id, safe=':')}", json={"phone": "01773 000000"},
                                    headers=keepers.site.auth("maintainer"))
    assert answer.status_code == 404 and answer.json()["error"]["message"].endswith(
        f"its page in the keepers' review queue, {page_link.group(1)}.")


LEGEND = re.compile(r"(\d+) records await a decision, oldest first: (\d+) to (\d+)")


def shown_rows(text: str) -> list[str]:
    """The records a queue page lists, by their boxes to choose them."""
    return re.findall(r'name="id" type="checkbox" value="([^"]+)"', text)


def test_a_long_queue_is_shown_a_page_at_a_time_with_hints_for_that_page_alone(both_lists_keepers, monkeypatch):
    """Before, the queue page listed every row at once (521 with both real NHS hospital lists held) and worked out
    the others each may be for all of them. It lists 100 at a time, oldest first, with the NHS.UK Previous and
    Next links, reads the records of the page's rows alone and works the others out for those alone; a decision
    made on a page goes back to it, and one refused shows that page again with what was chosen."""
    keepers = both_lists_keepers
    everything = [row.key for row in SyncStore(store_of(keepers.site.settings)).reviews(states=("pending",))]
    assert len(everything) == 521
    read: list[tuple[str, str]] = []
    asked: list[list[tuple[str, str]]] = []
    records, alike = SyncStore.records, SyncStore.alike

    def counted_records(self, *args, **kwargs):
        found = records(self, *args, **kwargs)
        read.extend(r.key for r in found)
        return found

    def counted_alike(self, chosen):
        asked.append([r.key for r in chosen])
        return alike(self, chosen)

    monkeypatch.setattr(SyncStore, "records", counted_records)
    monkeypatch.setattr(SyncStore, "alike", counted_alike)
    client = signed_in(keepers)

    first = client.get("/keepers/review")

    assert first.status_code == 200
    rows = shown_rows(first.text)
    assert LEGEND.search(first.text).groups() == ("521", "1", "100")
    assert [tuple(r.split(":", 1)) for r in rows] == everything[:100]
    assert asked == [everything[:100]], "the others each may be, for the page's rows alone"
    assert all(read.count(key) == 1 for key in everything[:100]), "the records of the page's rows, each once"
    assert len(read) < 200, "and but them, only the others they may be"
    assert 'href="?page=2"' in first.text and "Previous" not in first.text
    second = client.get("/keepers/review", params={"page": "2"}).text
    assert LEGEND.search(second).groups() == ("521", "101", "200")
    assert shown_rows(second) == [":".join(key) for key in everything[100:200]]
    assert 'href="?page=1"' in second and 'href="?page=3"' in second
    last = client.get("/keepers/review", params={"page": "6"}).text
    assert LEGEND.search(last).groups() == ("521", "501", "521") and "Next" not in last
    moved = client.get("/keepers/review", params={"page": "9"}, follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == "/keepers/review?page=6&asked=9"
    past = client.get(moved.headers["location"]).text
    assert shown_rows(past) == shown_rows(last) and LEGEND.search(past).groups() == ("521", "501", "521")
    assert "There is no page 9 any more: the records that await a decision now fit on 6 pages, and this is the " \
        "last." in " ".join(past.split()) and 'href="?page=5"' in past
    assert "Nothing awaits a decision" not in past and "There is no page" not in last
    # the note is of the last page alone: an address kept once the queue has grown past the page it noted says none
    for kept in ({"page": "5", "asked": "9"}, {"page": "6", "asked": "4"}):
        assert "There is no page" not in client.get("/keepers/review", params=kept).text

    chosen = shown_rows(second)[:2]
    refused = client.post("/keepers/review/bulk?page=2", data={"csrf": csrf_of(second), "id": chosen,
                                                               "action": "reject", "reason": ""})
    assert refused.status_code == 400 and LEGEND.search(refused.text).groups() == ("521", "101", "200")
    assert refused.text.count(" checked>") == 2
    done = client.post("/keepers/review/bulk?page=2", data={"csrf": csrf_of(second), "id": chosen,
                                                            "action": "reject", "reason": "not rehabilitation"})
    assert done.status_code == 303 and done.headers["location"] == "/keepers/review?done=Rejected+2+records.&page=2"
    again = client.get(done.headers["location"]).text
    assert LEGEND.search(again).groups() == ("519", "101", "200") and chosen[0] not in shown_rows(again)


def test_a_bulk_decision_that_empties_the_last_page_lands_on_the_page_before_saying_so(both_lists_keepers):
    """Before, a bulk decision went back to the page it was made on even when it left that page empty (the last
    page's 21 rows rejected), and the keeper saw "No more on this page." with no record, as if nothing were left to
    review: 500 still waited. It shows the last page that has rows, saying the page asked for is past the end; and
    the browser is sent to that page's address (303), where before page 5 was shown at page 6's, which the address
    bar, the browser's history and a bookmark then said; by the decision's one redirect, where it led to page 6,
    whose GET led on to page 5."""
    client = signed_in(both_lists_keepers)
    last = client.get("/keepers/review", params={"page": "6"}).text
    chosen = shown_rows(last)
    assert LEGEND.search(last).groups() == ("521", "501", "521") and len(chosen) == 21

    done = client.post("/keepers/review/bulk?page=6", data={"csrf": csrf_of(last), "id": chosen, "action": "reject",
                                                            "reason": "not rehabilitation"})

    assert done.status_code == 303, "page 6 is past the end now: the browser is sent to page 5's address at once"
    assert done.headers["location"] == "/keepers/review?done=Rejected+21+records.&page=5&asked=6"
    landed = client.get(done.headers["location"], follow_redirects=False)
    assert landed.status_code == 200, "one redirect: before, the decision led to page 6, which led on to page 5"
    landed = landed.text
    assert "Rejected 21 records." in landed
    assert LEGEND.search(landed).groups() == ("500", "401", "500")
    assert len(shown_rows(landed)) == 100 and not set(chosen) & set(shown_rows(landed))
    assert "There is no page 6 any more: the records that await a decision now fit on 5 pages, and this is the " \
        "last." in " ".join(landed.split())
    assert 'action="/keepers/review/bulk?page=5"' in landed, "a decision made here goes back to this page"
    assert 'href="?page=4"' in landed and 'href="?page=6"' not in landed


CHANGED_LEGEND = re.compile(r"(\d+) decided records whose evidence changed: (\d+) to (\d+)")


def test_the_decisions_whose_evidence_changed_are_shown_a_page_at_a_time(both_lists_keepers):
    """Before, the decided records whose evidence changed since were listed below the queue all at once, while the
    queue is paged: a new edition of a list whose wording of its evidence changed flags every decision made on it
    (222 here, the 2018 list's level 1 candidates accepted). They are paged as the queue is, 100 at a time, by their
    own Previous and Next links (`?list=changed`), the queue above at its first page."""
    keepers = both_lists_keepers
    store = SyncStore(store_of(keepers.site.settings))
    queue = ReviewQueue(store)
    level1 = queue.items(source="nhs-hospitals-2018", proposed_type="inpatient_rehab_level1")
    accepted = queue.accept([i.service_id for i in level1], actor="tester")
    store.write([replace(item.record, evidence_digest="changed since") for item in accepted], (), (),
                live_changed=set())
    client = signed_in(keepers)

    first = client.get("/keepers/review").text

    assert CHANGED_LEGEND.search(first).groups() == ("222", "1", "100")
    changed_rows = re.findall(r'<td class="nhsuk-table__cell"><a href="/keepers/review/([^"]+)"',
                              first.split('id="evidence-changed"')[1])
    assert changed_rows == [id_in_path(i.service_id) for i in accepted[:100]]
    assert 'href="?list=changed&amp;page=2#evidence-changed"' in first
    third = client.get("/keepers/review", params={"list": "changed", "page": "3"}).text
    assert CHANGED_LEGEND.search(third).groups() == ("222", "201", "222")
    assert LEGEND.search(third).groups() == ("299", "1", "100"), "the queue at its first page"
    moved = client.get("/keepers/review", params={"list": "changed", "page": "7"}, follow_redirects=False)
    assert moved.status_code == 303
    assert moved.headers["location"] == "/keepers/review?list=changed&page=3&asked=7#evidence-changed"
    past = client.get(moved.headers["location"]).text
    assert CHANGED_LEGEND.search(past).groups() == ("222", "201", "222") and "There is no page 7 any more: the " \
        "decided records whose evidence changed now fit on 3 pages, and this is the last." in " ".join(past.split())
    assert "There is no page" not in third


@pytest.mark.slow
def test_a_maintainer_pages_through_a_long_queue_without_javascript(both_lists_keepers, browser, axe_source):
    """In real Chromium without JavaScript a maintainer goes to the queue's next page and back, and to a page past its
    end, whose address becomes the last page's; axe finds nothing on either (its JavaScript run on the page)."""
    from tests.web.site import serve

    keepers = both_lists_keepers
    label = "Pages of the records awaiting a decision"
    with serve(keepers.app) as base_url:  # type: ignore[arg-type]
        token = keepers.site.tokens["maintainer"]
        with signed_in_page(browser, base_url, token, "/keepers/review", javascript=False) as page:
            page.get_by_role("navigation", name=label).get_by_role("link", name="Next").click()
            expect(page.get_by_role("group")).to_contain_text("521 records await a decision, oldest first: 101 to 200")
            assert page.url.endswith("/keepers/review?page=2")
            page.get_by_role("navigation", name=label).get_by_role("link", name="Previous").click()
            expect(page.get_by_role("group")).to_contain_text("oldest first: 1 to 100")
            page.goto(f"{base_url}/keepers/review?page=9")  # past the end: the address says the page shown
            expect(page.get_by_role("group")).to_contain_text("oldest first: 501 to 521")
            assert page.url.endswith("/keepers/review?page=6&asked=9")
        with signed_in_page(browser, base_url, token, "/keepers/review") as page:
            assert axe(page, axe_source) == []
            page.goto(f"{base_url}/keepers/review?page=2")
            expect(page.get_by_role("navigation", name=label)).to_contain_text("Previous")
            assert axe(page, axe_source) == []
