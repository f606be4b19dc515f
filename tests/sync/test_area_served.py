"""A community team that states no area it serves, offered to a home outside its ICB, on the NHS website's real
record (the recorded NHS Service Search feed replayed on 127.0.0.1): DESIGN.md §3 says community services usually
serve only the people of their own area, so a match says the area it serves is not known."""

from __future__ import annotations

import html
import re

import httpx

from rehabmap.explanation import AREA_SERVED_NOT_KNOWN
from tests.sync.replay import running
from tests.sync.store_fixtures import rehabmap, serving
from tests.sync.test_maintainers_word import GLEBELANDS, indexed_and_synced_home

NOTTINGHAM = "NG5 2EW"


def test_a_community_team_stating_no_area_is_not_offered_far_away_as_if_it_took_the_person(tmp_path, geodata_dir,
                                                                                           data_dir):
    """Glebelands Centre (Sussex), accepted from the NHS website's feed, states no area it serves. A Nottingham
    home was offered it 153 miles away ("saved 99 miles" against a Cornwall placement) with nothing to say a
    community team may not take a person from outside its area. Now the explanation, the /alternatives card (a
    tag) and the text for notes say the area it serves is not known; a team that states its area, or one in the
    home's own ICB, is not said to (the sample's teams state none, so those outside the ICB say it too)."""
    for replay in running(data_dir / "feeds"):
        home = indexed_and_synced_home(tmp_path, geodata_dir, data_dir, replay)
    ask = {"home": {"postcode": NOTTINGHAM}, "types": ["community_rehab_team"], "limit": 100}
    with serving(home, data_dir) as url:
        results = httpx.post(f"{url}/match", json=ask, timeout=60).json()["results"]
        areas = {r["id"]: httpx.get(f"{url}/services/{r['id']}", timeout=30).json()["service_area"] for r in results}
        near_it = httpx.post(f"{url}/match", timeout=60, json={
            "home": {"postcode": next(r["postcode"] for r in results if r["id"] == GLEBELANDS)},
            "types": ["community_rehab_team"], "max_distance_km": 5}).json()["results"]
        with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as client:
            page = client.post("/alternatives", data={"home": NOTTINGHAM, "types": "community_rehab_team",
                                                      "order": "nearest", "show": "all"}).text
    [glebelands] = [r for r in results if r["id"] == GLEBELANDS]
    assert not glebelands["in_home_icb"] and glebelands["distance_km"] > 240
    assert AREA_SERVED_NOT_KNOWN.strip() in glebelands["explanation"]
    assert all((AREA_SERVED_NOT_KNOWN.strip() in r["explanation"]) == (
        not r["in_home_icb"] and not areas[r["id"]]["codes"] and not areas[r["id"]]["has_polygon"]) for r in results)
    [at_home] = [r for r in near_it if r["id"] == GLEBELANDS]
    assert at_home["in_home_icb"] and "Area served not known" not in at_home["explanation"]
    card = page.split("Glebelands Centre</a>", 1)[1].split("</dl>", 1)[0]
    assert "Area served not known</strong>" in card
    notes = html.unescape(re.search(r'<textarea[^>]*id="plain-text"[^>]*>([^<]*)</textarea>', page).group(1))
    notes = notes.split(". Glebelands Centre", 1)[1].split("\n")[1]
    assert "; area served not known: ask whether it takes people from the home's area" in notes, notes
    matched = rehabmap(home, data_dir, None, "match", "--postcode", NOTTINGHAM, "--type", "community_rehab_team",
                       "--limit", "100")
    assert matched.returncode == 0, matched.stderr
    assert AREA_SERVED_NOT_KNOWN.strip() in matched.stdout.split("Glebelands Centre: ", 1)[1].splitlines()[0]
