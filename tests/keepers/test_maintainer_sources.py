"""The maintainers' Sources page, over a directory synced in this process from the replay of the real recorded CQC
API (the 103 real locations), where CQC gives Ashton Lodge's phone as "Ask for the manager": the page says what
`rehabmap sync-status` says of the source (its counts, its last run) and lists Ashton Lodge as shown without the
phone CQC gave, linked to its page. Before, only an operator's `sync-status` said so. In real Chromium a maintainer
follows the link to the record's page; axe finds nothing on either, nor on the page once a maintainer has added the
phone. A run refused by CQC needs a person, and a directory no source was synced into says so plainly. Each test
that syncs runs on the SQLite file and on a real PostgreSQL."""

from __future__ import annotations

import html
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pydantic import SecretStr

from indexer.sync.runner import RunNotShown, SyncInterrupted
from tests.conftest import database_url
from indexer.sync.store import SyncStore
from rehabmap.maintain.store import store_of
from tests.cqc_records import ASHTON, ASHTON_ID
from tests.keepers.conftest import Keepers, make_keepers
from tests.keepers.maintainer_browser import signed_in_page
from tests.maintain.conftest import make_site
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import (REPLAY_CQC_KEY, cqc_connector, feeds_folder, mistyped_supersedes, rehabmap,
                                       runner_for)
from tests.web.browser import axe, shot

ASHTON_PAGE = f"/keepers/services/{ASHTON_ID}"
SOURCES = "/keepers/sources"
REFUSED = "phone 'Ask for the manager' is not a phone number"
DROPPED = f"{REFUSED} (digits, spaces, brackets and hyphens, perhaps an extension): dropped, the service is kept"


def cqc_keepers(root: Path, sample_index: Path, geodata_dir: Path, data_dir: Path, replay: Replay,
                key: str = REPLAY_CQC_KEY, url: str | None = None) -> Keepers:
    """A keepers' site over the sample directory (its store at `url`, or the SQLite file), its CQC connector pointed
    at the replay with `key`."""
    site = make_site(root / "home", sample_index, geodata_dir, data_dir, cqc_api_url=replay.cqc_url,
                     cqc_api_key=SecretStr(key), cqc_rate=500.0, sync_backoff_max=0.2, cqc_page_size=10,
                     sync_retries=1, database_url=url)
    return make_keepers(site)


def sync_cqc(keepers: Keepers, geography) -> None:
    settings = keepers.site.settings
    runner_for(settings, geography).run(cqc_connector(settings))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def synced(request, sample_index, geodata_dir, data_dir, geography, tmp_path_factory) -> Iterator[Keepers]:
    """The sample site after one run of the real CQC connector, Ashton Lodge's phone refused."""
    for replay in running(data_dir / "feeds"):
        replay.cqc.alter(ASHTON, mainPhoneNumber="Ask for the manager")
        keepers = cqc_keepers(tmp_path_factory.mktemp("sources"), sample_index, geodata_dir, data_dir, replay,
                              url=database_url(request, request.param))
        sync_cqc(keepers, geography)
        yield keepers


def signed_in(keepers: Keepers, who: str = "maintainer"):
    client = keepers.client()
    keepers.sign_in(client, who)
    return client


def test_the_page_says_what_sync_status_says_and_links_the_record_a_detail_was_left_out_of(synced):
    page = signed_in(synced).get(SOURCES)
    assert page.status_code == 200, page.text
    text = html.unescape(" ".join(page.text.split()))
    assert "<h1>Sources</h1>" in text and "Care Quality Commission (CQC)" in text and "<code>cqc</code>" in text
    # the counts of `rehabmap sync-status`, in words: 6 care homes shown, Field House awaiting review
    assert "Shown</dt> <dd class=\"nhsuk-summary-list__value\">6 records</dd>" in text
    assert '<a href="/keepers/review">1 record</a>' in text
    assert "Applied, " in text and ": fetched 78, added 6, changed 0, retired 0, held 1, rejected 41" in text
    assert "Needs a person" not in text
    # the record shown without the phone CQC gave, linked to its maintainer's page
    assert f'<a href="{ASHTON_PAGE}">Ashton Lodge Residential Home</a>' in text
    assert DROPPED in text
    record = signed_in(synced).get(ASHTON_PAGE)
    assert record.status_code == 200 and "Ashton Lodge Residential Home" in record.text


