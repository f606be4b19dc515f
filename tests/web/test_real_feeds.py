"""The public and clinicians' pages over a directory filled as a deployment fills it: `rehabmap sync cqc` (a real
process) against the replay of the CQC API serving the 103 real recorded locations (tests/sync/replay.py), then
`rehabmap serve` on 127.0.0.1, read in real headless Chromium and over HTTP. What a person is told where the
directory finds none: none there, none confirmed yet, or no information held for the area at all.

The real records place Dovetail House (a care home registered for mental health) in Mansfield, NG18 2AT, and
Field House (a mental health hospital, held for review with level 1 proposed: nothing it says states a level)
in Alfreton, DE55 7DT. CQC's complete listing covers supported accommodation and inpatient units for England;
nothing covers employment, advocacy, community support or community rehabilitation teams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.sync.replay import running
from tests.sync.store_fixtures import FIELD_HOUSE_POSTCODE, make_home, rehabmap, serving
from tests.web.test_browser import axe

pytestmark = pytest.mark.slow

DOVETAIL_POSTCODE = "NG18 2AT"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory, geodata_dir: Path, data_dir: Path) -> Iterator[str]:
    """The URL of `rehabmap serve` over a home that `rehabmap sync cqc` filled from the recorded CQC API."""
    home = make_home(tmp_path_factory.mktemp("real-feeds") / "home", geodata_dir)
    for replay in running(data_dir / "feeds"):
        done = rehabmap(home, data_dir, replay, "sync", "cqc")
        assert done.returncode == 0, done.stderr
        assert "held cqc:1-112845365 Field House: inferred: inpatient_rehab_level1" in done.stdout
    with serving(home, data_dir) as url:
        yield url


def kind_text(page, slug: str) -> str:
    return page.locator(f"section[aria-labelledby='kind-{slug}']").inner_text()


def test_everything_near_says_what_finding_none_of_a_kind_means(browser, synced, axe_source):
    """Before: every kind without a service near the home read "None found within 25 miles", where the
    directory holds no employment, advocacy or community data anywhere, and where a hospital waits in the
    review queue: a person was told there was nothing, when rehabmap simply did not know."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{synced}/find/everything?where={DOVETAIL_POSTCODE.replace(' ', '+')}&within=10")
    assert "Dovetail House" in kind_text(page, "housing")
    for slug, title in (("work", "getting back to work"), ("advocacy", "someone to speak up for you"),
                        ("peer-support", "peer and community support"),
                        ("rehabilitation", "rehabilitation teams and units")):
        assert (f"We do not hold information about {title} for this area yet, so this does not mean there is "
                "none near you.") in kind_text(page, slug)
    main = page.locator("main").inner_text()
    assert "None found" not in main and "Mind's Infoline" in main
    assert axe(page, axe_source) == []

    page.goto(f"{synced}/find/everything?where={FIELD_HOUSE_POSTCODE.replace(' ', '+')}&within=5")
    assert ("Some services of this kind near you are still being checked by the people who keep this directory"
            in kind_text(page, "rehabilitation"))
    assert "None found" not in page.locator("main").inner_text()
    context.close()


def test_a_held_hospital_is_a_candidate_at_either_level(synced):
    """A mental health hospital held for review may be a level 1 or a level 2 unit: the maintainer says which.
    Before, only its proposed level 1 counted, so a level 2 search beside Field House said "None found. The
    directory holds complete Level 2 inpatient rehabilitation unit data for this area"."""
    for level in ("inpatient_rehab_level1", "inpatient_rehab_level2"):
        body = {"home": {"postcode": FIELD_HOUSE_POSTCODE}, "types": [level], "max_distance_km": 10}
        [summary] = httpx.post(f"{synced}/match", json=body, timeout=60).json()["summary"]
        assert (summary["found"], summary["coverage"]["pending_review"]) == ("awaiting_review", 1), level
        assert summary["coverage"]["says"].startswith("None confirmed yet: 1 candidate awaits review")
    with httpx.Client(base_url=synced, timeout=60, follow_redirects=True) as client:
        page = client.post("/alternatives", data={"home": FIELD_HOUSE_POSTCODE,
                                                  "types": "inpatient_rehab_level2"}).text
    assert "None confirmed yet: 1 candidate awaits review" in page
    # No needs were given, so none can be unmet: the page does not say "No service meets all of these needs".
    assert "No service of these types was found." in page and "these needs" not in page


def test_cqc_covers_care_homes_not_all_supported_accommodation(synced):
    """CQC registers every care home, but not floating support (housing support is not a regulated activity)
    nor supported housing whose staff give no personal care. Before, a complete CQC run claimed supported
    accommodation as a whole: Derby and Derbyshire's scorecard called floating outreach and supported housing
    "missing", and "Somewhere to live with support" near Field House said "We could not find" rather than that
    rehabmap holds no such information there."""
    near = {"home": {"postcode": FIELD_HOUSE_POSTCODE}, "types": ["supported_accommodation"], "max_distance_km": 5}
    found = {}
    for subtypes in (["residential_24h"], ["floating_outreach"], []):
        [summary] = httpx.post(f"{synced}/match", json={**near, "subtypes": subtypes}, timeout=60).json()["summary"]
        found[tuple(subtypes)] = summary["found"]
    assert found == {("residential_24h",): "none_found", ("floating_outreach",): "not_yet_covered",
                     (): "not_yet_covered"}
    housing = httpx.get(f"{synced}/find/housing", params={"where": FIELD_HOUSE_POSTCODE, "within": 5}, timeout=60)
    assert "We do not hold information about somewhere to live with support for this area yet" in housing.text
    card = httpx.get(f"{synced}/gaps/E54000058", timeout=300).json()["scorecard"]  # Derby and Derbyshire
    assert card["missing_subtypes"] == ["supported_accommodation:residential_24h"]
    assert {"supported_accommodation:floating_outreach", "supported_accommodation:supported_housing"} <= set(
        card["not_covered_subtypes"])
