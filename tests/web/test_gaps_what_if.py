"""The area page's what if: the page shows the scenario's figures, the same as the API's for the same
scenario (one code path), says plainly that nothing is saved, and shows a mistake against its field."""

from __future__ import annotations

import html
import re

from rehabmap.gaps.indicators import indicator_text

CORNWALL = "E54000036"
ADD = "inpatient_rehab_level2@TR1 3LJ@12"


def test_what_if_page_shows_the_apis_changes(client):
    page = client.get(f"/pathway-gaps/{CORNWALL}", params={"add_type": "inpatient_rehab_level2",
                                                           "add_postcode": "TR1 3LJ", "add_beds": "12"})
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "What if: a scenario, not the directory" in text and "Nothing has been saved." in text
    added = re.search(r"<li>Added: a ([^<]*) at TR1 3LJ \(Cornwall\)</li>", text)
    assert added and "level 2" in added.group(1)
    body = client.get(f"/gaps/{CORNWALL}", params={"add": ADD}).json()
    changes = body["what_if"]["changes"]
    assert changes, "adding the only level 2 unit in Cornwall changes its figures"
    rows = re.findall(r'<tr class="nhsuk-table__row">\s*<th class="nhsuk-table__header" scope="row">([^<]*)</th>'
                      r'\s*<td class="nhsuk-table__cell">([^<]*)</td>\s*<td class="nhsuk-table__cell">([^<]*)</td>'
                      r'\s*<td[^>]*>([^<]*)</td>\s*<td[^>]*>([^<]*)</td>', page.text)
    assert len(rows) == len(changes)
    for row, change in zip(rows, changes):
        assert row[1] == change["label"]
        assert (row[3], row[4]) == tuple("No data" if change[f"{side}_no_data"] else
                                         indicator_text(change["indicator"], change[side])
                                         for side in ("before", "after"))
    # The map and the JSON link keep the scenario.
    assert "map.svg?type=community_rehab_team&amp;add=inpatient_rehab_level2%40TR1+3LJ%4012" in page.text


def test_englands_changes_are_no_data_with_why_in_the_json_and_on_the_page(client):
    """Before, the what-if gave England's figures of a type whose data rehabmap holds for part of England only as
    national facts ("England mean_km 56.6 → 56.5"), though the scorecard and the comparison give them as none:
    the scenario asked for a reason only where the type was absent. Now each change to England's figures is no
    data on both sides, with the coverage's reason, in the API's JSON and on the page's what-if."""
    body = client.get(f"/gaps/{CORNWALL}", params={"add": ADD}).json()
    england = [c for c in body["what_if"]["changes"] if c["scope"] == "england"]
    assert england, "a level 2 unit in Truro changes England's figures of level 2 units"
    for change in england:
        assert change["before"] is None and change["after"] is None
        assert change["before_no_data"] == change["after_no_data"]
        assert change["before_no_data"].startswith("No national figure: the directory holds complete ")
    page = html.unescape(client.get(f"/pathway-gaps/{CORNWALL}", params={
        "add_type": "inpatient_rehab_level2", "add_postcode": "TR1 3LJ", "add_beds": "12"}).text)
    assert f"No data ({england[0]['label'].lower()}): {england[0]['before_no_data']}" in page


def test_without_a_scenario_the_page_is_the_directorys(client):
    page = client.get(f"/pathway-gaps/{CORNWALL}").text
    assert "What if: a scenario" not in page and 'id="what-if"' in page


def test_the_forms_empty_box_for_a_service_to_leave_out_asks_for_nothing(client):
    """The what-if form sends its optional box for an id to leave out as it is, empty (`remove=`), which the API
    refuses as a blank id: the page's fields read it as nothing asked (`Fields.getlist`), the addition's figures
    shown; a box of spaces too."""
    for box in ("", "  "):
        page = client.get(f"/pathway-gaps/{CORNWALL}", params={"add_type": "inpatient_rehab_level2",
                                                               "add_postcode": "TR1 3LJ", "remove": box})
        assert page.status_code == 200, page.text
        assert "What if: a scenario, not the directory" in page.text and "Removed:" not in page.text