def test_a_phone_a_maintainer_has_since_added_is_said_so_and_counted_apart(request, store_kind, sample_index,
                                                                           geodata_dir, data_dir, geography, tmp_path,
                                                                           browser, axe_source):
    """A maintainer gives Ashton Lodge a phone through the maintainers' API: the record is shown with it, so the page
    and `rehabmap sync-status` (its text and --json) no longer count it as shown without one, but still list it,
    dated and apart, since CQC still gives "Ask for the manager". Before, both went on saying it was shown without.
    In real Chromium the page in this state has nothing axe finds."""
    from tests.web.site import serve

    for replay in running(data_dir / "feeds"):
        replay.cqc.alter(ASHTON, mainPhoneNumber="Ask for the manager")
        keepers = cqc_keepers(tmp_path, sample_index, geodata_dir, data_dir, replay,
                              url=database_url(request, store_kind))
        sync_cqc(keepers, geography)
    edited = keepers.client().patch(f"/maintain/services/{ASHTON_ID}", json={"phone": "0117 496 0001"},
                                    headers={"Authorization": f"Bearer {keepers.site.tokens['maintainer']}"})
    assert edited.status_code == 200 and edited.json()["service"]["phone"] == "0117 496 0001", edited.text
    today = datetime.now(timezone.utc).date().isoformat()  # the day the audit log stamps the edit
    said = f"{DROPPED} (phone: added by a maintainer on {today})"

    text = html.unescape(" ".join(signed_in(keepers).get(SOURCES).text.split()))
    assert 'Shown without a contact detail it gave</dt> <dd class="nhsuk-summary-list__value">None</dd>' in text
    assert ('Contact detail added by a maintainer</dt> <dd class="nhsuk-summary-list__value">'
            '<a href="#left-out-1">1 record</a></dd>') in text
    assert f'<a href="{ASHTON_PAGE}">Ashton Lodge Residential Home</a>' in text
    assert said in text
    with serve(keepers.app) as base_url, signed_in_page(browser, base_url, keepers.site.tokens["maintainer"],
                                                        SOURCES) as page:  # type: ignore[arg-type]
        expect(page.get_by_role("table")).to_contain_text(said)
        assert axe(page, axe_source) == []

    settings = keepers.site.settings
    shown = rehabmap(settings.home, data_dir, None, "sync-status", "--source", "cqc", **keepers.site.env())
    assert shown.returncode == 0, shown.stderr
    assert "shown without a contact detail" not in shown.stdout
    assert ("  1 shown with a contact detail a maintainer added by hand where the source gave none usable (still "
            f"refused; the source's to correct):\n    {ASHTON_ID} Ashton Lodge Residential Home: {said}\n"
            ) in shown.stdout
    as_json = rehabmap(settings.home, data_dir, None, "sync-status", "--source", "cqc", "--json",
                       **keepers.site.env())
    assert as_json.returncode == 0, as_json.stderr
    [report] = json.loads(as_json.stdout)
    assert report["left_out"] == [] and [r["service_id"] for r in report["left_out_added"]] == [ASHTON_ID]
    assert report["left_out_added"][0]["added"] == [{"field": "phone", "on": today}]
    assert report["left_out_added"][0]["fields"] == ["phone"], "each detail's field, as the sync kept it"


def test_maintainers_and_admins_see_it_a_provider_and_a_signed_out_visitor_do_not(synced):
    assert signed_in(synced, "admin").get(SOURCES).status_code == 200
    assert signed_in(synced, "provider_a").get(SOURCES).status_code == 403
    visitor = synced.client().get(SOURCES)
    assert visitor.status_code == 303 and visitor.headers["location"].startswith("/keepers/sign-in?next=")
    assert "Ashton Lodge" not in visitor.text
    home = signed_in(synced).get("/keepers").text
    assert f'href="{SOURCES}"' in home
    assert f'href="{SOURCES}"' not in signed_in(synced, "provider_a").get("/keepers").text


def test_a_directory_no_source_was_synced_into_says_so(keepers):
    page = signed_in(keepers).get(SOURCES)
    assert page.status_code == 200
    assert "No sources synced yet." in page.text and "Needs a person" not in page.text


