"""A source listing a service is a fact of its own, shown as what it is, never as a person's check: on the real
synced data (`rehabmap sync cqc`, a real process, against the replay of the 103 real recorded CQC locations),
served by `rehabmap serve` on 127.0.0.1, read over HTTP and in real headless Chromium.

Before, Ashton Lodge, which CQC had listed minutes before, read "Last checked: not known", as if nobody knew
anything of it, and nothing said which of its facts CQC vouches for (its registration, name, address, phone)
and which no source does (how to refer, whether it takes referrals, opening times)."""

from __future__ import annotations

import shutil

import httpx
import pytest

from tests.cqc_records import ASHTON_ID, FIELD_HOUSE_ID
from tests.keepers.maintainer_browser import signed_in_page
from tests.sync.store_fixtures import rehabmap, serving
from tests.web.real_feeds_home import (  # noqa: F401 - the fixtures, for this module too
    CONFIRMS, NOT_CONFIRMED, synced, synced_home, synced_on)
from web.present import long_date

pytestmark = pytest.mark.slow


def test_the_api_gives_the_sources_listing_apart_from_a_persons_check(synced, synced_home):  # noqa: F811
    record = httpx.get(f"{synced}/services/{ASHTON_ID}", timeout=60).json()

    assert record["source_confirmed"] == {"source": "cqc", "name": "Care Quality Commission (CQC)",
                                          "confirmed_on": synced_on(synced_home).isoformat(),
                                          "confirms": CONFIRMS, "does_not_confirm": NOT_CONFIRMED,
                                          "is_file": False, "file_of": None,  # a live source, not a dated file
                                          "relayed_by": None}
    assert record["last_verified"] is None, "no person has checked it"
    assert record["verification_due"] is True, "CQC's listing confirms its facts, not what a person must check"
    listed = httpx.get(f"{synced}/services", params={"q": "Ashton Lodge"}, timeout=60).json()["results"]
    assert [r["source_confirmed"] for r in listed if r["id"] == ASHTON_ID] == [None], "read for one record only"
    schema = httpx.get(f"{synced}/openapi.json", timeout=60).json()["components"]["schemas"]
    described = schema["ServiceOut"]["properties"]
    assert "not a person's check" in described["last_verified"]["description"]
    assert "does not clear it" in described["verification_due"]["description"]
    assert "only a person's check" in schema["SourceConfirmedOut"]["properties"]["does_not_confirm"]["description"]


def test_a_type_a_maintainer_decided_is_not_said_to_be_cqcs(synced_home, data_dir, tmp_path):  # noqa: F811
    """Field House: CQC lists a mental health hospital; its rehab level is a maintainer's decision, not CQC's."""
    home = tmp_path / "home"
    shutil.copytree(synced_home, home, symlinks=True)
    assert rehabmap(home, data_dir, None, "review", "accept", FIELD_HOUSE_ID, "--level", "1").returncode == 0
    with serving(home, data_dir) as url:
        record = httpx.get(f"{url}/services/{FIELD_HOUSE_ID}", timeout=60).json()
    assert "type of service" in record["source_confirmed"]["does_not_confirm"]
    assert {"registration", "name", "address"} <= set(record["source_confirmed"]["confirms"])


def test_the_page_says_what_cqc_confirmed_and_that_no_person_has_checked(browser, synced, synced_home):  # noqa: F811
    page = browser.new_page()
    try:
        page.goto(f"{synced}/service/{ASHTON_ID}")
        listing = page.locator("#source-listing").inner_text()
        checked = page.locator("#last-checked").inner_text()
    finally:
        page.close()
    assert listing == (f"Listed by Care Quality Commission (CQC): last confirmed {long_date(synced_on(synced_home))} "
                       f"({', '.join(CONFIRMS)}). Not from Care Quality Commission (CQC): {', '.join(NOT_CONFIRMED)}. "
                       "Check those with the service.")
    assert checked == "Checked by the rehabmap team or the service: not yet"


def test_the_keepers_verification_page_shows_the_listing_beside_the_check(browser, synced, synced_home,  # noqa: F811
                                                                          data_dir):
    made = rehabmap(synced_home, data_dir, None, "tokens", "create", "--role", "maintainer")
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[0]
    with signed_in_page(browser, synced, token, "/keepers/verification-due") as page:
        row = page.locator("tr", has_text="Ashton Lodge Residential Home").inner_text()
    assert "Never" in row, "still due: a person's check of what CQC does not give"
    on = long_date(synced_on(synced_home))  # the public pages' long date (session 17)
    assert f"Care Quality Commission (CQC), {on} (registration, name, address" in row