def test_a_blank_addition_in_the_pages_link_is_refused_as_the_api_refuses_it(client):
    """`add` is the API's parameter, which links to the page keep and no box of its form sends: a blank one (`?add=`,
    `?add=%20`) was read as nothing asked, the directory's figures answered 200, where the API answers 400. It is
    the page's error in the API's words; a blank beside a semicolon in the form's box for a service to leave out
    likewise (as the API refuses `remove=cqc:x;`)."""
    for params in ({"add": ""}, {"add": " "}, {"add": ["inpatient_rehab_level2@TR1 3LJ", ""]}):
        page = client.get(f"/pathway-gaps/{CORNWALL}", params=params)
        assert page.status_code == 400, (params, page.text[:300])
        assert "The addition given is blank, which names no service to add" in html.unescape(page.text), params
        assert "What if: a scenario" not in page.text
        assert client.get(f"/gaps/{CORNWALL}", params=params).status_code == 400
    page = client.get(f"/pathway-gaps/{CORNWALL}", params={"remove": "cqc:x;"})
    assert page.status_code == 400 and "has a blank service id beside a semicolon" in html.unescape(page.text)
    assert 'href="#remove"' in page.text


def test_a_bad_postcode_is_shown_against_its_field(client):
    page = client.get(f"/pathway-gaps/{CORNWALL}", params={"add_type": "ips_employment", "add_postcode": "LS99 9ZZ"})
    assert page.status_code == 400
    assert 'href="#add_postcode"' in page.text and "LS99 9ZZ" in html.unescape(page.text)
    assert "What if: a scenario" not in page.text


def test_a_type_is_needed_to_add(client):
    page = client.get(f"/pathway-gaps/{CORNWALL}", params={"add_postcode": "TR1 3LJ"})
    assert page.status_code == 400 and "Select the type of service to add" in page.text


def test_first_screen_answers_complete_and_compare(client):
    page = client.get("/pathway-gaps/E54000054").text
    body = client.get("/gaps/E54000054/compare").json()
    answer = page.index('id="answer"')
    assert answer < page.index('id="scorecard"') and answer < page.index("Adults (16 and over)")
    first = page[answer:page.index("Adults (16 and over)")]
    for item in body["comparisons"]:
        if item["indicator"] != "per_100k_adults":
            continue
        rank = f'{item["rank"]} of {item["ranked"]}' if item["rank"] else "Not ranked"
        row = re.search(r'scope="row">' + re.escape(html.escape(item["label"])) + r'</th>(.*?)</tr>', first, re.S)
        assert row and rank in row.group(1), item["label"]
        england = ("Partly covered" if item.get("england_unknown") == "partly_covered"
                   else indicator_text("per_100k_adults", item["england"]))
        assert england in row.group(1)


def test_a_catchment_on_the_page_equals_the_apis(client):
    """The form's catchment is the API's `@CATCHMENT`: the same changes, and the page says whom it serves."""
    scilly = "E06000053"  # the Isles of Scilly: a unit in Truro for them only serves no one on the mainland
    params = {"add_type": "inpatient_rehab_level2", "add_postcode": "TR1 3LJ", "add_catchment": scilly}
    page = client.get(f"/pathway-gaps/{CORNWALL}", params=params)
    assert page.status_code == 200, page.text
    assert f"only for people living in {scilly}</li>" in html.unescape(page.text)
    limited = client.get(f"/gaps/{CORNWALL}", params={"add": f"inpatient_rehab_level2@TR1 3LJ@{scilly}"})
    everyone = client.get(f"/gaps/{CORNWALL}", params={"add": "inpatient_rehab_level2@TR1 3LJ"}).json()
    assert limited.status_code == 200, limited.text

    def area(body):
        return {c["indicator"]: c["after"] for c in body["what_if"]["changes"] if c["scope"] == "area"}

    narrow, wide = area(limited.json()), area(everyone)
    assert narrow["count"] == wide["count"], (narrow, wide)  # it stands in Cornwall either way
    assert narrow["mean_km"] > wide["mean_km"], (narrow, wide)
    shown = re.findall(r"<td[^>]*>([^<]*)</td>\s*</tr>", page.text)
    assert indicator_text("mean_km", narrow["mean_km"]) in shown
    bad = client.get(f"/pathway-gaps/{CORNWALL}", params={**params, "add_catchment": "Leeds"})
    assert bad.status_code == 400 and 'href="#add_catchment"' in bad.text
    bad = client.get(f"/pathway-gaps/{CORNWALL}", params={**params, "add_catchment": "E08999999"})
    assert bad.status_code == 400 and 'href="#add_catchment"' in bad.text and "E08999999" in bad.text