def test_a_feed_no_longer_configured_needs_no_person(keepers):
    """Two ORUK feeds' last runs failed: Bristol's, whose file is in the feed folder (as shipped), and Leeds's, whose
    file has since been removed. Before, both needed a person until someone dropped the run with --discard; now
    Leeds is said to be no longer configured, its last run kept, and only Bristol needs a person."""
    store = SyncStore(store_of(keepers.site.settings))
    for feed in ("oruk-bristol", "oruk-leeds"):
        store.record_run(feed, datetime.now(timezone.utc).isoformat(), "failed", {"error": "the feed is down"})

    text = html.unescape(" ".join(signed_in(keepers).get(SOURCES).text.split()))

    needing = text[text.index('id="needs-a-person"'):]
    needing = needing[:needing.index("</ul>")]
    assert re.findall(r'<li><a href="#source-(\d+)">', needing) == ["1"]
    assert text.index('id="source-1"') < text.index("<code>oruk-bristol</code>") < text.index('id="source-2"')
    leeds = text[text.index("<code>oruk-leeds</code>"):]
    assert "No longer configured</dt>" in leeds and "Its feed file is no longer in the feed folder" in leeds
    assert text.count("Needs a person</strong>") == 1, text

    # A run of each left unfinished (a page of it fetched): Bristol's next run goes on from it; no run of Leeds
    # will come, and the page said it would (nothing could drop it: --discard looked only at the files there).
    for feed in ("oruk-bristol", "oruk-leeds"):
        store.stage_page(feed, [("gone", {"source": feed, "source_id": "1", "reason": "closed"})], {"page": 2})
    text = html.unescape(" ".join(signed_in(keepers).get(SOURCES).text.split()))
    bristol, leeds = text[:text.index("<code>oruk-leeds</code>")], text[text.index("<code>oruk-leeds</code>"):]
    assert "1 fetched record kept; the next run goes on from it." in bristol
    assert ("1 fetched record kept; no run of it will come to go on from it: whoever runs the syncs can drop them "
            "with <code>rehabmap sync oruk --discard</code>.") in leeds and "the next run goes on" not in leeds


def test_a_removed_feed_still_shown_says_how_to_retire_it_and_then_that_it_is_retired(request, store_kind, sample_index,
                                                                                      geodata_dir, data_dir, tmp_path):
    """Bristol's real feed, its support groups read as VCFSE (Autism Advice - Bristol shown), and its file then
    removed. Before, the page said its records stay as its last run left them, and nothing could retire them; now it
    says the command that does, and once run, that they are retired by a person and none is shown: in the live
    index, inactive, and its coverage claim withdrawn."""
    from app.sync import retire_removed, sync_source
    from rehabmap.coverage import CoverageStore
    from rehabmap.maintain.audit import AuditLog
    from tests.sync.store_fixtures import index_record

    feeds = feeds_folder(tmp_path / "feeds", support_groups=True)
    with (feeds / "bristol.toml").open("a") as file:
        file.write('\n[feed.covers]\nvcfse = ["E06000023"]\n')
    for replay in running(data_dir / "feeds"):
        site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir, oruk_feeds_dir=feeds,
                         oruk_rate=10_000.0, oruk_feed_urls={"bristol": replay.oruk_url("bristol")},
                         database_url=database_url(request, store_kind))
        [report] = sync_source(site.settings, "oruk", actor="tests").reports
    [autism] = [line.service_id for line in report.added]
    store = SyncStore(store_of(site.settings))
    assert [c.basis for c in CoverageStore(store.database).claims()] == ["sync:oruk-bristol"]
    (feeds / "bristol.toml").unlink()
    keepers = make_keepers(site)

    def bristol() -> str:
        text = html.unescape(" ".join(signed_in(keepers).get(SOURCES).text.split()))
        return text[text.index("<code>oruk-bristol</code>"):]

    # Named as people know it, its file's label as its last run had it (before, by its code once the file was gone).
    page = html.unescape(" ".join(signed_in(keepers).get(SOURCES).text.split()))
    assert 'id="source-1">Bristol City Council service directory ' in page
    assert ("No longer configured</dt> <dd class=\"nhsuk-summary-list__value\">Its feed file is no longer in the feed "
            "folder, so it is no longer synced: its records stay as its last applied run left them until whoever runs "
            "the syncs retires them with <code>rehabmap sync oruk --retire-removed oruk-bristol</code>. Its last run "
            "needs no person.") in bristol()

    [line] = retire_removed(site.settings, "oruk-bristol", actor="tests").retired

    assert line.service_id == autism and index_record(site.settings.home, autism)["status"] == "inactive"
    assert CoverageStore(store.database).claims() == []
    text = bristol()
    assert ("Last run</dt> <dd class=\"nhsuk-summary-list__value\"> Its records retired by a person, ") in text
    assert ": 1 record retired: no longer synced: its feed file, bristol.toml, has left rehabmap's feed folder" in text
    assert "so it is no longer synced, and none of its records is shown. Its last run needs no person." in text
    assert "Needs a person" not in text and "--retire-removed" not in text
    # The public reads what a person understands, by the feed's name; the audit log keeps the operator's why beside
    # it. Before, the service's page said "no longer synced: its feed file, bristol.toml, has left rehabmap's feed
    # folder".
    public = "rehabmap no longer reads Bristol City Council service directory, where it was listed"
    page = html.unescape(" ".join(keepers.client().get(f"/service/{autism}").text.split()))
    assert f": {public}.</p>" in page and "feed folder" not in page and "toml" not in page
    assert keepers.client().get(f"/services/{autism}").json()["retired_reason"] == public
    logged = {row.field: row.new for row in AuditLog(store.database).of_resources("service", [autism])
              if row.action == "retire"}
    assert logged["retired_reason"] == public and logged["retired_detail"] == (
        "no longer synced: its feed file, bristol.toml, has left rehabmap's feed folder")


