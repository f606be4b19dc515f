"""A commissioner's pathway gaps over a directory filled as a deployment fills it: `rehabmap sync cqc` (a real
process) against the replay of the CQC API serving the real recorded locations (the fixtures of
tests/web/real_feeds_home.py), then `rehabmap serve` on 127.0.0.1 and `rehabmap gaps`, read as a commissioner
reads them: the England map, the area page, its printed summary and the terminal's scorecard.

The synced directory holds six care homes registered for mental health, two of them in Nottingham and
Nottinghamshire and one in Enfield (North Central London); Field House, a mental health hospital in Derbyshire,
waits in the review queue as a level 1 (or 2) candidate; CQC covers care homes and inpatient units for England."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET

import httpx
import pytest

from geodata.distance import great_circle_km

from tests.sync.store_fixtures import rehabmap_here
from tests.web.real_feeds_home import DERBYSHIRE, NOTTINGHAMSHIRE, synced, synced_home  # noqa: F401 (fixtures)
from search.embedded import index_file

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
    # None found of the 24-hour staffed homes CQC lists in full, and floating support not covered: partly covered.
    assert told[DERBYSHIRE] == "partly covered (no data held for the rest)"
    legend = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "1 area" in legend and "1 areas" not in legend and "37 areas" in legend
    # England's own figure is no national finding where CQC lists only the 24-hour staffed homes: before, the heading
    # read "England: 75.3 km", the distance to the nearest of six care homes, as England's benchmark.
    assert ("England: no national figure: the directory holds complete Supported accommodation data for no part of "
            "England, so distances to the nearest service known are not England's. Adults are") in "".join(legend)
    # Of the kind CQC lists in full, England's figure is one.
    staffed = ET.fromstring(httpx.get(f"{synced}/gaps/england.svg", params={
        "type": "supported_accommodation:residential_24h", "indicator": "mean_km"}, timeout=300).text)
    heading = next(t.text for t in staffed.iter(f"{SVG}text") if (t.text or "").startswith("England: "))
    assert re.fullmatch(r"England: \d+\.\d km\. Adults are .*", heading), heading

    # CQC lists no IPS service: every ICB is unshaded, not covered. Before, the legend's one class read "0.0 km –
    # 0.0 km" beside "0 areas", as if a figure were known, under empty worst and best fives ("Worst: ." read aloud).
    none = ET.fromstring(httpx.get(f"{synced}/gaps/england.svg", params={"type": "ips_employment",
                                                                         "indicator": "mean_km"}, timeout=300).text)
    legend = [t.text for t in none.iter(f"{SVG}text")]
    at = legend.index("Legend")
    assert legend[at + 1:at + 4] == ["No area has a figure:", "not covered: no data held yet", "42 areas"]
    assert not any("0.0 km" in words or "five" in words for words in legend)
    assert ". No area has a figure. 42 not covered: " in none.find(f"{SVG}desc").text


def test_an_area_says_which_kinds_of_a_type_the_directory_covers(synced):
    """Session 19 made a search's coverage say which kinds of supported accommodation CQC covers (its 24-hour
    staffed care homes, not supported housing or floating support); before, GET /areas/{code}, the pathway
    scorecard and the compare rows still called the whole type "not_covered" in Derby and Derbyshire, with no
    kinds, as if nothing of it were known there: none of its care homes is there, which CQC's listing makes a
    finding. Now each face reads `CoverageMap.for_area`: partly covered, by which kinds."""
    staffed, rest = [HOMES_24H], ["supported_accommodation:floating_outreach",
                                  "supported_accommodation:supported_housing"]
    area = httpx.get(f"{synced}/areas/{DERBYSHIRE}", timeout=300).json()
    housing = area["coverage"]["supported_accommodation"]
    assert housing["status"] == "partly_covered" and housing["share_of_adults"] == 0
    assert housing["kinds_covered"] == staffed and housing["kinds_not_covered"] == rest
    assert housing["says"].startswith("None found, but the directory holds complete Supported accommodation data "
                                      "here only for 24-hour staffed residential care (as of ")
    assert area["coverage"]["vcfse"]["status"] == "not_covered" and area["coverage"]["vcfse"]["kinds_covered"] == []

    card = httpx.get(f"{synced}/gaps/{DERBYSHIRE}", timeout=300).json()["scorecard"]
    part = next(p for p in card["parts"] if p["type"] == "supported_accommodation")
    assert part["status"] == "not_covered" and "supported_accommodation" in card["not_covered"]
    assert part["coverage"]["status"] == "partly_covered" and part["coverage"]["kinds_covered"] == staffed

    row = next(r for r in httpx.get(f"{synced}/gaps", timeout=300).json()["areas"] if r["code"] == DERBYSHIRE)
    assert row["kinds_covered_parts"] == {"supported_accommodation": staffed}
    assert "supported_accommodation" not in row["partly_covered_parts"]  # a share of adults, which this is not
    assert row["figures_unknown"]["supported_accommodation"] == "partly_covered"
    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"level": "icb"}, timeout=300).content.decode("utf-8-sig")
    derbyshire = next(r for r in csv.DictReader(io.StringIO(sheet)) if r["code"] == DERBYSHIRE)
    assert derbyshire["kinds_covered_parts"] == f"supported_accommodation={HOMES_24H}"
    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"level": "icb", "headers": "human"},
                      timeout=300).content.decode("utf-8-sig")
    told = next(r for r in csv.DictReader(io.StringIO(sheet)) if r["Area code"] == DERBYSHIRE)
    assert told["Parts covered for some kinds only"].startswith("Supported accommodation (data held only for ")
    assert "24-hour staffed residential care" in told["Parts covered for some kinds only"]

    page = httpx.get(f"{synced}/pathway-gaps/{DERBYSHIRE}", timeout=300).text
    housing_row = page[page.index(">Supported accommodation</th>"):][:400]
    assert "Partly covered" in housing_row and "Not yet covered" not in housing_row


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

    done = rehabmap_here(synced_home, data_dir, None, "gaps", NOTTINGHAMSHIRE)
    assert done.returncode == 0, done.stderr
    assert f"  inpatient_rehab_level2: {waiting}." in done.stdout
    assert "anywhere in England." not in done.stdout.replace(f"{waiting}.", "")

    done = rehabmap_here(synced_home, data_dir, None, "gaps", DERBYSHIRE)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Supported accommodation is not covered (no source lists floating support): the care home 22 km away is the
    # nearest known, not an out-of-area provider of a part found missing; its 24-hour subtype is missing.
    assert any(line.startswith("  supported_accommodation: nearest known elsewhere Dovetail House") for line in lines)
    assert any(line.startswith("  supported_accommodation:residential_24h: nearest out-of-area provider Dovetail")
               for line in lines)
    assert not any(line.startswith(("  vcfse:", "  advocacy", "  community_rehab_team:", "  inpatient"))
                   for line in lines)


NOTTS_COUNTY, DERBYSHIRE_COUNTY = "E10000024", "E10000007"
HOMES_24H = "supported_accommodation:residential_24h"


def _lsoas(data_dir) -> list[dict[str, str]]:
    path = data_dir / "smallareas" / "england_lsoa21_pwc_population_icb_lad.csv"
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_a_county_council_is_an_area_whose_figures_are_its_districts(synced, synced_home, data_dir):
    """A county council's commissioner asks for the county. Before, `rehabmap gaps Nottinghamshire` and E10000024
    only said it was a county council and listed its districts (and the API answered 404): social care is commissioned
    by the county, across its districts. Now the county is an area of its own: here its 24-hour care homes (Dovetail
    House, Mansfield) are recomputed from the CSV's own columns, its districts' LSOAs (utla23 E10000024) and the
    synced services, by plain haversine; its inpatient units are missing (CQC covers them, none held in it) while
    Derbyshire's await review (Field House, Alfreton, is held there); and the unitary Nottingham stays as it was."""
    lsoas = _lsoas(data_dir)
    county = [r for r in lsoas if r["utla23_code"] == NOTTS_COUNTY]
    districts = {r["ltla24_code"] for r in county}
    features = httpx.get(f"{synced}/services.geojson", timeout=300).json()["features"]
    homes = [f["properties"] for f in features if f["properties"]["subtype"] == "residential_24h"]
    adults = [int(r["pop_total_c2021"]) - int(r["pop_15_under"]) for r in county]
    nearest = [min(great_circle_km(float(r["lat"]), float(r["lon"]), h["lat"], h["lon"]) for h in homes)
               for r in county]
    body = httpx.get(f"{synced}/gaps/{NOTTS_COUNTY}", timeout=300).json()
    assert body["area"] | {"population_centre": None} == {
        "code": NOTTS_COUNTY, "name": "Nottinghamshire", "level": "county", "level_label": "county council",
        "adult_population": sum(adults), "total_population": sum(int(r["pop_total_c2021"]) for r in county),
        "small_areas": 505, "population_centre": None}
    found = next(i for i in body["indicators"] if i["category"] == HOMES_24H)
    assert found["status"] == "present" and found["count"] == sum(1 for h in homes if h["lad_code"] in districts) == 1
    assert found["mean_km"] == pytest.approx(sum(a * d for a, d in zip(adults, nearest)) / sum(adults), abs=1e-3)
    nearest_home = [min(homes, key=lambda h: great_circle_km(float(r["lat"]), float(r["lon"]), h["lat"], h["lon"]))
                    for r in county]
    outside = sum(a for a, home in zip(adults, nearest_home) if home["lad_code"] not in districts)
    assert found["share_nearest_outside_area"] == pytest.approx(outside / sum(adults), abs=1e-4)
    card = body["scorecard"]
    assert {"inpatient_rehab_level1", "inpatient_rehab_level2"} <= set(card["missing"])
    derbyshire = httpx.get(f"{synced}/gaps/{DERBYSHIRE_COUNTY}", timeout=300).json()["scorecard"]
    assert "inpatient_rehab_level1" in derbyshire["awaiting_review"] and "inpatient_rehab_level1" not in \
        derbyshire["missing"]

    for area in ("Nottinghamshire", NOTTS_COUNTY):
        done = rehabmap_here(synced_home, data_dir, None, "gaps", area)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"Nottinghamshire ({NOTTS_COUNTY}) — county council")
    kent = rehabmap_here(synced_home, data_dir, None, "gaps", "Kent")
    assert kent.stdout.startswith("Kent (E10000016) — county council") and "Kent and Medway" not in kent.stdout
    page = httpx.get(f"{synced}/pathway-gaps/area", params={"area": "Nottinghamshire"}, timeout=300)
    assert page.status_code == 303 and page.headers["location"] == f"/pathway-gaps/{NOTTS_COUNTY}"
    # A unitary authority and a district are areas of their own, as before; Nottingham's figures are its own.
    assert rehabmap_here(synced_home, data_dir, None, "gaps", "Mansfield").stdout.startswith("Mansfield (E07000174)")
    assert rehabmap_here(synced_home, data_dir, None, "gaps", "Leicester").stdout.startswith("Leicester (E06000016)")
    city = httpx.get(f"{synced}/gaps/E06000018", timeout=300).json()
    assert city["area"]["level"] == "la" and city["area"]["small_areas"] == sum(
        1 for r in lsoas if r["ltla24_code"] == "E06000018")


