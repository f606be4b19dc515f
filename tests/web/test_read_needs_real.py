"""Needs read from a service's own words are shown as read, never as stated, end to end: a real `rehabmap sync
cqc` (its own process) against the replay of the 103 real recorded CQC locations, served by a real
`rehabmap serve`, read through the API and in Chromium.

CQC's real Dovetail House (a care home in Mansfield) states learning disabilities and substance misuse through
its specialisms. Here it carries the other name a provider may give CQC (`alsoKnownAs`), and that name speaks of
autistic adults and of no step-free access. Before, rehabmap merged those words into the needs the service
states: the API and the pages said it meets autism, `needs_confirmed` counted it as an explicit yes, and a
person needing step-free access never saw it at all, on a guess. Now both are read, not confirmed. The name
also says "women only": before session 18 that became its gender, as if stated ("Women only.", needs_confirmed
counted the women-only need, and a man was never shown it); now it is read too, and only cautioned.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rehabmap.oruk import service_uuid
from tests.cqc_records import DOVETAIL, DOVETAIL_ID
from tests.sync.replay import running
from tests.sync.store_fixtures import make_home, rehabmap, serving
from tests.web.browser import axe

pytestmark = pytest.mark.slow

ALSO_KNOWN_AS = "Dovetail House recovery home for autistic adults, women only, no step-free access"
CAUTION = "Its listing suggests it takes women only ('women only'); not confirmed: ask the service."
HOME = {"postcode": "NG18 2AT"}
ASKED = {"home": HOME, "types": ["supported_accommodation"], "needs": ["autism", "step_free_access"],
         "max_distance_km": 10}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, geodata_dir: Path, data_dir: Path) -> Iterator[str]:
    home = make_home(tmp_path_factory.mktemp("read-needs") / "home", geodata_dir)
    for replay in running(data_dir / "feeds"):
        replay.cqc.alter(DOVETAIL, alsoKnownAs=ALSO_KNOWN_AS)
        done = rehabmap(home, data_dir, replay, "sync", "cqc")
        assert done.returncode == 0, done.stderr
    with serving(home, data_dir) as url:
        yield url


def dovetail(answer: dict) -> dict | None:
    return next((r for r in answer["results"] if r["id"] == DOVETAIL_ID), None)


def test_the_api_says_read_not_confirmed_and_never_hides_on_a_guess(served):
    record = httpx.get(f"{served}/services/{DOVETAIL_ID}", timeout=60).json()
    assert (record["needs_met"], record["needs_not_met"]) == (["learning_disability", "substance_misuse"], [])
    # Those CQC registered it to care for (its specialisms), said so: before, nothing in the record told them apart.
    assert record["needs_registered"] == ["learning_disability", "substance_misuse"]
    assert (record["gender"], record["gender_read_from_text"]) == (None, {"female_only": "women only"})
    assert record["needs_read_from_text"] == {"autism": "autistic", "female_only": "women only"}
    assert record["needs_read_not_met"] == {"male_only": "women only", "mixed_gender": "women only",
                                            "step_free_access": "no step-free"}

    result = dovetail(httpx.post(f"{served}/match", json=ASKED, timeout=60).json())
    assert result is not None  # a read "not met" never leaves it out
    assert result["matched_needs"] == [] and result["unknown_needs"] == ["autism", "step_free_access"]
    assert (result["needs_read_from_text"], result["needs_read_not_met"]) == (["autism"], ["step_free_access"])
    assert ("Its listing mentions: Autism ('autistic'); not confirmed: ask the service. Its listing suggests it may "
            "not take: Step-free access ('no step-free'); not confirmed: ask the service.") in result["explanation"]
    assert "Meets:" not in result["explanation"] and CAUTION in result["explanation"]
    assert (result["gender"], result["gender_read_from_text"]) == (None, {"female_only": "women only"})

    # A man is still shown it, cautioned; a women-only need asked for is read, never confirmed.
    man = dovetail(httpx.post(f"{served}/match", json={**ASKED, "gender": "male"}, timeout=60).json())
    assert man is not None and CAUTION in man["explanation"] and "Women only." not in man["explanation"]
    women = httpx.post(f"{served}/match", json={**ASKED, "needs": ["female_only"]}, timeout=60).json()
    assert (dovetail(women)["matched_needs"], dovetail(women)["needs_read_from_text"]) == ([], ["female_only"])
    assert dovetail(httpx.post(f"{served}/match", json={**ASKED, "needs": ["female_only"], "needs_confirmed": True},
                               timeout=60).json()) is None

    confirmed = httpx.post(f"{served}/match", json={**ASKED, "needs": ["autism"], "needs_confirmed": True}, timeout=60)
    assert dovetail(confirmed.json()) is None  # a word in its name is not the service saying so
    stated = httpx.post(f"{served}/match", json={**ASKED, "needs": ["substance_misuse"], "needs_confirmed": True},
                        timeout=60)
    assert dovetail(stated.json())["matched_needs"] == ["substance_misuse"]
    # Said as the pages say it: before, "Meets: Substance misuse." as though the provider said whom it takes.
    assert "Meets: Substance misuse (as registered with CQC)." in dovetail(stated.json())["explanation"]


def test_exports_and_the_oruk_feed_keep_read_apart_from_stated(served):
    """CSV and GeoJSON carry the read needs in their own columns; the ORUK feed's needs taxonomy (which HSDS
    readers take as facts) holds only the stated ones, and the read ones go in a note that says so."""
    text = httpx.get(f"{served}/services.csv", timeout=60).content.decode("utf-8-sig")  # the mark for Excel
    sheet = list(csv.DictReader(io.StringIO(text)))
    [row] = [r for r in sheet if r["id"] == DOVETAIL_ID]
    assert (row["needs_met"], row["needs_read_from_text"], row["gender"], row["gender_read_from_text"]) == (
        "learning_disability;substance_misuse", "autism (autistic);female_only (women only)", "",
        "female_only (women only)")
    assert row["needs_read_not_met"] == ("male_only (women only);mixed_gender (women only);"
                                         "step_free_access (no step-free)")
    assert row["needs_registered"] == "learning_disability;substance_misuse"
    features = httpx.get(f"{served}/services.geojson", timeout=60).json()["features"]
    [feature] = [f["properties"] for f in features if f["id"] == DOVETAIL_ID]
    assert feature["needs_read_from_text"] == {"autism": "autistic", "female_only": "women only"}
    assert "autism" not in feature["needs_met"] and feature["gender"] is None
    assert feature["gender_read_from_text"] == {"female_only": "women only"}
    assert feature["needs_registered"] == ["learning_disability", "substance_misuse"]

    published = httpx.get(f"{served}/oruk/services/{service_uuid(DOVETAIL_ID)}", timeout=60).json()
    terms = [(a["taxonomy_term"]["taxonomy"], a["taxonomy_term"]["code"], a.get("value"))
             for a in published["attributes"]]
    assert [(code, value) for taxonomy, code, value in terms if taxonomy == "rehabmap-needs"] == [
        ("learning_disability", "yes"), ("substance_misuse", "yes")]
    assert "gender" not in [code for _, code, _ in terms]  # only a stated gender is published as one
    assert ("rehabmap", "needs_registered", "learning_disability, substance_misuse") in terms
    [note] = [value for _, code, value in terms if code == "needs_read_from_text"]
    assert note == (CAUTION + " Its listing mentions: Autism ('autistic'); not confirmed: ask the service. Its "
                    "listing suggests it may not take: Step-free access ('no step-free'); not confirmed: ask the "
                    "service.")


def test_the_pages_show_it_as_read(browser, served, axe_source):
    page = browser.new_page()
    page.goto(f"{served}/service/{DOVETAIL_ID}")
    main = page.locator("main").inner_text()
    assert "Its listing mentions (not confirmed: ask the service)\t\nAutism ('autistic')" in main
    assert ("Its listing suggests it may not take (not confirmed: ask the service)\t\nStep-free access "
            "('no step-free')") in main
    # CQC's specialisms are what CQC registered it to care for, said so: before, "Suitable for", as though the
    # provider said whom it takes.
    assert "Suitable for" not in main
    heading = "Needs rehabmap reads from its Care Quality Commission (CQC) registration"
    registered = main.split(heading, 1)[1].split("Its listing", 1)[0]
    assert "Autism" not in registered and "Learning disability" in registered and "Substance misuse" in registered
    assert f"Who it takes\t{CAUTION}" in main and "Women-only service" not in main  # said once, as read
    assert axe(page, axe_source) == []

    page.goto(f"{served}/alternatives")
    page.fill("input[name=home]", HOME["postcode"])
    page.check("input[name=types][value=supported_accommodation]")
    page.check("input[name=needs][value=autism]")
    page.check("input[name=needs][value=learning_disability]")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url("**/alternatives/results/*")
    card = page.locator(".rm-option", has_text="Dovetail House")
    text = card.inner_text()
    assert "Meets\tLearning disability (as registered with CQC)" in text and "Confirms 1 of 2 needs" in text
    assert f"Its listing mentions Autism ('autistic'): not confirmed: ask the service. {CAUTION}" in text
    assert "Women only\n" not in text  # no tag says it as fact
    # Said once: before, the card's rows said it and the explanation under them said it again.
    assert text.count("Autism ('autistic')") == 1 and text.count("Learning disability") == 1
    assert "Meets: Learning disability (as registered with CQC)" in page.locator("#plain-text").input_value()
    assert axe(page, axe_source) == []
    page.close()