def test_a_run_cqc_refused_needs_a_person(request, store_kind, sample_index, geodata_dir, data_dir, geography, tmp_path,
                                         browser, axe_source):
    """A revoked key: the run fails, applies nothing, and fails again each night until someone looks."""
    from tests.web.site import serve

    for replay in running(data_dir / "feeds"):
        keepers = cqc_keepers(tmp_path, sample_index, geodata_dir, data_dir, replay, key="revoked",
                              url=database_url(request, store_kind))
        with pytest.raises(SyncInterrupted):
            sync_cqc(keepers, geography)
        text = html.unescape(" ".join(signed_in(keepers).get(SOURCES).text.split()))
        assert 'id="needs-a-person"' in text and '<a href="#source-1">Care Quality Commission (CQC)</a>' in text
        assert "Failed, " in text and ": CQC API refused the key (401): check REHABMAP_CQC_API_KEY" in text
        assert "Last successful sync</dt> <dd class=\"nhsuk-summary-list__value\">Never</dd>" in text
        assert "the directory holds nothing from it: no run of it has succeeded yet." in text
        assert "revoked" not in text
        with serve(keepers.app) as base_url, signed_in_page(browser, base_url, keepers.site.tokens["maintainer"],
                                                            SOURCES) as page:  # type: ignore[arg-type]
            expect(page.locator("#needs-a-person")).to_contain_text("Ask whoever runs the syncs to look.")
            assert axe(page, axe_source) == []


def test_a_run_whose_changes_a_mapping_holds_back_needs_a_person_and_names_the_mapping(
        sample_index, geodata_dir, data_dir, geography, tmp_path, monkeypatch):
    """A run applied whose live write a mapping's `supersedes` put wrong refused: until the mapping is mended no sync,
    review decision or server start writes its changes. Before, the page said they would ("The next sync, review
    decision or server start writes them") and that CQC needed no one; now CQC needs a person, and the page names the
    mapping and its key, not the server's folders."""
    mapping = mistyped_supersedes(tmp_path, monkeypatch)
    for replay in running(data_dir / "feeds"):
        keepers = cqc_keepers(tmp_path, sample_index, geodata_dir, data_dir, replay)
        with pytest.raises(RunNotShown):
            sync_cqc(keepers, geography)
        text = html.unescape(" ".join(signed_in(keepers).get(SOURCES).text.split()))

    callout = text[text.index('id="needs-a-person"'):text.index("</div>", text.index('id="needs-a-person"'))]
    assert '<a href="#source-1">Care Quality Commission (CQC)</a>' in callout
    assert ("What a run applied is not yet shown in searches, and will not be until a mapping on the server is put "
            "right (each says which below). Ask whoever runs the syncs to look.") in callout
    assert "stopped for a decision or failed" not in callout and "Needs a person</dt>" not in text
    [held] = re.findall(r"Not yet in searches</dt> <dd class=\"nhsuk-summary-list__value\">([^<]+)</dd>", text)
    assert re.fullmatch(
        r"\d+ applied changes are stored, but not yet shown in searches: mapping nhs_website_hospitals_2018\.toml: "
        r"\[source\] supersedes names 'nhs-hospitals-2105', which no mapping in mappings/ gives; .*\. The live index "
        r"follows once that is put right, at the next sync, review decision or server start\. Whoever runs the syncs "
        r"must put the mapping right\.", held), held
    assert "writes them" not in text and str(mapping.parent) not in text