def test_the_area_page_dates_its_population_and_its_services(synced):
    """Before, the area page gave Nottingham and Nottinghamshire's 943,402 adults and 1,148,453 residents with no
    date, and no date for the directory its counts come from (the printed summary had both): a figure pasted
    into a paper could not be sourced. Recomputed from the small-area file: the ICB's 684 LSOAs sum to 943,402
    aged 16 and over and 1,148,453 in all (Census 2021)."""
    page = httpx.get(f"{synced}/pathway-gaps/{NOTTINGHAMSHIRE}", timeout=300).text
    facts = page[page.index("Adults (16 and over)"):page.index("Threshold distances")]
    assert "Adults (16 and over), Census 2021" in facts and "943,402" in facts
    assert "All residents, Census 2021" in facts and "1,148,453" in facts
    dated = r"Services counted</dt>\s*<dd[^>]*>\s*rehabmap&#39;s directory on \d{1,2} [A-Z][a-z]+ \d{4}"
    assert re.search(dated, facts)
    # Its kinds of service not covered are covered nowhere in it. Before, the page held "this information for the
    # whole of Nottingham and Nottinghamshire" back, "the table of indicators says where it holds some": it holds none.
    kinds = page[page.index("Kinds of service not yet covered here"):page.index('id="placements"')]
    assert "whole of" not in kinds and "holds some" not in kinds and "Floating outreach support" in kinds


