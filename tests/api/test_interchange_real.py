"""rehabmap's directory as other systems read it, built as a deployment builds it: `rehabmap index sample/`, then
`rehabmap sync cqc` and `rehabmap sync nhs-service-search` (real processes) against the replay of the recorded
live sources (tests/sync/replay.py), the two records they hold for review accepted as a maintainer would, and
`rehabmap serve` on 127.0.0.1. 67 active services: the sample's 59, six CQC care homes, Field House (CQC) and
Glebelands Centre (NHS website). (Bristol's ORUK feed is left out: the sync refuses every one of its items, so it
adds nothing published; tests/sync/test_every_source.py reads it.)

Every Open Referral document the server gives, for every record, is checked against the HSDS 3.0 schemas and the
UK profile (tests/api/hsds.py); the feed is read back by both of rehabmap's ORUK readers (`rehabmap index` of the
feed saved as a file, and `rehabmap sync oruk` of the served feed) and compared with the records it came from;
the CSV and GeoJSON exports are checked as a spreadsheet and a GIS read them."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rehabmap.oruk import service_at_location_uuid, service_uuid
from tests.api import hsds
from tests.cqc_records import ASHTON_ID
from tests.sync.replay import running
from tests.sync.store_fixtures import make_home, rehabmap, serving
from search.embedded import index_file

pytestmark = pytest.mark.slow

HELD = (("cqc:1-112845365", "--level", "1"), ("nhs-service-search:RX2D7",))
ACTIVE = 67
LIST = [hsds.compiled("service_list"), hsds.entity("service", profile=True)]
FULL = [hsds.compiled("service"), hsds.entity("service", profile=True)]
AT_LOCATIONS = [hsds.compiled("service_at_location_list"), hsds.entity("service_at_location", profile=True)]
AT_LOCATION = [hsds.compiled("service_at_location"), hsds.entity("service_at_location", profile=True)]
TAXONOMY = [hsds.entity("taxonomy"), hsds.entity("taxonomy", profile=True)]
TERM = [hsds.entity("taxonomy_term"), hsds.entity("taxonomy_term", profile=True)]
# What a reading of the feed cannot give back, and why: which source field gave each value (the merge's
# bookkeeping, not published), and where this installation read the record (its file and line, kept local).
NOT_PUBLISHED = ("field_sources", "provenance")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, geodata_dir: Path, data_dir: Path) -> Path:
    home = make_home(tmp_path_factory.mktemp("interchange") / "home", geodata_dir)
    for replay in running(data_dir / "feeds"):
        env = {"REHABMAP_NHS_SERVICE_SEARCH_URL": replay.nhs_url, "REHABMAP_NHS_SERVICE_SEARCH_KEY": "replay-nhs-key",
               "REHABMAP_NHS_SERVICE_SEARCH_RATE": "1000"}
        for args in (("index", "sample/"), ("sync", "cqc"), ("sync", "nhs-service-search"),
                     *(("review", "accept", *held) for held in HELD)):
            done = rehabmap(home, data_dir, replay, *args, **env)
            assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return home


@pytest.fixture(scope="module")
def served(home: Path, data_dir: Path) -> Iterator[str]:
    with serving(home, data_dir) as url:
        yield url


@pytest.fixture(scope="module")
def http(served: str) -> Iterator[httpx.Client]:
    """One client for the module's hundreds of requests (a new one a request made each ~0.1 s slower)."""
    with httpx.Client(base_url=served, timeout=60) as client:
        yield client


def get(http: httpx.Client, path: str, **params: Any) -> Any:
    reply = http.get(path, params=params)
    assert reply.status_code == 200, (path, params, reply.text[:300])
    return reply.json()