def test_a_source_held_back_beside_one_failed_is_said_of_one_run_each(sample_index, geodata_dir, data_dir, geography,
                                                                       tmp_path, monkeypatch):
    """CQC's run applied and held back by a mapping put wrong, Bristol's feed failed: each sentence of the callout
    counts the sources it is about. Before, both counted every source needing a person: "The last run of these
    sources stopped … What their runs applied is not yet shown", of one failed source and one held back."""
    from app.sync import sync_source

    feeds = feeds_folder(tmp_path / "feeds")
    for replay in running(data_dir / "feeds"):
        site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir, oruk_feeds_dir=feeds,
                         oruk_rate=10_000.0, sync_retries=0, sync_backoff_max=0.2,
                         oruk_feed_urls={"bristol": replay.oruk_url("bristol")}, cqc_api_url=replay.cqc_url,
                         cqc_api_key=SecretStr(REPLAY_CQC_KEY), cqc_rate=500.0, cqc_page_size=10)
        assert not sync_source(site.settings, "oruk", actor="tests").failed  # Bristol's, shown
        mistyped_supersedes(tmp_path, monkeypatch)
        with pytest.raises(RunNotShown):
            runner_for(site.settings, geography).run(cqc_connector(site.settings))
        replay.fail("/oruk/bristol/services", 500, times=None)
        assert [f.source for f in sync_source(site.settings, "oruk", actor="tests").failed] == ["oruk-bristol"]
        text = html.unescape(" ".join(signed_in(make_keepers(site)).get(SOURCES).text.split()))

    callout = text[text.index('id="needs-a-person"'):text.index("</div>", text.index('id="needs-a-person"'))]
    assert "Care Quality Commission (CQC)" in callout and "Bristol City Council service directory" in callout
    assert "The last run of this source stopped for a decision or failed, so it did not bring the directory up to " \
           "date." in callout, callout
    assert "What a run applied is not yet shown in searches, and will not be until a mapping on the server is put " \
           "right (each says which below). Ask whoever runs the syncs to look." in callout, callout


@pytest.fixture(scope="module")
def synced_server(synced: Keepers) -> Iterator[str]:
    from tests.web.site import serve

    with serve(synced.app) as base_url:  # type: ignore[arg-type]
        yield base_url


@pytest.mark.slow
def test_a_maintainer_goes_from_the_sources_page_to_the_record_to_add_the_detail(browser, synced, synced_server,
                                                                                 axe_source):
    with signed_in_page(browser, synced_server, synced.site.tokens["maintainer"]) as page:
        page.get_by_role("link", name="Sources", exact=True).first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Sources")
        assert axe(page, axe_source) == []
        shot(page, "32-keepers-sources")
        left_out = page.get_by_role("table", name="Records of Care Quality Commission (CQC) with a contact detail "
                                                  "it gave that a sync left out: record, what was left out")
        expect(left_out).to_contain_text(REFUSED)
        left_out.get_by_role("link", name="Ashton Lodge Residential Home").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Ashton Lodge Residential Home")
        assert page.get_by_label("Phone (optional)").input_value() == ""
        assert axe(page, axe_source) == []


