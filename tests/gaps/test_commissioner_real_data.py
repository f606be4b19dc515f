"""A commissioner's pathway gaps over a directory filled as a deployment fills it: `rehabmap sync cqc` (a real
process) against the replay of the CQC API serving the real recorded locations (the fixtures of
tests/web/test_real_feeds.py), then `rehabmap serve` on 127.0.0.1 and `rehabmap gaps`, read as a commissioner
reads them: the England map, the area page, its printed summary and the terminal's scorecard.

The synced directory holds six care homes registered for mental health, two of them in Nottingham and
Nottinghamshire and one in Barnet (North Central London); Field House, a mental health hospital in Derbyshire,
waits in the review queue as a level 1 (or 2) candidate; CQC covers care homes and inpatient units for England."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.sync.store_fixtures import rehabmap
from tests.web.test_real_feeds import DERBYSHIRE, NOTTINGHAMSHIRE, synced, synced_home  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

SVG = "{http://www.w3.org/2000/svg}"


def _titles(svg: str) -> dict[str, str]:
    """Each area's tooltip on the England map, by its code."""
    found = (re.search(r"\((E\d{8})\): (.*)$", title.text or "") for title in ET.fromstring(svg).iter(f"{SVG}title"))
    return {match[1]: match[2] for match in found if match}


def test_the_england_map_gives_the_figure_of_an_area_where_some_are_found(synced):
    """Before, the England map of supported accommodation drew Nottingham and Nottinghamshire "not covered (no
    data held yet)", with no figure, where its two care homes are found and its own page, the compare table and
    the CSV give their mean distance (8.9 km): the map kept its own order of the coverage rule, and a part that
    no source covers as a whole hid every figure, also where services were found. Now it reads the one rule
    (`told_status`): where some are found the figure is a finding, as everywhere else."""
    svg = httpx.get(f"{synced}/gaps/england.svg", params={"type": "supported_accommodation",
                                                          "indicator": "mean_km"}, timeout=300).text
    told = _titles(svg)
    area = httpx.get(f"{synced}/gaps/{NOTTINGHAMSHIRE}", timeout=300).json()
    housing = next(e for e in area["indicators"] if e["category"] == "supported_accommodation")
    assert housing["status"] == "present" and housing["mean_km"] == pytest.approx(8.9, abs=0.05)
    assert told[NOTTINGHAMSHIRE] == f"{housing['mean_km']:.1f} km"
    shaded = {code for code, words in told.items() if words.endswith(" km")}
    assert len(shaded) == 5  # the five ICBs with a care home of the six
    assert told[DERBYSHIRE] == "not covered (no data held yet)"  # none found, and floating support not covered
    legend = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "1 area" in legend and "1 areas" not in legend and "37 areas" in legend


def test_the_scorecard_says_what_none_anywhere_in_england_means(synced, synced_home, data_dir):
    """Before, Nottingham and Nottinghamshire's missing inpatient units read "none anywhere in England" (page,
    summary) and "no service of this type anywhere in England" (terminal) while Field House, a candidate of
    either level, waits in the review queue in Derbyshire; and the terminal said so of every part not covered
    too ("vcfse: no service of this type anywhere in England"), where rehabmap holds no such data at all. Now
    the words come from England's coverage, and a part not covered says only what is known of it."""
    body = httpx.get(f"{synced}/gaps/{NOTTINGHAMSHIRE}", timeout=300).json()
    card = body["scorecard"]
    waiting = "none confirmed anywhere in England yet (1 awaiting review)"
    assert card["missing"] == ["inpatient_rehab_level1", "inpatient_rehab_level2"]
    assert card["none_in_england"] == {"inpatient_rehab_level1": waiting, "inpatient_rehab_level2": waiting}
    for path in (f"/pathway-gaps/{NOTTINGHAMSHIRE}", f"/pathway-gaps/{NOTTINGHAMSHIRE}/summary"):
        page = httpx.get(f"{synced}{path}", timeout=300).text
        assert "none anywhere in England" not in page and f"Level 1 inpatient rehabilitation unit: {waiting}" in page

    done = rehabmap(synced_home, data_dir, None, "gaps", NOTTINGHAMSHIRE)
    assert done.returncode == 0, done.stderr
    assert f"  inpatient_rehab_level2: {waiting}." in done.stdout
    assert "anywhere in England." not in done.stdout.replace(f"{waiting}.", "")

    done = rehabmap(synced_home, data_dir, None, "gaps", DERBYSHIRE)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Supported accommodation is not covered (no source lists floating support): the care home 22 km away is the
    # nearest known, not an out-of-area provider of a part found missing; its 24-hour subtype is missing.
    assert any(line.startswith("  supported_accommodation: nearest known elsewhere Dovetail House") for line in lines)
    assert any(line.startswith("  supported_accommodation:residential_24h: nearest out-of-area provider Dovetail")
               for line in lines)
    assert not any(line.startswith(("  vcfse:", "  advocacy", "  community_rehab_team:", "  inpatient"))
                   for line in lines)