HOMES = "supported_accommodation:residential_24h"


def _figures_column(page: str) -> list[tuple[str, str]]:
    """The compare page's areas in its order, each with its last cell (the chosen type's indicator)."""
    rows = re.findall(r'<a href="/pathway-gaps/(E\d{8})">.*?</th>(.*?)</tr>', page, re.S)
    return [(code, re.sub(r"<[^>]+>", "", re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)[-1]).strip())
            for code, cells in rows]


def test_a_table_of_one_subtype_counts_the_whole_pathway_and_reads_the_subtypes_own_status(synced, synced_home,
                                                                                           data_dir):
    """A commissioner compares 24-hour care homes, which CQC covers for all England. Before, `rehabmap gaps icb
    --type supported_accommodation:residential_24h` and GET /gaps/areas.csv?type=… gave every ICB 0 parts
    missing, 0 awaiting review and 0 not covered (the parts were counted over the types shown only): Derby and
    Derbyshire, whose inpatient units await review and five of whose parts are not covered, read complete. And
    the compare page of that subtype said "Not covered" for the 37 ICBs without a care home and sorted them last,
    reading supported accommodation's status, not the care homes' own: Cheshire and Merseyside's nearest care
    homes are 108.5 km away on average, a fact its scorecard gives."""
    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"level": "icb", "type": HOMES},
                      timeout=300).content.decode("utf-8-sig")
    rows = {r["code"]: r for r in csv.DictReader(io.StringIO(sheet))}
    derbyshire, notts = rows[DERBYSHIRE], rows[NOTTINGHAMSHIRE]
    assert (derbyshire["missing_count"], derbyshire["awaiting_review_count"], derbyshire["not_covered_count"]) == (
        "0", "2", "5")
    assert derbyshire["awaiting_review_parts"] == "inpatient_rehab_level1;inpatient_rehab_level2"
    assert notts["missing_parts"] == "inpatient_rehab_level1;inpatient_rehab_level2"
    assert notts["not_covered_count"] == "4" and notts[f"{HOMES}.mean_km"] == "8.869"

    page = httpx.get(f"{synced}/pathway-gaps/compare", params={"type": HOMES, "indicator": "mean_km",
                                                               "sort": "indicator", "order": "asc"}, timeout=300).text
    shown = _figures_column(page)
    assert len(shown) == 42 and dict(shown)["E54000008"] == "108.5"  # Cheshire and Merseyside
    figures = [float(figure) for _, figure in shown]  # every ICB has one: no "Not covered"
    assert figures == sorted(figures) and shown[0] == ("E54000028", "7.2")  # North Central London

    done = rehabmap_here(synced_home, data_dir, None, "gaps", "icb", "--type", HOMES, "--sort", f"{HOMES}.mean_km")
    assert done.returncode == 0, done.stderr
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.startswith("E5")}
    assert table[DERBYSHIRE][-6:] == ["0", "2", "5", "0", "0", "23.6"]
    means = [float(cells[-1]) for cells in table.values()]
    assert means == sorted(means) and len(means) == 42