def test_a_long_list_is_shown_a_page_at_a_time(request, store_kind, sample_index, geodata_dir, data_dir, geography,
                                                tmp_path, browser, axe_source):
    """CQC's sync copied out (through the store's own API) to 150 records without Ashton Lodge's phone: the page
    says 150, lists the first 100 with a link to the next page of CQC's list, and the next page the other 50 with
    one back; every source's list paged on its own (`?source=cqc&page=2`). Before, each visit listed all 150 (at
    1,001 records, 447 KB of HTML). In real Chromium without JavaScript a maintainer goes to the next page and
    back, and axe finds nothing on either."""
    from tests.web.site import serve

    for replay in running(data_dir / "feeds"):
        replay.cqc.alter(ASHTON, mainPhoneNumber="Ask for the manager")
        keepers = cqc_keepers(tmp_path, sample_index, geodata_dir, data_dir, replay,
                              url=database_url(request, store_kind))
        sync_cqc(keepers, geography)
    store = SyncStore(store_of(keepers.site.settings))
    [ashton] = [r for r in store.records("cqc") if r.service_id == ASHTON_ID]
    store.write([replace(ashton, source_id=f"{ashton.source_id}-{n:03}", service_id=f"{ASHTON_ID}-{n:03}",
                         service={**ashton.service, "id": f"{ASHTON_ID}-{n:03}",  # type: ignore[dict-item]
                                  "name": f"Ashton Lodge copy {n:03}"}) for n in range(1, 150)],
                (), (), live_changed=set())

    client = signed_in(keepers)
    first = html.unescape(" ".join(client.get(SOURCES).text.split()))
    assert '<a href="#left-out-1">150 records</a>' in first
    assert "150 records, those still shown without a detail first: 1 to 100." in first
    assert first.count(DROPPED) == 100 and "Ashton Lodge copy 099" in first and "copy 100" not in first
    assert 'href="?source=cqc&page=2#left-out-1"' in first and "Previous" not in first
    second = html.unescape(" ".join(client.get(SOURCES, params={"source": "cqc", "page": "2"}).text.split()))
    assert '<a href="#left-out-1">150 records</a>' in second, "the counts stay totals"
    assert "150 records, those still shown without a detail first: 101 to 150." in second
    assert second.count(DROPPED) == 50 and "Ashton Lodge copy 100" in second and "copy 099" not in second
    assert 'href="?source=cqc&page=1#left-out-1"' in second and "Next" not in second
    past = html.unescape(" ".join(client.get(SOURCES, params={"source": "cqc", "page": "9"}).text.split()))
    assert "150 records, those still shown without a detail first: none on this page." in past
    assert DROPPED not in past and 'href="?source=cqc&page=8#left-out-1"' in past
    for asked in ({"page": "2"}, {"source": "cqc", "page": "two"}, {"source": "other", "page": "2"}):
        assert "1 to 100." in client.get(SOURCES, params=asked).text, asked

    label = "Pages of the records of Care Quality Commission (CQC) with a contact detail left out"
    with serve(keepers.app) as base_url:  # type: ignore[arg-type]
        token = keepers.site.tokens["maintainer"]
        with signed_in_page(browser, base_url, token, SOURCES, javascript=False) as page:
            page.get_by_role("navigation", name=label).get_by_role("link", name="Next").click()
            expect(page.get_by_role("table")).to_contain_text("Ashton Lodge copy 149")
            assert page.url.endswith("/keepers/sources?source=cqc&page=2#left-out-1")
            page.get_by_role("navigation", name=label).get_by_role("link", name="Previous").click()
            expect(page.get_by_role("table")).to_contain_text("Ashton Lodge copy 001")
        with signed_in_page(browser, base_url, token, SOURCES) as page:  # axe runs as the page's JavaScript
            assert axe(page, axe_source) == []
            page.goto(f"{base_url}{SOURCES}?source=cqc&page=2")
            expect(page.get_by_role("navigation", name=label)).to_contain_text("Previous")
            assert axe(page, axe_source) == []


