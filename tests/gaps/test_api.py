"""GET /gaps…: the router on a FastAPI app with the project's error handlers, the real geography and an
embedded index holding the known services (as the composition root, app/main.py, wires it)."""

from __future__ import annotations

import codecs
import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import shapely.geometry
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import errors
from api.routes import gaps as gaps_routes
from rehabmap.config import Settings
from rehabmap.gaps.comparison import GapTable
from rehabmap.state import AppState
from tests.gaps.conftest import CORNWALL_ICB
from tests.gaps.gaps_api import backend, client, writer  # noqa: F401 (the API fixtures, for this module too)


def test_all_icbs_with_england_totals_sorted(client, analysis):
    reply = client.get("/gaps", params={"level": "icb", "type": "inpatient_rehab_level2",
                                        "sort": "inpatient_rehab_level2.mean_km", "order": "desc"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["level"] == "icb" and len(body["areas"]) == 42
    assert body["england"]["code"] == "E92000001" and body["england"]["adult_population"] == 46_006_449
    # Areas not covered for level 2 have no figure to rank by: they come last (see the test below).
    covered = [a for a in body["areas"] if "inpatient_rehab_level2" not in a["not_covered_parts"]]
    means = [a["types"]["inpatient_rehab_level2"]["mean_km"] for a in covered]
    assert means == sorted(means, reverse=True) and body["areas"][:len(covered)] == covered
    expected = {r.code: r for r in GapTable.of(analysis, "icb").rows()}
    for area in body["areas"]:
        figures = expected[area["code"]].types["inpatient_rehab_level2"]
        if area in covered:
            assert area["types"]["inpatient_rehab_level2"] == figures.values()
        else:  # rehabmap holds no level 2 data there: no figure is given as a fact, not even a zero count
            assert set(area["types"]["inpatient_rehab_level2"].values()) == {None}
    cornwall = next(a for a in body["areas"] if a["code"] == CORNWALL_ICB)
    # No source or curated table covers Cornwall here: its absent parts are not covered, rather than missing, and
    # they are the pathway's, whichever type the table shows.
    assert cornwall["missing_parts"] == [] and "inpatient_rehab_level2" in cornwall["not_covered_parts"]
    assert cornwall["not_covered_count"] == len(cornwall["not_covered_parts"]) > 1
    assert body["options"]["adults"].startswith("aged 16 and over")


def test_all_local_authorities(client):
    body = client.get("/gaps", params={"level": "la", "community_km": 20}).json()
    assert len(body["areas"]) == 296 and body["options"]["community_threshold_km"] == 20
    assert len(body["areas"][0]["types"]) == 14


@pytest.mark.parametrize("params, status, code, field", [
    ({"level": "region"}, 400, "invalid_value", "level"),
    ({"level": "icb", "type": "inpatient"}, 400, "unknown_service_type", "type"),
    ({"level": "icb", "sort": "bogus"}, 400, "invalid_value", "sort"),
    ({"level": "icb", "inpatient_km": -1}, 400, "invalid_value", "inpatient_km"),
])
def test_bad_parameters(client, params, status, code, field):
    reply = client.get("/gaps", params=params)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["code"] == code and error["field"] == field


TYPED_ROUTES = ["/gaps", "/gaps/areas.csv", "/gaps/dictionary", "/gaps/dictionary.csv", "/gaps/areas.geojson",
                f"/gaps/{CORNWALL_ICB}", f"/gaps/{CORNWALL_ICB}/compare", f"/gaps/{CORNWALL_ICB}/smallareas.csv",
                f"/gaps/{CORNWALL_ICB}/smallareas.geojson"]


@pytest.mark.parametrize("path", TYPED_ROUTES)
def test_a_blank_type_is_refused_as_an_unknown_one_is(client, path):
    """Before: `type=` (or `type=%20`, or a comma with no type after it) named no type and was read as every type,
    a 200 answering a request not made, where the document's schema refuses it and an unknown type is a 400. It
    says what was given, in the words GET /services uses: before, "Unknown service type '' (a blank one names no
    type)" for each, which did not say that the blank of 'imha,' was after its comma."""
    unknown = client.get(path, params={"type": "inpatient"})
    assert unknown.status_code == 400
    alone = "The service type given is blank, which names no type. Use one of: "
    for blank, said in (("", alone), (" ", alone),
                        ("inpatient_rehab_level2,", "'inpatient_rehab_level2,' has a blank service type beside a "
                                                    "comma, which names no type. Use one of: "),
                        ("all, ,imha", "'all, ,imha' has a blank service type beside a comma, which names no type.")):
        reply = client.get(path, params={"type": blank})
        assert reply.status_code == 400, (blank, reply.text)
        error = reply.json()["error"]
        assert (error["code"], error["field"]) == (unknown.json()["error"]["code"], "type") == (
            "unknown_service_type", "type")
        assert error["message"].startswith(said) and "inpatient_rehab_level2" in error["message"], error["message"]


@pytest.mark.parametrize("path", ["/gaps/england.svg", f"/gaps/{CORNWALL_ICB}/map.svg"])
def test_a_blank_map_type_is_refused(client, path):
    """Before: an area map's `type=` was read as no type asked (its default), `type=%20` as an unknown type."""
    for blank in ("", " "):
        reply = client.get(path, params={"type": blank})
        assert reply.status_code == 400 and reply.json()["error"]["code"] == "unknown_service_type", reply.text


def test_one_area_report(client):
    reply = client.get(f"/gaps/{CORNWALL_ICB}")
    assert reply.status_code == 200
    body = reply.json()
    assert body["area"]["name"] == "NHS Cornwall and the Isles of Scilly Integrated Care Board"
    assert body["area"]["level"] == "icb" and body["area"]["small_areas"] > 300
    assert "inpatient_rehab_level2" in body["scorecard"]["not_covered"] and body["scorecard"]["missing"] == []
    provider = body["scorecard"]["nearest_out_of_area_for_missing"]["inpatient_rehab_level2"]
    assert provider["icb_code"] != CORNWALL_ICB and provider["distance_km"] > 0
    assert len(body["indicators"]) == 14 and len(body["indicators"][0]["furthest_small_areas"]) == 10
    only = client.get("/gaps/e08000035", params={"type": ["vcfse", "advocacy:imha"]}).json()
    assert [i["category"] for i in only["indicators"]] == ["vcfse", "advocacy:imha"]
    assert len(only["scorecard"]["parts"]) == 7  # the scorecard always covers the whole pathway


def test_unknown_area_is_a_404_naming_it(client):
    reply = client.get("/gaps/E54999999")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "unknown_area" and "E54999999" in reply.json()["error"]["message"]
    assert client.get("/gaps/E54999999/map.svg").status_code == 404
    assert client.get("/gaps/E54999999/smallareas.csv").status_code == 404


def test_another_nations_code_is_told_as_that_nations(client):
    """Cardiff's code said "No English ICB or local authority has the code", as for a mistyped one (the areas
    API already told it apart); now the gaps say it is Welsh and what they take."""
    for path in ("/gaps/W06000015", "/gaps/w06000015/map.svg"):
        reply = client.get(path)
        assert reply.status_code == 404
        error = reply.json()["error"]
        assert error["code"] == "unknown_area"
        assert error["message"].startswith("'W06000015' is the ONS code of an area in Wales. rehabmap covers England "
                                           "only: gap analysis is by ICB (E54…), local authority (E06…, E07…, "
                                           "E08…, E09…) or county council (E10…)."), error


@pytest.mark.parametrize("code, kind", [
    ("E01033010", "a lower layer super output area's code (LSOA, E01…"),
    ("E02006875", "a middle layer super output area's code (MSOA, E02…"),
    ("E11000006", "a metropolitan county's code (E11…, which has no county council: its metropolitan boroughs are"),
    ("E13000001", "Inner or Outer London's code (E13…"),
])
def test_a_code_of_another_kind_is_named_as_what_it_is(client, code, kind):
    """A Leeds LSOA's code, a Leeds MSOA's, West Yorkshire's metropolitan county's and Inner London's said "No
    English ICB, local authority or county council has the code", as a typo would: each is a real code of a kind
    the gaps do not take. Now each is named as what it is, with the codes they take."""
    for path in (f"/gaps/{code}", f"/gaps/{code}/map.svg", f"/gaps/{code}/smallareas.csv"):
        reply = client.get(path)
        assert reply.status_code == 404, path
        error = reply.json()["error"]
        assert error["code"] == "unknown_area" and error["field"] == "area_code"
        assert error["message"].startswith(f"'{code}' is {kind}") and error["message"].endswith(
            "; gap analysis takes an ICB code (E54…), a local authority code (E06…, E07…, E08…, E09…) or a county "
            "council's (E10…)."), error["message"]


def test_area_table_exports(client):
    reply = client.get("/gaps/areas.csv", params={"level": "icb", "type": "community_rehab_team"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    # The byte order mark Excel reads UTF-8 by, as in the services CSV ("—" showed as "â€”" without it).
    assert reply.content.startswith(codecs.BOM_UTF8)
    rows = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"))))
    assert len(rows) == 43 and rows[-1]["code"] == "E92000001"
    assert {"community_rehab_team.mean_km", "community_rehab_team.share_beyond_threshold"} <= set(rows[0])
    reply = client.get("/gaps/areas.geojson", params={"level": "icb", "type": "community_rehab_team"})
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/geo+json"
    features = reply.json()["features"]
    assert len(features) == 42 and all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in features)
    assert "community_rehab_team.p90_km" in features[0]["properties"]


@pytest.mark.parametrize(("level", "areas"), [("icb", 42), ("la", 296), ("county", 21)])
def test_area_geojson_polygons_are_valid_and_wound_as_rfc_7946_says(client, level, areas):
    """Before: the ONS boundaries went out as they are, every exterior ring clockwise (RFC 7946 3.1.6: an
    exterior ring MUST be counterclockwise), and East Hampshire's and Mid Sussex's rings crossing themselves."""
    features = client.get("/gaps/areas.geojson", params={"level": level, "type": "vcfse"}).json()["features"]
    assert len(features) == areas
    for feature in features:
        geometry = shapely.geometry.shape(feature["geometry"])
        assert geometry.is_valid, feature["id"]
        polygons = getattr(geometry, "geoms", [geometry])
        assert all(p.exterior.is_ccw and not any(ring.is_ccw for ring in p.interiors) for p in polygons), feature["id"]


def test_small_area_exports(client, analysis, small_areas):
    reply = client.get("/gaps/E08000035/smallareas.csv", params={"type": "inpatient_rehab_level1"})
    assert reply.status_code == 200
    rows = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"))))
    # The columns are a contract: each type's status came after the others, then what the data are of.
    assert list(rows[0]) == ["lsoa21_code", "lsoa21_name", "icb_code", "la_code", "la_name", "lat", "lon",
                             "adult_population", "inpatient_rehab_level1.km", "inpatient_rehab_level1.nearest_id",
                             "inpatient_rehab_level1.status", "county_code", "county_name", "as_of",
                             "population_year"]
    assert {(r["county_code"], r["county_name"]) for r in rows} == {("", "")}  # Leeds: no county council
    assert {r["inpatient_rehab_level1.status"] for r in rows} == {"present"}
    members = small_areas.members("E08000035")
    assert len(rows) == len(members) == 488
    c = analysis.categories.index(next(c for c in analysis.categories if c.key == "inpatient_rehab_level1"))
    by_code = {r["lsoa21_code"]: r for r in rows}
    for i in members[:50]:
        assert float(by_code[small_areas.codes[i]]["inpatient_rehab_level1.km"]) == pytest.approx(
            analysis.distance_km[c, i], abs=1e-3)
    reply = client.get("/gaps/E08000035/smallareas.geojson", params={"type": "inpatient_rehab_level1"})
    assert "content-length" not in reply.headers  # streamed: England's is 79 MB
    geo = reply.json()
    assert len(geo["features"]) == 488 and geo["features"][0]["geometry"]["type"] == "MultiPolygon"
    england = client.get("/gaps/E92000001/smallareas.csv", params={"type": "vcfse"})
    assert england.text.count("\n") == 1 + 33_755


def test_maps(client):
    reply = client.get(f"/gaps/{CORNWALL_ICB}/map.svg", params={"type": "inpatient_rehab_level2"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(reply.text)
    assert root.get("role") == "img"
    reply = client.get("/gaps/england.svg", params={"type": "community_rehab_team", "indicator": "p90_km"})
    assert reply.status_code == 200 and ET.fromstring(reply.text).get("role") == "img"
    la = client.get("/gaps/england.svg", params={"level": "la", "indicator": "share_beyond_threshold"})
    assert la.status_code == 200
    assert client.get("/gaps/england.svg", params={"indicator": "nope"}).json()["error"]["field"] == "indicator"
    assert client.get("/gaps/E92000001/map.svg").status_code == 400


def test_analysis_is_made_again_when_the_index_is_rebuilt_or_edited(client, writer, known_services):
    def count() -> int | None:
        return client.get("/gaps/E08000035", params={"type": "vcfse"}).json()["indicators"][0]["count"]

    leeds_vcfse = [s for s in known_services if s.areas.lad_code == "E08000035" and s.service_type.value == "vcfse"
                   and s.status == "active"]
    before = count()
    assert before == len(leeds_vcfse) > 1
    try:
        # A maintainer retires one: an edit in place, the same build and the same number of records.
        assert writer.upsert({leeds_vcfse[0].id: {"status": "inactive"}})
        assert count() == before - 1
        writer.replace_all([s for s in known_services if s not in leeds_vcfse])
        assert count() is None  # none left, and nothing covers Leeds for vcfse here: no data, not a zero
    finally:
        writer.replace_all(known_services)
    assert count() == before


WHAT_IF = {"add": "inpatient_rehab_level2@TR1 3LJ@12"}


def test_what_if_gives_the_scenarios_figures_and_its_changes(client, backend, writer, geography, analysis):
    import hashlib

    from rehabmap.gaps.scenario import Scenario, what_if

    stored = hashlib.sha256(writer.path.read_bytes()).hexdigest()
    generation, held = backend.generation(), sum(1 for _ in backend.all())
    reply = client.get(f"/gaps/{CORNWALL_ICB}", params={**WHAT_IF, "type": "inpatient_rehab_level2"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["indicators"][0]["count"] == 1 and body["indicators"][0]["present"]
    assert body["what_if"]["added"][0]["id"] == "whatif:1"
    assert body["what_if"]["added"][0]["icb_code"] == CORNWALL_ICB
    changes = {(c["scope"], c["indicator"]): c for c in body["what_if"]["changes"]}
    # No source covers Cornwall for level 2 units here: its count now is not 0 but unknown, and the scenario's
    # is what the hypothetical unit adds. Nor all of England: its count is no data before and after, with why
    # (before, "7 → 8" as a national fact, though England's scorecard gives none).
    area_count, england_count = changes[("area", "count")], changes[("england", "count")]
    assert (area_count["before"], area_count["after"], area_count["after_no_data"]) == (None, 1, None)
    assert area_count["before_no_data"].startswith("Not yet covered: the directory holds no Level 2 inpatient")
    assert (england_count["before"], england_count["after"]) == (None, None)
    assert england_count["before_no_data"] == england_count["after_no_data"]
    assert england_count["before_no_data"].startswith("No national figure: the directory holds complete Level 2")
    # One code path: the domain's what-if on the same analysis gives these very changes.
    expected = what_if(analysis, CORNWALL_ICB, Scenario.from_input([WHAT_IF["add"]]), geography,
                       coverage=client.app.state.rehabmap.coverage())
    assert [c for c in body["what_if"]["changes"] if c["category"] == "inpatient_rehab_level2"] == [
        vars(c) for c in expected.changes if c.category == "inpatient_rehab_level2"]
    svg = client.get(f"/gaps/{CORNWALL_ICB}/map.svg", params={**WHAT_IF, "type": "inpatient_rehab_level2"})
    assert svg.status_code == 200 and ET.fromstring(svg.text).get("role") == "img"
    assert "whatif:1" in svg.text or "Hypothetical" in svg.text
    # Nothing was written: the index file, its generation and its records are as they were; without the
    # scenario, Cornwall still has no level 2 unit.
    assert hashlib.sha256(writer.path.read_bytes()).hexdigest() == stored
    assert backend.generation() == generation and sum(1 for _ in backend.all()) == held
    plain = client.get(f"/gaps/{CORNWALL_ICB}", params={"type": "inpatient_rehab_level2"}).json()
    assert plain["indicators"][0]["status"] == "not_covered" and plain["what_if"] is None
    assert plain["indicators"][0]["count"] is None and plain["indicators"][0]["no_data"].startswith("Not yet")


@pytest.mark.parametrize("path", [f"/gaps/{CORNWALL_ICB}", f"/gaps/{CORNWALL_ICB}/map.svg"])
def test_a_blank_addition_or_removal_is_refused_as_blank(client, path):
    """Before: `add=`, `remove=%20` or a semicolon with nothing beside it was read as nothing asked, a 200 giving the
    directory's figures (or the scenario's without the blank) where the request asked for a change it did not name.
    Each is a 400 naming the parameter, and the blank as blank, as a blank `type` is."""
    for field, given, said in (
            ("add", "", "The addition given is blank, which names no service to add. Write TYPE@POSTCODE"),
            ("add", " ", "The addition given is blank, which names no service to add. Write TYPE@POSTCODE"),
            ("add", f"{WHAT_IF['add']};", f"'{WHAT_IF['add']};' has a blank addition beside a semicolon, which names "
                                          "no service to add. Write TYPE@POSTCODE"),
            ("remove", "", "The service id given is blank, which names no service. Give the id of an active service "
                           "to leave out."),
            ("remove", "a:1; ;b:2", "'a:1; ;b:2' has a blank service id beside a semicolon, which names no service.")):
        reply = client.get(path, params={field: given, "type": "inpatient_rehab_level2"})
        assert reply.status_code == 400, (field, given, reply.text)
        error = reply.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_value", field), error
        assert error["message"].startswith(said), error["message"]


@pytest.mark.parametrize("params, status, field", [
    ({"add": "inpatient_rehab_level2"}, 400, "add"),
    ({"add": "inpatient_rehab_level2@TR1 3LJ@many"}, 400, "add"),
    ({"add": "hospital@TR1 3LJ"}, 400, "type"),
    ({"remove": "cqc:not-a-service"}, 400, "remove"),
])
def test_what_if_refuses_a_bad_scenario(client, params, status, field):
    reply = client.get(f"/gaps/{CORNWALL_ICB}", params=params)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["field"] == field


def test_what_if_with_an_unknown_postcode_names_it(client):
    reply = client.get(f"/gaps/{CORNWALL_ICB}", params={"add": "ips_employment@LS99 9ZZ"})
    assert 400 <= reply.status_code < 500 and "LS99 9ZZ" in reply.text


def test_compare_gives_the_domains_ranks(client, analysis, data_dir):
    from dataclasses import asdict

    from rehabmap.coverage import CoverageMap, SmallAreaTable
    from rehabmap.gaps.ranking import compare

    reply = client.get(f"/gaps/{CORNWALL_ICB}/compare")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # No claims in this home: nothing is covered, so an absent part is listed but not ranked.
    expected = compare(analysis, CORNWALL_ICB, coverage=CoverageMap([], SmallAreaTable.load(data_dir)))
    assert body == asdict(expected)
    level2 = next(c for c in body["comparisons"]
                  if c["category"] == "inpatient_rehab_level2" and c["indicator"] == "per_100k_adults")
    assert level2["standing"] == "not_covered" and level2["rank"] is None and len(level2["table"]) == 42
    # England's figure of a type found in it, whose data no claim holds, is no national figure, and says why.
    assert (level2["england"], level2["england_unknown"]) == (None, "partly_covered")
    assert client.get("/gaps/E92000001/compare").status_code == 400


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_an_uncovered_area_is_never_ranked_as_zero(client, order):
    """Cornwall has no level 2 unit and no source covers it for them: sorted by the count (or per 100k
    adults), it comes last either way, never first as a zero. Before: first in ascending order."""
    for indicator in ("count", "per_100k_adults", "mean_km"):
        body = client.get("/gaps", params={"level": "icb", "type": "inpatient_rehab_level2",
                                           "sort": f"inpatient_rehab_level2.{indicator}", "order": order}).json()
        codes = [a["code"] for a in body["areas"]]
        uncovered = [a["code"] for a in body["areas"] if "inpatient_rehab_level2" in a["not_covered_parts"]]
        assert CORNWALL_ICB in uncovered
        assert codes[len(codes) - len(uncovered):] == sorted(uncovered, key=codes.index), indicator


def test_maps_are_drawn_once_per_index_generation(client, writer, known_services, monkeypatch):
    """The area and England maps are kept until the index changes: the same map again is not drawn again;
    after an edit (a new generation) it is, and shows the change. A scenario's map is never kept."""
    drawn: list[str] = []
    real_area_map, real_overview = gaps_routes.area_map, gaps_routes.overview_map
    monkeypatch.setattr(gaps_routes, "area_map", lambda *a, **k: drawn.append("area") or real_area_map(*a, **k))
    monkeypatch.setattr(gaps_routes, "overview_map", lambda *a, **k: drawn.append("england") or real_overview(*a, **k))
    leeds_vcfse = next(s for s in known_services if s.areas.lad_code == "E08000035"
                       and s.service_type.value == "vcfse" and s.status == "active")
    params = {"type": "vcfse", "community_km": 29}  # thresholds no other test asks for: nothing cached yet
    first = client.get("/gaps/E08000035/map.svg", params=params)
    england = client.get("/gaps/england.svg", params={**params, "indicator": "count"})
    assert first.status_code == england.status_code == 200 and drawn == ["area", "england"]
    assert client.get("/gaps/E08000035/map.svg", params=params).text == first.text
    assert client.get("/gaps/england.svg", params={**params, "indicator": "count"}).text == england.text
    assert drawn == ["area", "england"]
    client.get("/gaps/E08000035/map.svg", params={**params, "add": "vcfse@LS9 7TF"})
    client.get("/gaps/E08000035/map.svg", params={**params, "add": "vcfse@LS9 7TF"})
    assert drawn == ["area", "england", "area", "area"]
    try:
        assert writer.upsert({leeds_vcfse.id: {"status": "inactive"}})
        redrawn = client.get("/gaps/E08000035/map.svg", params=params)
        assert drawn[-1] == "area" and len(drawn) == 5 and redrawn.text != first.text
    finally:
        writer.replace_all(known_services)


def test_the_england_map_leaves_an_uncovered_area_unshaded_and_unranked(client):
    """Cornwall holds no level 2 unit and no source covers it for them: on the England map of the count it is
    drawn as "not covered", not shaded as a zero, and never among the worst five. Before: shaded as 0 and
    ranked."""
    svg = client.get("/gaps/england.svg", params={"type": "inpatient_rehab_level2", "indicator": "count",
                                                  "community_km": 31}).text  # thresholds no other test asks for
    root = ET.fromstring(svg)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    areas = {p.find("svg:title", ns).text: p for p in root.iter("{http://www.w3.org/2000/svg}path")
             if p.find("svg:title", ns) is not None}
    cornwall = next(p for title, p in areas.items() if f"({CORNWALL_ICB})" in title)
    assert cornwall.find("svg:title", ns).text.endswith("not covered (no data held yet)")
    assert cornwall.get("fill") == "#ffffff"
    words = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "not covered: no data held yet" in words
    assert not [w for w in words if "Cornwall" in w]  # not listed among the worst or best five
    assert "not covered: rehabmap holds no data for them yet" in root.find("svg:desc", ns).text


TODAY = "2026-11-23"  # the pinned clock of the `dated` client


@pytest.fixture(scope="module")
def dated(data_dir: Path, geography, backend, tmp_path_factory) -> TestClient:
    """The same app with its clock pinned (REHABMAP_TODAY), so a download's date is known."""
    app = FastAPI()
    errors.install(app)
    settings = Settings(home=tmp_path_factory.mktemp("gaps-dated"), data_dir=data_dir, today=TODAY)
    app.state.rehabmap = AppState(settings, geography, backend)
    app.include_router(gaps_routes.router)
    return TestClient(app)


@pytest.mark.parametrize(("path", "params", "name"), [
    ("/gaps/areas.csv", {"level": "icb"}, "rehabmap-gaps-icb"),
    ("/gaps/areas.csv", {"level": "county", "headers": "human"}, "rehabmap-gaps-county-sheet"),
    ("/gaps/areas.geojson", {"level": "la"}, "rehabmap-gaps-la"),
    ("/gaps/E10000024/smallareas.csv", {}, "rehabmap-smallareas-E10000024"),
    ("/gaps/E08000035/smallareas.geojson", {}, "rehabmap-smallareas-E08000035"),
])
def test_every_download_says_what_its_data_are_of(dated, path, params, name):
    """Before, a download was 'rehabmap-gaps-icb.csv' with no date in it or on it: a sheet saved and opened a month
    later could not say of when its services and its population were. Now its name and its last two columns (a
    GeoJSON's properties: each feature's, and the collection's) give the directory's day and the census year."""
    reply = dated.get(path, params={"type": "vcfse", **params})
    assert reply.status_code == 200, reply.text
    extension = path.rsplit(".", 1)[1]
    assert reply.headers["content-disposition"] == f'attachment; filename="{name}-{TODAY}-census2021.{extension}"'
    if extension == "csv":
        rows = list(csv.reader(io.StringIO(reply.content.decode("utf-8-sig"))))
        header = rows[0][-2:]
        human = "headers" in params
        assert header == (["Services as of", "Population year"] if human else ["as_of", "population_year"])
        assert {tuple(row[-2:]) for row in rows[1:]} == {(TODAY, "2021")}
        assert all(len(row) == len(rows[0]) for row in rows)  # every row as long as the header (RFC 4180)
    else:
        body = reply.json()
        assert body["properties"]["as_of"] == TODAY and body["properties"]["population_year"] == 2021
        assert all(f["properties"]["as_of"] == TODAY and f["properties"]["population_year"] == 2021
                   for f in body["features"])


def test_a_county_council_is_an_area_of_its_own(client, analysis):
    """Before, E10000024 answered 404 ("… is a county council: rehabmap's pathway gaps are by ICB and by district or
    unitary authority"). Now Nottinghamshire is an area: its figures are its seven districts' small areas' (the
    batch's, here checked against GapTable; tests/gaps/test_indicators_bruteforce.py recomputes them from the
    CSV), ranked among the 21 county councils, mapped, and exported; a unitary authority stays a local authority."""
    body = client.get("/gaps/E10000024").json()
    assert body["area"]["level"] == "county" and body["area"]["level_label"] == "county council"
    assert body["area"]["name"] == "Nottinghamshire" and body["area"]["small_areas"] == 505
    row = next(r for r in GapTable.of(analysis, "county").rows() if r.code == "E10000024")
    assert body["area"]["adult_population"] == row.adult_population
    ips = next(i for i in body["indicators"] if i["category"] == "ips_employment")
    assert ips["count"] == row.types["ips_employment"].count == 2
    assert ips["mean_km"] == row.types["ips_employment"].mean_km is not None
    assert client.get("/gaps/E06000018").json()["area"]["level"] == "la"  # Nottingham, a unitary authority
    table = client.get("/gaps", params={"level": "county", "type": "vcfse"}).json()
    assert table["level"] == "county" and len(table["areas"]) == 21
    assert {a["code"][:3] for a in table["areas"]} == {"E10"}
    compared = client.get("/gaps/E10000024/compare").json()
    assert compared["level"] == "county" and compared["peers"] == 21
    for path, params in (("/gaps/E10000024/map.svg", {"type": "vcfse"}),
                         ("/gaps/england.svg", {"level": "county", "type": "vcfse"})):
        reply = client.get(path, params=params)
        assert reply.status_code == 200 and ET.fromstring(reply.text).get("role") == "img", reply.text
    assert "county" in client.get("/openapi.json").json()["paths"]["/gaps"]["get"]["parameters"][0]["description"]
    # Its small areas name it, as an ICB's name their ICB (before: no county column at all).
    small = csv.DictReader(io.StringIO(client.get("/gaps/E10000024/smallareas.csv", params={"type": "vcfse"})
                                       .content.decode("utf-8-sig")))
    assert {(r["county_code"], r["county_name"]) for r in small} == {("E10000024", "Nottinghamshire")}