def every_page(http: httpx.Client, path: str, validators: list, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list, each a valid HSDS Page whose items are valid, until the one that says it is last."""
    contents: list[dict[str, Any]] = []
    number = 1
    while True:
        body = get(http, path, page=number, **params)
        hsds.assert_page(body, validators)
        assert body["page_number"] == number and body["total_pages"] == -(-body["total_items"] // params["per_page"])
        contents += body["contents"]
        if body["last_page"]:
            assert body["total_items"] == len(contents) == len({c["id"] for c in contents})
            return contents
        number += 1


def index_docs(home: Path) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(f"file:{index_file(home)}?mode=ro", uri=True)
    try:
        return {row[0]: json.loads(row[1]) for row in conn.execute("SELECT id, doc FROM services")}
    finally:
        conn.close()


def ids_in(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "id" or key.endswith("_id"):
                yield value
            yield from ids_in(value)
    elif isinstance(document, list):
        for value in document:
            yield from ids_in(value)


def identified(document: Any, key: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object with an id in a document, with the key it is under (a list's items: the list's)."""
    if isinstance(document, dict):
        if "id" in document:
            yield key, document
        for name, value in document.items():
            yield from identified(value, name)
    elif isinstance(document, list):
        for value in document:
            yield from identified(value, key)


def assert_each_id_names_one_thing(feed: list[dict[str, Any]]) -> None:
    """No two things in the whole feed share an id: a service's own parts (attributes, schedules, service areas,
    phones, its location and address) each have one of their own; a taxonomy term or an organisation, nested
    wherever it applies, is the same object everywhere, under an id nothing else has."""
    found = list(identified(feed))
    shared: dict[str, set[str]] = {}
    for key, thing in found:
        if key in ("taxonomy_term", "organization"):
            shared.setdefault(thing["id"], set()).add(json.dumps(thing, sort_keys=True))
    own = [thing["id"] for key, thing in found if key not in ("taxonomy_term", "organization")]
    assert len(own) == len(set(own)) and set(own).isdisjoint(shared)
    assert all(len(versions) == 1 for versions in shared.values())
    assert {key for key, _ in found} >= {"attributes", "schedules", "service_areas", "phones", "addresses"}


def test_every_open_referral_document_is_valid_hsds_and_the_uk_profile(http, home):
    """Every record, in every list (two page sizes, brief and full), one by one, at its location (the list
    and, by its id, the fully nested one: HSDS 3.0 defines GET /service_at_locations/{id}, which was a 404 for
    every id the feed gave), near a real record's postcode (nearest first), and the taxonomies and terms."""
    active = {i for i, doc in index_docs(home).items() if doc["status"] == "active"}
    assert len(active) == ACTIVE
    for per_page, validators in ((500, LIST), (7, [])):  # each item once; the paging at both sizes
        listed = every_page(http, "/oruk/services", validators, per_page=per_page)
        # ids are UUIDs made from the rehabmap id: the same in every rebuild of the directory
        assert {s["id"] for s in listed} == {service_uuid(i) for i in active}
    full = every_page(http, "/oruk/services", FULL, per_page=20, full="true")
    for service in full:
        assert get(http, f"/oruk/services/{service['id']}") == service
        [at] = service["service_at_locations"]
        one = get(http, f"/oruk/service_at_locations/{at['id']}")
        for validator in AT_LOCATION:
            hsds.assert_valid(validator, one)
        assert one == {**at, "service": {k: v for k, v in service.items() if k != "service_at_locations"}}
    rehabmap_ids = {a["value"]: s["id"] for s in full for a in s["attributes"] if a["taxonomy_term"]["code"] == "id"}
    assert {service_at_location_uuid(i) for i in rehabmap_ids} == {s["service_at_locations"][0]["id"] for s in full}
    assert all(uuid.UUID(i) for i in ids_in(full))
    assert_each_id_names_one_thing(full)
    at_locations = every_page(http, "/oruk/service_at_locations", AT_LOCATIONS, per_page=25)
    assert {a["service_id"] for a in at_locations} == {s["id"] for s in full}
    for postcode, validators in (("NG18 2AT", AT_LOCATIONS), ("LS9 7TF", [])):
        near = every_page(http, "/oruk/service_at_locations", validators, per_page=30, postcode=postcode)
        assert [a["distance_km"] for a in near] == sorted(a["distance_km"] for a in near) and near
    for taxonomy in every_page(http, "/oruk/taxonomies", TAXONOMY, per_page=3):
        for validator in TAXONOMY:
            hsds.assert_valid(validator, get(http, f"/oruk/taxonomies/{taxonomy['id']}"))
    for term in every_page(http, "/oruk/taxonomy_terms", TERM, per_page=7):
        assert get(http, f"/oruk/taxonomy_terms/{term['id']}") == term
    missing = http.get(f"/oruk/service_at_locations/{service_uuid('cqc:1-112845365')}")  # a service's id is not one
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "service_not_found"


def carried(doc: dict[str, Any]) -> dict[str, Any]:
    """A record as the feed carries it: its point to six decimals, as every export gives it (Glebelands Centre's
    latitude, 50.83612823486328 from the NHS website, is read back as 50.836128)."""
    return {k: v for k, v in doc.items() if k not in NOT_PUBLISHED} | {"lat": round(doc["lat"], 6),
                                                                       "lon": round(doc["lon"], 6)}


def test_the_feed_read_back_by_rehabmap_is_the_directory_it_came_from(served, http, home, tmp_path, geodata_dir,
                                                                       data_dir):
    """The whole feed read by `rehabmap index` (indexer/sources/oruk.py) from the file a consumer saves, and by
    `rehabmap sync oruk` (the ORUK connector) from the server itself: every active service comes back with the
    same fields, its type, subtype, needs, place, address parts, phone, opening times and details, but for what
    the feed never publishes (NOT_PUBLISHED). The connector records the feed as the records' source, and after
    it what the feed says of the first source (CQC's licence, when CQC fetched it), which it dropped before. A
    retired record is not in the feed (it lists active services), nor a held one."""
    before = {i: carried(doc) for i, doc in index_docs(home).items() if doc["status"] == "active"}
    full = get(http, "/oruk/services", per_page=500, full="true")
    saved = tmp_path / "rehabmap.oruk.json"
    saved.write_text(json.dumps(full, ensure_ascii=False), encoding="utf-8")
    indexed = make_home(tmp_path / "indexed", geodata_dir)
    done = rehabmap(indexed, data_dir, None, "index", str(saved))
    assert done.returncode == 0 and done.stdout.startswith(f"read {ACTIVE}, indexed {ACTIVE}, merged 0, rejected 0")
    assert {i: carried(doc) for i, doc in index_docs(indexed).items()} == before
    provenance = {i: doc["provenance"] for i, doc in index_docs(indexed).items()}
    assert {p[0]["source"] for p in provenance.values()} == {"sample", "cqc", "nhs-service-search"}
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "rehabmap.toml").write_text(
        f'[feed]\nlabel = "rehabmap"\nurl = "{served}/oruk"\npaging = "hsds3"\nper_page = 50\nrehabmap = true\n'
        'licence = "OGL-UK-3.0"\nattribution = "Contains information from rehabmap"\n', encoding="utf-8")
    synced = make_home(tmp_path / "synced", geodata_dir)
    done = rehabmap(synced, data_dir, None, "sync", "oruk", REHABMAP_ORUK_FEEDS_DIR=str(feeds),
                    REHABMAP_ORUK_RATE="10000")
    assert done.returncode == 0 and done.stdout.startswith(f"oruk-rehabmap: fetched {ACTIVE}, added {ACTIVE}, "), (
        done.stdout[-1000:])
    again = index_docs(synced)
    assert {i: carried(doc) for i, doc in again.items()} == before
    assert {doc["provenance"][0]["source"] for doc in again.values()} == {"oruk-rehabmap"}
    def published(provenance: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in p.items() if k not in ("file", "line")} for p in provenance]  # never published

    # each said to be relayed by the feed, another rehabmap's as its file says (docs/adr/0018)
    relay = {"relayed_by": {"source": "oruk-rehabmap", "title": "rehabmap", "relaying": False}}
    assert {i: published(doc["provenance"][1:]) for i, doc in again.items()} == {
        i: [{**p, **relay} for p in published(doc["provenance"])] for i, doc in index_docs(home).items()
        if doc["status"] == "active"}


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_the_csv_opens_in_a_spreadsheet_as_the_directory_says(http, home):
    """UTF-8 with a byte order mark (without one Excel reads it as Windows-1252: every sample description's
    'Sample data — not …' showed 'Sample data â€” not …'); a phone number of digits alone, as CQC gives them,
    in its groups, which a spreadsheet keeps as text (it read 01162620075 as the number 1162620075); the town and
    county a source named apart, as new last columns; RFC 4180 rows."""
    reply = http.get("/services.csv")
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.content.startswith(b"\xef\xbb\xbf")
    text = reply.content.decode("utf-8-sig")
    assert "\r\n" in text and "Sample data — not a real service" in text
    rows = {r["id"]: r for r in csv_rows(text)}
    docs = index_docs(home)
    assert set(rows) == {i for i, doc in docs.items() if doc["status"] == "active"}
    assert list(rows.values())[0].keys() >= {"town", "county"}
    assert text.split("\r\n", 1)[0].endswith(",town,county,needs_read_from_text,needs_read_not_met,"
                                             "gender_read_from_text,needs_registered,source_file_of,"
                                             "needs_added_by_maintainers,gender_stated_by_maintainers,"
                                             "gender_basis,gender_from_source")
    for service_id, row in rows.items():
        doc = docs[service_id]
        assert (row["town"], row["county"]) == (doc.get("town") or "", doc.get("county") or "")
        phone = doc.get("phone") or ""
        assert row["phone"].replace(" ", "") == phone.replace(" ", "")
        assert not re.fullmatch(r"0\d+", row["phone"]), f"{row['phone']}: a spreadsheet drops its leading zero"
    assert (rows[ASHTON_ID]["phone"], rows[ASHTON_ID]["town"], rows[ASHTON_ID]["county"]) \
        == ("0116 262 0075", "Leicester", "Leicestershire")
    assert rows["nhs-service-search:RX2D7"]["phone"] == "01273 267015"  # grouped by the source already, kept