def test_a_failed_feed_is_shown_failed_and_stale_beside_the_feeds_that_are_current(sample_index, geodata_dir,
                                                                                   data_dir, tmp_path):
    """Each ORUK feed is a run of its own: Bristol's listing down, after a run that applied, is shown failed and as
    old as its last successful run, while the HSDS 3 example feed run beside it is shown current, needing nobody."""
    from app.sync import sync_source

    feeds = feeds_folder(tmp_path / "feeds", example=True)
    for replay in running(data_dir / "feeds"):
        site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir, oruk_feeds_dir=feeds,
                         oruk_rate=10_000.0, sync_retries=0, sync_backoff_max=0.2,
                         oruk_feed_urls={"bristol": replay.oruk_url("bristol"), "example": replay.oruk_url("hsds3")})
        assert not sync_source(site.settings, "oruk", actor="tests").failed
        replay.fail("/oruk/bristol/services", 500, times=None)
        runs = sync_source(site.settings, "oruk", actor="tests")
        assert [f.source for f in runs.failed] == ["oruk-bristol"]
        keepers = make_keepers(site)
        text = html.unescape(" ".join(signed_in(keepers).get(SOURCES).text.split()))
    callout = text[text.index('id="needs-a-person"'):text.index("</div>", text.index('id="needs-a-person"'))]
    assert "Bristol City Council service directory" in callout and "HSDS 3 example" not in callout
    bristol = text[text.index(">Bristol City Council service directory "):text.index(">HSDS 3 example ")]
    example = text[text.index(">HSDS 3 example "):]
    assert "Needs a person" in bristol and "Last run</dt> <dd class=\"nhsuk-summary-list__value\"> Failed, " in bristol
    assert "(status 500). What was fetched before it is kept" in bristol
    assert "Needs a person" not in example and "> Applied, " in example
    # How old what it shows is, said where the failure is (before: "Nothing was applied." and no more).
    [success] = re.findall(r"Last successful sync</dt> <dd class=\"nhsuk-summary-list__value\">([^<]+)</dd>", bristol)
    assert ("Needs a person</dt> <dd class=\"nhsuk-summary-list__value\">Nothing was applied, so what the directory "
            f"holds from it is as its last successful sync left it, {success}. Whoever runs the syncs must fix what "
            "the error names, then run it again.") in bristol


def test_a_failed_feeds_error_names_its_file_and_never_the_servers_folders(sample_index, geodata_dir, data_dir,
                                                                            tmp_path):
    """Two failed runs whose errors name a feed file: York's file cannot be used (a term mapped to no type), and
    Bristol's feed counts 900 services and lists 819, its error naming the remedy in its file (`trust_count =
    false`). Before, each error, as the Sources page and sync-status show it, named the file by its path on the
    server (the feed folder's); now by its name, as the run's warnings name it. The command line still says the
    path of the file that cannot be used, for the operator (`DomainError.where`)."""
    from app.sync import sync_source
    from cli.main import caller_words

    feeds = feeds_folder(tmp_path / "feeds")
    (feeds / "york.toml").write_text('[feed]\nlabel = "York"\nurl = "x"\npaging = "v1"\nlicence = "l"\n'
                                     'attribution = "a"\n[terms]\n"Day services" = "day_centre"\n')
    for replay in running(data_dir / "feeds"):
        site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir, oruk_feeds_dir=feeds,
                         oruk_rate=10_000.0, oruk_feed_urls={"bristol": replay.oruk_url("bristol")})
        replay.alter("/oruk/bristol/services", lambda query, answer: {
            **answer, "totalElements": 900, "totalPages": 18, "last": int(query["page"][0]) >= 18})
        runs = sync_source(site.settings, "oruk", actor="tests")
        text = html.unescape(" ".join(signed_in(make_keepers(site)).get(SOURCES).text.split()))
    assert sorted(f.source for f in runs.failed) == ["oruk-bristol", "oruk-york"]
    assert str(tmp_path) not in text and "/feeds/" not in text
    assert ": york.toml: [terms] 'Day services': 'day_centre' is not a type" in text
    assert "'trust_count = false' in the [feed] table of bristol.toml reads its listing" in text
    york = next(f.error for f in runs.failed if f.source == "oruk-york")
    assert caller_words(york) == ("york.toml: [terms] 'Day services': 'day_centre' is not a type: use one of "
                                  f"{york.message.split('use one of ', 1)[1]} ({feeds / 'york.toml'})")


