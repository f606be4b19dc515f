"""GET /services, /services/{id} and the CSV and GeoJSON exports over HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from collections.abc import Iterator
from datetime import date

import pytest

from api.exports import CHUNK_CHARS, COLUMNS, _cell, in_chunks, record
from geodata.distance import great_circle_km
from rehabmap.index.base import ServiceQuery
from rehabmap.taxonomy import ServiceType

LS9 = "LS9 7TF"
# Pinned: the export's columns are a contract with spreadsheets built on it.
STABLE_COLUMNS = (
    "id", "name", "organisation", "provider_type", "service_type", "subtype", "original_label",
    "legacy_locked_label", "pd_specialist", "needs_met", "needs_not_met", "min_age", "max_age", "gender",
    "address", "postcode", "lat", "lon", "icb_code", "icb_name", "sub_icb_code", "sub_icb_name", "lad_code",
    "lad_name", "region_code", "region_name", "service_area_codes", "service_area_polygon", "beds",
    "capacity", "capacity_reported", "capacity_as_of", "accepting_referrals", "referral_route", "phone",
    "email", "website", "cqc_location_id", "cqc_rating", "cqc_rating_date", "status", "last_verified",
    "source", "distance_km", "in_home_icb", "out_of_catchment", "description",
    "source_confirmed_by", "source_confirmed_on", "source_confirms",  # session 16: new columns go at the end
    "town", "county",  # session 17
    "needs_read_from_text", "needs_read_not_met",  # session 17
    "gender_read_from_text",  # session 18
    "needs_registered", "source_file_of",  # session 19
    "needs_added_by_maintainers",  # session 24
    "gender_stated_by_maintainers",  # session 25
    "gender_basis", "gender_from_source",  # session 26
)


def all_pages(client, params: dict, per_page: int = 100) -> list[dict]:
    results, page = [], 1
    while True:
        body = client.get("/services", params={**params, "page": page, "per_page": per_page}).json()
        results += body["results"]
        if page >= body["total_pages"]:
            return results
        page += 1


def test_near_a_postcode_results_are_nearest_first_and_exact(client, geography, backend):
    home = geography.resolve(postcode=LS9)
    body = client.get("/services", params={"postcode": LS9, "radius_km": 15, "per_page": 100}).json()
    active = [s for s in backend.all() if s.status == "active"]
    inside = sorted((great_circle_km(home.lat, home.lon, s.lat, s.lon), s.id) for s in active)
    inside = [(km, sid) for km, sid in inside if km <= 15]
    assert body["total"] == len(inside) and body["sort"] == "distance"
    assert [(r["id"], r["distance_km"]) for r in body["results"]] == [(sid, round(km, 3)) for km, sid in inside]
    assert body["near"]["district"] == "LS9" and body["near"]["icb_code"] == "E54000054"
    assert body["results"][0]["id"] == "sample:aire-valley-rehabilitation-unit"
    by_id = {r["id"]: r for r in body["results"]}
    # Bradford's team serves Bradford only: listed near Leeds, and marked.
    assert by_id["sample:bradford-community-rehabilitation-and-recovery-team"]["out_of_catchment"] is True
    assert by_id["sample:leeds-east-community-rehabilitation-team"]["out_of_catchment"] is False
    assert all(r["in_home_icb"] == (r["areas"]["icb_code"] == "E54000054") for r in body["results"])


def test_paging_near_a_place_walks_the_same_order(client, geography, backend):
    params = {"place": "Manchester", "type": ["community_rehab_team", "inpatient_rehab_level1"]}
    one = client.get("/services", params={**params, "per_page": 30}).json()
    walked = all_pages(client, params, per_page=7)[:30]
    assert [r["id"] for r in walked] == [r["id"] for r in one["results"]]
    home = geography.resolve(place="Manchester")
    query = ServiceQuery(types=frozenset({ServiceType.community_rehab_team, ServiceType.inpatient_rehab_level1}))
    hits = backend.nearest(home.lat, home.lon, query, k=30)
    assert [r["id"] for r in one["results"]] == [h.service.id for h in hits]
    assert one["total"] == backend.find(query, limit=0).total and one["radius_km"] is None


def test_text_type_and_need_filters(client, backend):
    body = client.get("/services", params={"q": "recovery college", "per_page": 50}).json()
    assert body["sort"] == "relevance"
    assert [r["id"] for r in body["results"]] == [
        s.id for s in backend.find(ServiceQuery(text="recovery college"), limit=50).items]
    assert {"sample:leeds-recovery-college", "sample:digbeth-recovery-college"} <= {r["id"] for r in body["results"]}

    typed = all_pages(client, {"type": ["advocacy", "VCFSE"]})
    assert typed and {r["service_type"] for r in typed} == {"advocacy", "vcfse"}
    assert [r["name"] for r in typed] == sorted((r["name"] for r in typed), key=lambda n: n.casefold())

    needs = all_pages(client, {"need": ["autism", "language:ur"]})
    assert needs and all("autism" not in r["needs_not_met"] and "language:ur" not in r["needs_not_met"]
                         for r in needs)
    assert len(needs) == backend.find(ServiceQuery(needs=("autism", "language:ur")), limit=0).total


def test_one_service_by_id(client):
    body = client.get("/services/sample:west-cornwall-floating-support").json()
    assert body["service_type"] == "supported_accommodation" and body["subtype"] == "floating_outreach"
    assert body["service_area"]["has_polygon"] and body["service_area"]["polygon"]["type"] in ("Polygon",
                                                                                                 "MultiPolygon")
    assert body["provenance"][0]["source"] == "sample" and body["provenance"][0]["licence"] == "CC0-1.0"
    closed = client.get("/services/sample:former-chapel-allerton-rehabilitation-unit").json()
    assert closed["status"] == "inactive"
    stale = client.get("/services/sample:harehills-high-dependency-rehabilitation-unit").json()
    assert stale["capacity"] == {"status": "unknown", "as_of": "2026-09-02", "reported": "none"}
    listed = client.get("/services", params={"q": "west cornwall floating"}).json()["results"][0]
    assert listed["service_area"]["has_polygon"] and listed["service_area"]["polygon"] is None


def test_a_service_says_its_opening_times_and_whether_a_person_can_refer_themselves(client):
    """Before: the pages showed opening times and self-referral, the API neither."""
    college = client.get("/services/sample:leeds-recovery-college").json()
    assert college["self_referral"] is True
    assert college["schedules"] == [
        {"byday": ["MO", "TU", "WE", "TH"], "opens_at": "09:30:00", "closes_at": "16:30:00", "description": None},
        {"byday": ["FR"], "opens_at": "09:30:00", "closes_at": "13:00:00",
         "description": "Fridays: enrolment drop-in only"}]
    listed = client.get("/services", params={"q": "leeds recovery college"}).json()["results"][0]
    assert (listed["self_referral"], listed["schedules"]) == (True, college["schedules"])
    unit = client.get("/services/sample:aire-valley-rehabilitation-unit").json()
    assert unit["self_referral"] is False and unit["schedules"][0]["description"].startswith("Staffed 24 hours")


def test_unknown_service_is_a_404_with_a_message(client):
    reply = client.get("/services/cqc:1-000000000")
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["code"] == "service_not_found" and "cqc:1-000000000" in error["message"]


BAD = [
    ({"radius_km": 5}, 400, "radius_km", "postcode or a place"),
    ({"type": "hospital"}, 400, "type", "Unknown service type 'hospital'"),
    # Before: "Unknown service type ''", where the gaps said "(a blank one names no type)": now one wording.
    ({"type": " "}, 400, "type", "The service type given is blank, which names no type. Use one of: vcfse, "),
    # Before: the codes alone ("Use one of: learning_disability, autism, …"), and any two or three letters passed
    # as a language.
    ({"need": "flying"}, 400, "need", "Unknown need 'flying'. Use one of: Learning disability (learning_disability), "
                                      "Autism (autism), "),
    ({"need": "language:xx"}, 400, "need", "Unknown language 'xx' in need 'language:xx'. Give the language's "
                                            "English name or ISO 639 code, e.g. language:Polish or language:pl."),
    ({"postcode": "LS9 7TFX"}, 400, "postcode", "not a valid UK postcode"),
    # Before: "Unknown need ''" and "'' is not a valid UK postcode": now blank named as blank, as a type's is.
    ({"need": " "}, 400, "need", "The need given is blank, which names no need. Use one of: Learning disability "),
    ({"postcode": " "}, 400, "postcode", "The postcode given is blank, which names no place. Enter a full postcode "
                                         "like 'LS9 7TF'"),
    ({"postcode": "ZZ9 9ZZ"}, 404, "postcode", "not found"),
    ({"place": "Atlantis"}, 404, "place", "Atlantis"),
    ({"place": "Swansea"}, 400, "place", "'Swansea' is a place in Wales. rehabmap lists services in England only"),
    # Postcode areas that cross the border: told by the sector's (else the district's) council area in ONS's GB
    # centroids. Before, each was "not found in the ONS Postcode Directory for England. Check it".
    ({"postcode": "CH7 1AA"}, 400, "postcode", "'CH7 1AA' is a postcode in Wales. rehabmap lists services in"),
    ({"postcode": "SY23 3BZ"}, 400, "postcode", "'SY23 3BZ' is a postcode in Wales."),
    ({"postcode": "TD5 7"}, 400, "postcode", "'TD5 7' is a postcode in Scotland. rehabmap lists services in"),
    ({"postcode": "NP16 7ZZ"}, 404, "postcode", "not found"),  # an English sector of a Welsh district
    # A district whose point lies in Wales but which holds English postcodes: before, on the field "location", "That
    # location is outside England (more than 5 km from any English NHS area)", as of a place wholly elsewhere.
    ({"postcode": "LL14"}, 400, "postcode", "'LL14' is a postcode district that crosses the border between England "
                                            "and Wales: its main local authority is in Wales, and 28 of its postcodes "
                                            "are in England. Give the full postcode"),
    # One whose point lies in England, within 5 km of the border: before, a 200 searched from it, in Shropshire.
    ({"postcode": "LD7"}, 400, "postcode", "'LD7' is a postcode district that crosses the border between England "
                                           "and Wales: its main local authority is in Wales, and 24 of its postcodes "
                                           "are in England. Give the full postcode"),
    ({"postcode": LS9, "place": "Leeds"}, 400, "location", "exactly one"),
    ({"page": 200, "per_page": 100}, 400, "page", "10000"),
    ({"per_page": 0}, 422, "per_page", "greater than or equal to 1"),
    ({"radius_km": -3, "postcode": LS9}, 422, "radius_km", "greater than 0"),
    ({"page": "first"}, 422, "page", "valid integer"),
]


@pytest.mark.parametrize("params,status,field,words", BAD, ids=[b[2] + ":" + str(b[1]) for b in BAD])
def test_bad_browse_requests_get_a_precise_4xx(client, params, status, field, words):
    paged = {"page", "per_page"} & set(params)  # the exports have no pages
    for path in ("/services",) if paged else ("/services", "/services.csv", "/services.geojson"):
        reply = client.get(path, params=params)
        assert reply.status_code == status, (path, reply.text)
        assert reply.headers["content-type"].startswith("application/json")
        error = reply.json()["error"]
        assert error.get("field") == field and words in error["message"], (path, error)


def test_csv_export_has_the_stable_columns_and_the_browse_order(client):
    params = {"postcode": LS9, "radius_km": 25, "type": ["inpatient_rehab_level1", "inpatient_rehab_level2"]}
    with client.stream("GET", "/services.csv", params=params) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/csv")
        assert "content-length" not in reply.headers  # streamed
        assert "attachment" in reply.headers["content-disposition"]
        body = reply.read()
    assert body.startswith("\ufeff".encode()), "a UTF-8 byte order mark first: Excel reads the file as UTF-8"
    text = body.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(csv.reader(io.StringIO(text)).__next__()) == STABLE_COLUMNS == COLUMNS
    browsed = all_pages(client, params)
    assert [(r["id"], float(r["distance_km"])) for r in rows] == [(b["id"], b["distance_km"]) for b in browsed]
    aire = next(r for r in rows if r["id"] == "sample:aire-valley-rehabilitation-unit")
    assert aire["capacity"] == "available" and aire["capacity_as_of"] == "2026-11-20"
    assert aire["in_home_icb"] == "true" and aire["out_of_catchment"] == "false"
    assert aire["needs_met"] == ";".join(next(b for b in browsed if b["id"] == aire["id"])["needs_met"])


def test_csv_export_without_a_place_lists_everything_by_name(client, backend):
    text = client.get("/services.csv").content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == backend.find(ServiceQuery(), limit=0).total > 500  # more than one export batch
    assert rows[0].keys() == set(STABLE_COLUMNS) and all(r["distance_km"] == "" for r in rows)


def test_geojson_export_is_a_feature_collection_of_points(client, backend):
    reply = client.get("/services.geojson", params={"type": "advocacy", "postcode": "M1 1AD"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/geo+json")
    body = reply.json()
    assert body["type"] == "FeatureCollection"
    features = body["features"]
    assert len(features) == backend.find(ServiceQuery(types=frozenset({ServiceType.advocacy})), limit=0).total
    distances = [f["properties"]["distance_km"] for f in features]
    assert distances == sorted(distances)
    for feature in features:
        service = backend.get(feature["id"])
        assert feature["geometry"] == {"type": "Point", "coordinates": [round(service.lon, 6), round(service.lat, 6)]}
        assert set(feature["properties"]) == set(STABLE_COLUMNS)
        assert feature["properties"]["service_type"] == "advocacy"
        assert isinstance(feature["properties"]["needs_met"], list)


def test_csv_cells_that_a_spreadsheet_would_run_are_defused():
    assert _cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert _cell("+44 113 496 0000") == "'+44 113 496 0000"
    assert _cell("Leeds") == "Leeds" and _cell(-1.5) == "-1.5" and _cell(None) == "" and _cell(True) == "true"
    assert _cell(["autism", "language:pl"]) == "autism;language:pl"


def test_a_records_values_are_in_the_columns_order(backend):
    """The CSV writes a record's values as it makes them (`csv_lines`), so they must be in `COLUMNS`' order."""
    from rehabmap.browse import Listed
    from rehabmap.maintain.freshness import Listings

    service = backend.get("sample:aire-valley-rehabilitation-unit")
    assert tuple(record(Listed(service), date(2026, 12, 2), Listings(None, str))) == COLUMNS


def test_pieces_are_handed_on_in_chunks_in_order_and_lazily() -> None:
    rng = random.Random(34)
    for _ in range(500):
        pieces = ["x" * rng.choice([0, 1, 5, 40, 99, 300]) + str(n) for n in range(rng.randint(0, 60))]
        size = rng.choice([1, 7, 100, 1000, 10**6])
        chunks = list(in_chunks(pieces, size))
        assert "".join(chunks) == "".join(pieces)
        assert all(chunks) and all(len(c) >= size for c in chunks[:-1])
        assert all(len(c) < size + max(map(len, pieces)) for c in chunks)  # never more than one piece past
    asked = []

    def pieces() -> Iterator[str]:
        for n in range(1000):
            asked.append(n)
            yield "a" * 10
    first = next(in_chunks(pieces(), 95))
    assert len(first) == 100 and asked == list(range(10))  # made as the server asks, not all at once


def test_an_export_is_streamed_a_chunk_of_rows_at_a_time(api_home, data_dir, backend) -> None:
    """A response streamed from an iterator is read a piece at a time in a worker thread: handed on row by row, the
    thread hops were ~90% of an export (bench/RESULTS.md, session 34). The routes' own responses, over the same
    index the server reads."""
    from api.routes.services import export_csv, export_geojson
    from app.main import create_app
    from rehabmap.browse import browse
    from rehabmap.config import Settings

    state = create_app(Settings(home=api_home, data_dir=data_dir, warm_up=False)).state.rehabmap
    total = backend.find(ServiceQuery(), limit=0).total
    for export in (export_csv, export_geojson):
        response = export(browse(state.geography), state)

        async def read() -> list[str]:
            return [chunk async for chunk in response.body_iterator]
        chunks = asyncio.run(read())
        assert len("".join(chunks)) > 2 * CHUNK_CHARS and all(len(c) >= CHUNK_CHARS for c in chunks[:-1])
        assert len(chunks) < total / 20  # dozens of rows a chunk, not one
