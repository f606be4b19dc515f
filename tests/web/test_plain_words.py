"""The words a family and a keeper read, on the real synced data: `rehabmap sync cqc` (a real process) against the
replay of the 103 real recorded CQC locations, served by `rehabmap serve` on 127.0.0.1, read over HTTP and in
real headless Chromium.

Before: the service page said "Source: cqc (id cqc:…)" and /about-the-data "Sources: cqc (103)"; the shortlist
said its link "does not include your postcode" after a search from a town; a provider's "My services" said only
"Details last confirmed: Never" of a record CQC listed that day; the CSV export had no column for that listing."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from indexer.sources.curated import TABLES
from indexer.sync.connectors import SOURCES, TITLES, source_titles
from tests.cqc_records import ASHTON_ID
from tests.keepers.maintainer_browser import signed_in_page
from tests.sync.store_fixtures import rehabmap
from tests.web.real_feeds_home import (  # noqa: F401 - the fixtures, for this module too
    CONFIRMS, NOT_CONFIRMED, synced, synced_home, synced_on)
from web.present import long_date

pytestmark = pytest.mark.slow

CQC = "Care Quality Commission (CQC)"
FEEDS = Path(__file__).resolve().parents[2] / "mappings" / "feeds"


def summary_row(page, key: str) -> str:
    return page.locator(".nhsuk-summary-list__row", has=page.locator("dt", has_text=key)).locator(
        "dd").inner_text()


def test_every_source_has_a_name_a_person_reads(tmp_path):
    titles = source_titles(FEEDS)
    assert titles["oruk-bristol"] == "Bristol City Council service directory", "the feed file's own label"
    assert titles["nhs-service-search"] == "NHS website (Service Search)"
    assert titles["ods"] == "NHS Organisation Data Service" and titles["cqc"] == CQC
    # a CSV mapping's, dated: the 2014–15 hospital list's records were shown as "nhs-hospitals-2018"
    assert titles["nhs-hospitals-2015"] == "NHS website hospital list (October 2014 to September 2015)"
    assert (titles["directory"], titles["sample"]) == ("rehabmap's maintainers",  # a service added on /maintain
                                                       "rehabmap's sample directory (fictional services)")
    named = {*SOURCES, "cqc-directory", "cqc-hsca"} - {"oruk"}  # oruk: one per feed file, named by the file
    assert named <= set(TITLES) and all(titles[t.source] == t.title for t in TABLES)
    broken = tmp_path / "feeds"
    broken.mkdir()
    (broken / "bad.toml").write_text("[feed\n", encoding="utf-8")
    assert "oruk-bad" not in source_titles(broken), "a broken feed file does not keep the server from starting"


def test_the_service_page_and_about_the_data_name_the_source(browser, synced):  # noqa: F811
    total = httpx.get(f"{synced}/services", params={"per_page": 1}, timeout=60).json()["total"]
    page = browser.new_page()
    try:
        page.goto(f"{synced}/service/{ASHTON_ID}")
        source, record_id = summary_row(page, "Source"), summary_row(page, "rehabmap ID")
        page.goto(f"{synced}/about-the-data")
        sources = summary_row(page, "Sources")
    finally:
        page.close()
    assert (source, record_id) == (CQC, ASHTON_ID)
    assert sources == f"{CQC} ({total:,})"


@pytest.mark.parametrize(("where", "left_out"), [("Mansfield", "the place you searched from"),
                                                 ("NG18 2AT", "your postcode")])
def test_the_shortlist_says_what_its_link_leaves_out(browser, synced, where, left_out):  # noqa: F811
    page = browser.new_page()
    try:
        page.goto(f"{synced}/shortlist?" + urlencode({"where": where, "within": "25", "s": ASHTON_ID}))
        hint = page.locator("#share-link-hint").inner_text()
        text = page.locator("main").inner_text()
    finally:
        page.close()
    assert hint == f"Copy this link to keep the list or send it to someone. It does not include {left_out}."
    assert f"It shows the list without {left_out}," in text
    # A place's distances are measured from its middle, and the note asks for a postcode for exact ones: no more.
    asks = " Give a full postcode for exact distances."
    assert (asks in text) == (left_out != "your postcode")
    assert ("postcode" in text.replace(asks, "")) == (left_out == "your postcode")


def test_my_services_shows_the_sources_listing_as_the_service_page_does(browser, synced, synced_home,  # noqa: F811
                                                                       data_dir):
    for args in (("orgs", "add", "Ashton Lodge Ltd"), ("orgs", "link", "Ashton Lodge Ltd", ASHTON_ID)):
        done = rehabmap(synced_home, data_dir, None, *args)
        assert done.returncode == 0, done.stderr
    made = rehabmap(synced_home, data_dir, None, "tokens", "create", "--role", "provider",
                    "--organisation", "Ashton Lodge Ltd")
    assert made.returncode == 0, made.stderr
    with signed_in_page(browser, synced, made.stdout.splitlines()[0], "/keepers/my-services") as page:
        listing = summary_row(page, "Source's listing")
        checked = summary_row(page, "Checked by you or the rehabmap team")
        page.goto(f"{synced}/service/{ASHTON_ID}")
        on_its_page = page.locator("#source-listing").inner_text()
    assert listing == on_its_page == (
        f"Listed by {CQC}: last confirmed {long_date(synced_on(synced_home))} ({', '.join(CONFIRMS)}). "
        f"Not from {CQC}: {', '.join(NOT_CONFIRMED)}. Check those with the service.")
    assert checked == "Not yet"


def test_the_exports_give_the_sources_listing_in_new_last_columns(synced, synced_home):  # noqa: F811
    text = httpx.get(f"{synced}/services.csv", timeout=60).content.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text)))
    assert header[-15:-11] == ["description", "source_confirmed_by", "source_confirmed_on", "source_confirms"]
    assert header[-11:] == ["town", "county", "needs_read_from_text", "needs_read_not_met",  # session 17's go after
                            "gender_read_from_text", "needs_registered", "source_file_of",  # and 18's, 19's
                            "needs_added_by_maintainers", "gender_stated_by_maintainers",  # and 24's, 25's
                            "gender_basis", "gender_from_source"]  # and 26's
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(text))}
    ashton = rows[ASHTON_ID]
    assert (ashton["source_confirmed_by"], ashton["source_confirmed_on"], ashton["source_confirms"]) == (
        CQC, synced_on(synced_home).isoformat(), ";".join(CONFIRMS))
    assert ashton["last_verified"] == "", "the listing is not a person's check"
    record = httpx.get(f"{synced}/services/{ASHTON_ID}", timeout=60).json()["source_confirmed"]
    assert record["name"] == CQC and record["confirmed_on"] == ashton["source_confirmed_on"]
    features = httpx.get(f"{synced}/services.geojson", timeout=60).json()["features"]
    [properties] = [f["properties"] for f in features if f["id"] == ASHTON_ID]
    assert properties["source_confirms"] == CONFIRMS and properties["source_confirmed_by"] == CQC


def test_a_phone_number_reads_in_groups_by_its_area_code_and_still_dials(browser, synced):  # noqa: F811
    """Ashton Lodge (Leicester, 0116) and Maison Moti (London, 020) as CQC gives them: eleven digits unspaced."""
    numbers = {ASHTON_ID: ("01162620075", "0116 262 0075"), "cqc:1-112789029": ("02084407535", "020 8440 7535")}
    page = browser.new_page()
    try:
        for service_id, (digits, shown) in numbers.items():
            assert httpx.get(f"{synced}/services/{service_id}", timeout=60).json()["phone"] == digits, "kept as given"
            page.goto(f"{synced}/service/{service_id}")
            link = page.locator(".nhsuk-summary-list__row", has=page.locator("dt", has_text="Phone")).locator("a")
            assert (link.inner_text(), link.get_attribute("href")) == (shown, f"tel:{digits}")
        page.goto(f"{synced}/shortlist?" + urlencode([("s", i) for i in numbers]))
        listed = page.locator(".nhsuk-summary-list__row", has=page.locator("dt", has_text="Phone")).locator("a")
        assert sorted(listed.all_inner_texts()) == sorted(shown for _, shown in numbers.values())
    finally:
        page.close()