def test_a_run_failed_on_a_file_of_the_servers_names_the_file_by_its_name_never_the_folders(
        sample_index, geodata_dir, data_dir, tmp_path, monkeypatch):
    """A run of CQC's ratings file fails on the server's file system: the file is downloaded into the temporary
    folder (here one in the home, as an operator's TMPDIR may be) under the name its URL ends with, and that name is
    longer than a file's name may be, so writing it fails (an OSError). Before, the failed run's error was the
    exception's own words, the file's whole path on the server, and the Sources page, sync-status and --json showed
    it; now its reason and the file's name. The exception, which the command's error line says, keeps the path for
    the operator."""
    from app.sync import sync_source

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "home" / "tmp"))  # as TMPDIR names it
    (tmp_path / "home" / "tmp").mkdir(parents=True)
    name = "latest_ratings_" + "2021-02_" * 32 + ".csv"
    for replay in running(data_dir / "feeds"):
        replay.serve_file(name, (data_dir / "services" / "cqc" / "cqc_latest_ratings_providers_2021-02.csv")
                          .read_bytes())
        site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir, cqc_ratings_url=replay.file_url(name))
        runs = sync_source(site.settings, "cqc-ratings", actor="tests")
        text = html.unescape(" ".join(signed_in(make_keepers(site)).get(SOURCES).text.split()))
    [failed] = runs.failed
    assert isinstance(failed.error, OSError) and str(tmp_path / "home" / "tmp") in str(failed.error)
    assert str(tmp_path) not in text and "/tmp/" not in text
    assert f"OSError in rehabmap's cqc-ratings connector: File name too long: {name[:40]}" in text
    [status] = [s for s in json.loads(rehabmap(site.settings.home, data_dir, None, "sync-status", "--json").stdout)
                if s["source"] == "cqc-ratings"]
    assert status["last_run"]["error"].startswith("OSError in rehabmap's cqc-ratings connector: File name too long: ")
    assert str(tmp_path) not in json.dumps(status)


def test_a_feed_file_key_rehabmap_does_not_read_is_said_under_the_last_run(sample_index, geodata_dir, data_dir,
                                                                          tmp_path, browser, axe_source):
    """Bristol's real feed file with `trust_cout = false` (meant as trust_count) written in its [feed] table: the run
    applies, and its warning names the key. Before, only `rehabmap sync` and `sync-status` said it, so a maintainer
    who keeps the directory from these pages never saw it; now it is said under the source's last run, in the run's
    words, escaped. Worth a look, not an outage: the source is not marked as needing a person. axe finds nothing.
    Then the case the key is misspelt for: the feed counts 900 and lists 819, so the run fails; it needs a person
    for the failure, and the warning that says why the count was trusted is said under the failed run."""
    from app.sync import sync_source
    from tests.web.site import serve

    feeds = feeds_folder(tmp_path / "feeds")
    text = (feeds / "bristol.toml").read_text()
    (feeds / "bristol.toml").write_text(text.replace("per_page = 50\n", "per_page = 50\ntrust_cout = false\n"))
    warning = ("bristol.toml: [feed] 'trust_cout' is not a key rehabmap reads: ignored (did you mean "
               "'trust_count'?)")

    def last_run(page: str) -> str:
        said = page[page.index("Last run</dt>"):]
        return said[:said.index("</dd>")]

    for replay in running(data_dir / "feeds"):
        site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir, oruk_feeds_dir=feeds,
                         oruk_rate=10_000.0, oruk_feed_urls={"bristol": replay.oruk_url("bristol")})
        assert not sync_source(site.settings, "oruk", actor="tests").failed
        keepers = make_keepers(site)

        raw = signed_in(keepers).get(SOURCES).text
        page = html.unescape(" ".join(raw.split()))

        assert "[feed] &#39;trust_cout&#39; is not a key" in raw  # the run's words, escaped
        assert "> Applied, " in last_run(page) and f"<li>Warning: {warning}</li>" in last_run(page), last_run(page)
        assert "Worth a look by whoever runs the syncs:" in last_run(page)
        assert "Needs a person" not in page and 'id="needs-a-person"' not in page
        with serve(keepers.app) as base_url, signed_in_page(browser, base_url, keepers.site.tokens["maintainer"],
                                                            SOURCES) as browsed:  # type: ignore[arg-type]
            expect(browsed.get_by_role("listitem").filter(has_text="trust_cout")).to_have_count(1)
            assert axe(browsed, axe_source) == []

        replay.alter("/oruk/bristol/services", lambda query, answer: {
            **answer, "totalElements": 900, "totalPages": 18, "last": int(query["page"][0]) >= 18})
        assert [f.source for f in sync_source(site.settings, "oruk", actor="tests").failed] == ["oruk-bristol"]
        page = html.unescape(" ".join(signed_in(keepers).get(SOURCES).text.split()))

        assert "> Failed, " in last_run(page) and "900" in last_run(page), last_run(page)
        assert f"<li>Warning: {warning}</li>" in last_run(page), last_run(page)
        assert 'id="needs-a-person"' in page and "Needs a person</dt>" in page