def test_a_part_found_where_more_may_be_is_counted_so_in_every_area_row(synced, synced_home, data_dir):
    """The all-areas rows counted a part missing, awaiting review or not covered, and nothing else: a part found where
    the directory does not hold all its data (Nottingham and Nottinghamshire's two care homes, of supported
    accommodation, of which CQC lists only the care homes) counted nowhere, so an area with none missing, awaiting
    review or not covered but some found so (Cornwall and the Isles of Scilly, in session 51's audit) read missing 0,
    awaiting review 0, not covered 0: as complete. Now such parts are "found, may be more", in the terminal's table,
    the CSV's and the API's rows (new columns, after the others), and the compare page marks their counts with
    "+"."""
    done = rehabmap_here(synced_home, data_dir, None, "gaps", "icb")
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("code"))
    assert "not covered  found, may be more" in header
    assert "'found, may be more': parts found where rehabmap does not hold all their data" in done.stdout
    notts = next(line for line in done.stdout.splitlines() if line.startswith(NOTTINGHAMSHIRE))
    position = header.index("found, may be more") + len("found, may be more")
    assert notts[:position].split()[-4:] == ["2", "0", "4", "1"]  # the seven parts, each counted once

    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"level": "icb"}, timeout=300).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(sheet)))
    assert list(rows[0])[-4:] == ["found_may_be_more_parts", "found_may_be_more_count", "as_of", "population_year"]
    by_code = {r["code"]: r for r in rows}
    assert (by_code[NOTTINGHAMSHIRE]["found_may_be_more_parts"], by_code[NOTTINGHAMSHIRE]["found_may_be_more_count"]) \
        == ("supported_accommodation", "1")
    assert (by_code[DERBYSHIRE]["found_may_be_more_parts"], by_code[DERBYSHIRE]["found_may_be_more_count"]) == ("", "0")
    assert by_code["E92000001"]["found_may_be_more_count"] == "0"  # England's figures say it their own way
    found = httpx.get(f"{synced}/gaps", params={"level": "icb"}, timeout=300).json()
    [row] = [r for r in found["areas"] if r["code"] == NOTTINGHAMSHIRE]
    assert (row["found_may_be_more_parts"], row["found_may_be_more_count"]) == (["supported_accommodation"], 1)

    page = httpx.get(f"{synced}/pathway-gaps/compare", params={"level": "icb"}, timeout=300).text
    notts_row = page[page.index(f"/pathway-gaps/{NOTTINGHAMSHIRE}"):].split("</tr>", 1)[0]
    assert '2<span aria-hidden="true">+</span><span class="nhsuk-u-visually-hidden"> found, but there may be more' \
        in notts_row


