"""Request logs never hold what a person searched for: no postcode, no coordinates, no needs, no current
placement.

The server under test is `rehabmap serve` (uvicorn, its access log off) at DEBUG level, on the embedded
backend and on the Elasticsearch one (whose client logs what it sends), and the whole of its output is read,
so a leak from any logger — rehabmap's, uvicorn's, a library's — fails the test.
"""

from __future__ import annotations

import re
import time
import uuid
from contextlib import ExitStack
from urllib.parse import quote

import httpx
import pytest

from indexer.pipeline import GeographyPlacer, build_index
from indexer.sources import load_source
from rehabmap.config import Settings
from search.elastic import ElasticWriter
from tests.api.conftest import SAMPLE, serve
from tests.es_proxy import plain_json_proxy
from tests.es_server import drop_indices

SECRETS = ("LS9 7TF", "TR1 3BT", "E3 2AN")
NEEDS = ("restricted_s37_41", "personality_disorder_diagnosis", "language:pl")
POINT = (53.79648, -1.54785)


def forms(postcode: str) -> list[str]:
    """A postcode as it could appear in a log: spaced, compact, URL-encoded either way, any case."""
    compact = postcode.replace(" ", "")
    return [postcode, compact, postcode.replace(" ", "+"), postcode.replace(" ", "%20")]


def logged(server, start: int, requests: int, hang_s: float = 300) -> str:
    """The server's log from `start` on, once it holds the access lines of `requests` requests (each is
    written after its reply is sent). It waits for those lines however slow the machine: returning the log
    as it was after a fixed 30 s made the first test fail, and the second check a log cut short; `hang_s`
    only ends a wait that would never end."""
    deadline = time.monotonic() + hang_s
    while True:
        log = server.log_text()[start:]
        if len(re.findall(r"rehabmap\.access (GET|POST) ", log)) >= requests:
            return log
        if time.monotonic() > deadline:
            pytest.fail(f"the server logged fewer than {requests} requests in {hang_s} s:\n{log}")
        time.sleep(0.05)


def test_request_logs_hold_no_postcode_point_or_need(client, live_server):
    start = len(live_server.log_text())
    requests = [
        client.get("/services", params={"postcode": "LS9 7TF", "need": list(NEEDS), "radius_km": 30}),
        client.get("/services.csv", params={"postcode": "TR1 3BT"}),
        client.get("/services.geojson", params={"postcode": "E3 2AN", "need": "restricted_s37_41"}),
        client.get("/oruk/service_at_locations", params={"postcode": "LS9 7TF", "proximity": 5000}),
        client.post("/match", json={"home": {"postcode": "LS9 7TF"}, "needs": list(NEEDS),
                                    "current_placement": {"postcode": "TR1 3BT"}}),
        client.post("/match", json={"home": {"lat": POINT[0], "lon": POINT[1]}, "needs": ["restricted_s37_41"]}),
        # errors echo the input to the person who sent it, never to the log
        client.post("/match", json={"home": {"postcode": "LS9 7TFX"}, "needs": ["restricted_s37_41"]}),
        client.post("/match", json={"home": {"postcode": "E3 2AN"}, "needs": ["flying"]}),
        client.post("/match", json={"home": {"postcode": "TR1 3BT"}, "limit": 0}),
        client.get("/services", params={"postcode": "E3 2AN", "type": "hospital"}),
    ]
    assert [r.status_code for r in requests] == [200, 200, 200, 200, 200, 200, 400, 400, 422, 400]
    log = logged(live_server, start, len(requests))

    # The log is being written: one line per request, with the route template only.
    assert "POST /match 200" in log and "GET /services 200" in log and "GET /oruk/service_at_locations 200" in log
    assert len(re.findall(r"rehabmap\.access (GET|POST) ", log)) == len(requests)

    lowered = log.lower()
    for postcode in SECRETS + ("LS9 7TFX",):
        for form in forms(postcode):
            assert form.lower() not in lowered, f"{form!r} is in the server log"
    for need in (*NEEDS, "flying"):
        assert need not in log, f"{need!r} is in the server log"
    for number in POINT:
        assert f"{number}" not in log and f"{number:.3f}" not in log
    assert "?" not in log  # no query string at all


def test_an_unexpected_error_is_a_json_500_and_its_message_is_not_logged(caplog):
    """In-process: the catch-all answers in JSON and logs the exception's type and place only."""
    import asyncio

    from fastapi import FastAPI

    from api import errors

    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise ValueError("could not read 'LS9 7TF'")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # re-raises anything the app lets escape
        async with httpx.AsyncClient(transport=transport, base_url="http://rehabmap.test") as test_client:
            return await test_client.get("/boom")

    with caplog.at_level("DEBUG"):
        reply = asyncio.run(call())
    assert reply.status_code == 500
    assert reply.json() == {"error": {"code": "internal_error",
                                      "message": "Something went wrong on our side. Please try again."}}
    server_side = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any("unexpected error: ValueError at" in m and "boom" in m for m in server_side)
    assert not any("LS9" in m for m in server_side)