def test_the_geojson_is_rfc_7946_and_holds_no_point_but_the_services(http, home, geography):
    """[longitude, latitude] in WGS84, no `crs` member, six decimals at most (the NHS website gives Glebelands
    Centre's point as 50.83612823486328: float noise, not precision), and near a postcode nothing but each
    service's own point and its distance: never the home's (Brighton's BN1 1AA, here)."""
    docs = index_docs(home)
    body = get(http, "/services.geojson", postcode="BN1 1AA")
    assert body["type"] == "FeatureCollection" and "crs" not in body
    assert len(body["features"]) == sum(doc["status"] == "active" for doc in docs.values())
    for feature in body["features"]:
        doc = docs[feature["id"]]
        lon, lat = feature["geometry"]["coordinates"]
        assert (lon, lat) == (round(doc["lon"], 6), round(doc["lat"], 6)) == (feature["properties"]["lon"],
                                                                              feature["properties"]["lat"])
        assert "crs" not in feature and feature["geometry"]["type"] == "Point"
    glebelands = next(f for f in body["features"] if f["id"] == "nhs-service-search:RX2D7")
    assert glebelands["geometry"]["coordinates"] == [-0.261049, 50.836128]
    assert glebelands["properties"]["distance_km"] is not None
    where = geography.resolve(postcode="BN1 1AA")  # Brighton: no service there
    text = json.dumps(body)
    for value in (where.lat, where.lon, round(where.lat, 4), round(where.lon, 4)):
        assert str(value) not in text


def test_the_json_api_and_the_page_give_a_services_point_as_the_exports_do(http):
    """Glebelands Centre's point, 50.83612823486328 from the NHS website (float noise): the GeoJSON, the CSV and the
    feed give 50.836128, -0.261049. Before, GET /services/{id} gave it whole, one service at two points, and the
    page's directions link rounded on its own; now each reads `Service.published_point`. (A match gives no point.)"""
    one = get(http, "/services/nhs-service-search:RX2D7")
    assert (one["lat"], one["lon"]) == (50.836128, -0.261049)
    page = http.get("/service/nhs-service-search:RX2D7")
    assert "destination=50.836128%2C-0.261049" in page.text