def test_the_start_page_says_how_much_is_known_of_the_pathway(synced):
    """Before, the pathway gaps page opened with "0 of 42 integrated care boards have all seven parts of the
    pathway inside their area", a finding about every ICB, where the directory holds no data anywhere on four
    parts (VCFSE, advocacy, IPS, community rehabilitation teams) and supported accommodation only in part."""
    page = httpx.get(f"{synced}/pathway-gaps", timeout=300).text.replace("&#39;", "'")
    assert ("0 of 42 integrated care boards have all seven parts of the pathway inside their area, as far as "
            "rehabmap's directory shows: for 42 of them it does not yet hold the data on every part (or none is "
            "confirmed yet), so a part it finds none of may still be there.") in page


def test_the_compare_pages_england_row_says_what_is_known(synced):
    """Before, the England row of the compare page printed Python's "None" as England's count of every part
    rehabmap holds no data of (VCFSE, advocacy, IPS, community teams) or has none confirmed of (inpatient units:
    Field House awaits review), read by a commissioner as "none in England", and "England: –" for
    floating support. Now England's cells say what the areas' say: "?" with "Not covered" or "None confirmed
    yet"."""
    page = httpx.get(f"{synced}/pathway-gaps/compare", params={"type": "supported_accommodation:floating_outreach",
                                                               "indicator": "mean_km"}, timeout=300).text
    england = page[page.index("<tfoot>"):page.index("</tfoot>")]
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", england, re.S)]
    # Supported accommodation: six care homes found, of a type the directory holds complete data of for no part of
    # England (CQC lists the 24-hour staffed homes only): "6" read as England's count.
    assert cells == ["Not applicable", "?Not covered", "?Not covered", "?Not covered", "?Partly covered",
                     "?Not covered", "?None confirmed yet", "?None confirmed yet", "Not covered"]
    assert "England: not covered." in page
    england = httpx.get(f"{synced}/gaps", timeout=300).json()["england"]
    assert england["figures_unknown"]["supported_accommodation"] == "partly_covered"
    assert england["types"]["supported_accommodation"]["mean_km"] is None
    assert england["figures_unknown"]["ips_employment"] == "not_covered"
    # The CSV's England row said nothing of why its cells were empty: its `figures_unknown` says it, in words too.
    sheet = httpx.get(f"{synced}/gaps/areas.csv", timeout=300).content.decode("utf-8-sig")
    [england_row] = [r for r in csv.DictReader(io.StringIO(sheet)) if r["code"] == "E92000001"]
    assert england_row["supported_accommodation.mean_km"] == ""
    said = dict(item.split("=") for item in england_row["figures_unknown"].split(";"))
    assert said == england["figures_unknown"]
    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"headers": "human"}, timeout=300).content.decode("utf-8-sig")
    [told] = [r for r in csv.DictReader(io.StringIO(sheet)) if r["Area code"] == "E92000001"]
    assert "Supported accommodation: partly covered (no data held for the rest)" in told["Why figures are empty"]