# --- the Elasticsearch backend -------------------------------------------------------------------------

ES_HOMES = ("E3 2AN", "LS9 6PR", "M14 5RH")  # no sample service sits at any of them
ES_NEEDS = ("restricted_s37_41", "personality_disorder_diagnosis", "acquired_brain_injury")
PLACEMENT = "sample:bodmin-rehabilitation-unit"  # where the person is now: as telling as their home


@pytest.fixture(scope="module", params=["elasticsearch", "opensearch"])
def elastic_server(request, es_server, es_client, geography, geodata_dir, data_dir, tmp_path_factory):
    """`rehabmap serve` on the search engine backend with each engine's client, at DEBUG, over the sample
    indexed into the search server (osmem — through `plain_json_proxy` for the Elasticsearch client — or
    the cluster at ELASTICSEARCH_URL)."""
    engine = request.param
    if engine == "opensearch" and es_server.kind != "osmem":
        pytest.skip("ELASTICSEARCH_URL names an Elasticsearch cluster: the OpenSearch client is not for it")
    alias = f"rehabmap-privacy-{uuid.uuid4().hex[:10]}"
    settings = Settings(ELASTICSEARCH_URL=es_server.url, elasticsearch_index=alias)
    report = build_index(load_source(SAMPLE), GeographyPlacer(geography),
                         ElasticWriter.from_settings(settings, client=es_client), progress=False)
    assert report.indexed == 60
    home = tmp_path_factory.mktemp("elastic-home")
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    with ExitStack() as stack:
        url = es_server.url if es_server.kind != "osmem" or engine == "opensearch" \
            else stack.enter_context(plain_json_proxy(es_server.url))
        yield stack.enter_context(serve(home, data_dir, home / "server.log", REHABMAP_BACKEND="elasticsearch",
                                        REHABMAP_SEARCH_ENGINE=engine, ELASTICSEARCH_URL=url,
                                        REHABMAP_ELASTICSEARCH_INDEX=alias))
    drop_indices(es_client, alias)


def test_nothing_of_a_search_reaches_any_log_on_the_elasticsearch_backend(elastic_server, geography):
    """Every kind of search, through the API and the pages, with the server logging at DEBUG: the log holds
    the access lines, and no postcode, coordinate, need or current placement."""
    homes = {postcode: geography.resolve(postcode=postcode) for postcode in ES_HOMES}
    start = len(elastic_server.log_text())
    with httpx.Client(base_url=elastic_server.url, timeout=60) as http:
        replies = [
            http.post("/match", json={"home": {"postcode": "E3 2AN"}, "needs": list(ES_NEEDS),
                                      "current_placement": {"service_id": PLACEMENT}}),
            http.post("/match", json={"home": {"lat": homes["LS9 6PR"].lat, "lon": homes["LS9 6PR"].lon},
                                      "types": ["inpatient_rehab_level2"], "needs": [ES_NEEDS[0]]}),
            http.get("/services", params={"postcode": "M14 5RH", "need": list(ES_NEEDS), "radius_km": 40}),
            http.get("/services.csv", params={"postcode": "LS9 6PR", "need": ES_NEEDS[1]}),
            http.get("/services.geojson", params={"postcode": "E3 2AN", "radius_km": 20}),
            http.get("/oruk/service_at_locations", params={"postcode": "M14 5RH", "proximity": 20000}),
            http.get("/find/rehabilitation", params={"where": "LS9 6PR", "within": 25}),
            http.post("/alternatives", data={"home": "M14 5RH", "needs": list(ES_NEEDS[:2]),
                                             "placement": "E3 2AN"}, follow_redirects=True),
            http.get("/shortlist", params={"where": "E3 2AN", "s": "sample:bow-rehabilitation-unit"}),
        ]
    assert [r.status_code for r in replies] == [200] * len(replies), [r.text[:200] for r in replies]
    assert replies[0].json()["current_placement_km"] > 300  # the placement was looked up: Bodmin to Bow
    held_key = replies[7].url.path.rsplit("/", 1)[1]  # the clinicians' results: POST, redirect, GET
    logged(elastic_server, start, len(replies) + 1)
    assert held_key not in elastic_server.log_text(), "the key to a held search is in the server log"
    log = elastic_server.log_text()  # all of it, start-up included

    assert "POST /match 200" in log and "GET /services.csv 200" in log  # the access log is on, at DEBUG
    lowered = log.lower()
    for postcode in ES_HOMES:
        for form in forms(postcode):
            assert form.lower() not in lowered, f"{form!r} is in the server log"
    for home in homes.values():
        for number in (home.lat, home.lon):
            for text in (repr(number), f"{number:.5f}", f"{number:.4f}"):
                assert text not in log, f"the coordinate {text} is in the server log"
    for need in ES_NEEDS:
        assert need not in log, f"{need!r} is in the server log"
    for form in (PLACEMENT, quote(PLACEMENT, safe=""), PLACEMENT.split(":")[1]):
        assert form not in log, f"the current placement {form!r} is in the server log"
    assert "_doc" not in log and "_search" not in log