def test_a_care_home_counts_in_its_postcodes_local_authority(synced, synced_home):
    """Maison Moti Care Home (N14 4PH) is in Enfield: ONS's postcode directory (lad25cd) and CQC's own
    `localAuthority` say so. CQC gives its coordinates too, and the import placed a row with coordinates by the
    generalised boundaries alone, which agree with the postcode directory for only ~98% of single postcodes
    (../shared/data/README.md): it was indexed in Barnet, so Enfield's care homes read MISSING and Barnet had
    one. Now a row's postcode gives its local authority, as a home's does."""
    import sqlite3

    with sqlite3.connect(index_file(synced_home)) as db:
        [(lad,)] = db.execute("SELECT json_extract(doc, '$.areas.lad_code') FROM services WHERE id = ?",
                              ("cqc:1-112789029",)).fetchall()
    assert lad == "E09000010"
    enfield = httpx.get(f"{synced}/gaps/E09000010", timeout=120).json()["scorecard"]["parts"]
    [care_homes] = [p for p in enfield if p["type"] == "supported_accommodation"]
    assert (care_homes["status"], care_homes["count"]) == ("present", 1)
    barnet = httpx.get(f"{synced}/gaps/E09000003", timeout=120).json()["scorecard"]["parts"]
    assert [p["count"] for p in barnet if p["type"] == "supported_accommodation"] == [0]


def test_a_what_ifs_area_map_opens_on_the_kind_the_scenario_makes_known(synced):
    """A community team added in Derbyshire, whose directory (synced from CQC and ORUK) holds no data on community
    teams there: the area page's what-if map showed community teams (the scenario's figures are facts: one is found),
    but `GET /gaps/{code}/map.svg` with the same `add` and no `type` opened on the directory's default kind, a map
    of something else under the page's what-if. Now both read the scenario's report (`report_for(…, scenario)`)."""
    added = {"add": "community_rehab_team@DE55 7DT"}
    page = httpx.get(f"{synced}/pathway-gaps/{DERBYSHIRE}", params=added, timeout=300).text
    assert f"/gaps/{DERBYSHIRE}/map.svg?type=community_rehab_team&amp;add=community_rehab_team%40DE55+7DT" in page
    area_map = f"{synced}/gaps/{DERBYSHIRE}/map.svg"
    unasked = httpx.get(area_map, params=added, timeout=300)
    assert unasked.status_code == 200
    assert unasked.text == httpx.get(area_map, params={**added, "type": "community_rehab_team"}, timeout=300).text
    # Without the scenario, the map opens on another kind: community teams' figures there are not facts.
    directory_page = httpx.get(f"{synced}/pathway-gaps/{DERBYSHIRE}", timeout=300).text
    assert f"/gaps/{DERBYSHIRE}/map.svg?type=community_rehab_team" not in directory_page
    assert httpx.get(area_map, timeout=300).text != httpx.get(area_map, params={"type": "community_rehab_team"},
                                                              timeout=300).text
