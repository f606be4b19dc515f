"""The API and the CLI over the Elasticsearch backend, as production runs them: `rehabmap serve` (uvicorn,
the production client) in front of an index of more than 10,000 services, through `ClusterProxy`, which
counts the requests the server makes and can take the cluster away.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import date

import httpx
import pytest

from bench.synthetic import load_small_areas, make_services
from rehabmap.config import Settings
from rehabmap.maintain.store import Directory
from rehabmap.index.base import ServiceQuery
from search.elastic import ElasticWriter, alias_of
from tests.index.cluster_proxy import ClusterProxy
from tests.es_server import drop_indices
from tests.index.brute_force import brute_nearest, by_name
from tests.maintain.conftest import ROOT, SAMPLE, Site, start_server

TODAY = date(2026, 11, 23)
SERVICES = 10_800  # ~10,260 active: more than Elasticsearch's default result window of 10,000


@pytest.fixture(scope="module")
def large(data_dir, es_client):
    services = make_services(load_small_areas(data_dir), SERVICES, seed=7, today=TODAY)
    base = f"rehabmap-api-{uuid.uuid4().hex[:10]}"
    ElasticWriter(es_client, alias_of(base)).replace_all(services)
    yield base, services
    drop_indices(es_client, base)


@pytest.fixture(scope="module")
def cluster(es_server):
    with ClusterProxy(es_server.url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def home(tmp_path_factory, geodata_dir):
    path = tmp_path_factory.mktemp("elastic-api")
    (path / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    return path


def elastic_env(proxy: ClusterProxy, base: str) -> dict[str, str]:
    return {"REHABMAP_BACKEND": "elasticsearch", "ELASTICSEARCH_URL": proxy.url,
            "REHABMAP_ELASTICSEARCH_INDEX": base}


@pytest.fixture(scope="module")
def server(large, cluster, home, data_dir):
    base, _ = large
    site = Site(home, Settings(home=home, data_dir=data_dir), Directory(home / "directory.sqlite"))
    running = start_server(site, warm_up=True, **elastic_env(cluster, base))  # searched from the first request
    yield running
    running.stop()


@pytest.fixture
def proxy(cluster):
    cluster.heal()
    cluster.forget()
    yield cluster
    cluster.heal()


def active(services):
    return [s for s in services if s.status == "active"]


def test_the_exports_hold_every_service_beyond_ten_thousand(server, large, proxy, geography):
    _, services = large
    expected = by_name(services, ServiceQuery())
    assert len(expected) > 10_000
    with httpx.Client(base_url=server.url, timeout=120) as client:
        reply = client.get("/services.csv")
        assert reply.status_code == 200
        text = reply.content.decode("utf-8-sig")  # the byte order mark Excel needs (session 17)
        assert [row["id"] for row in csv.DictReader(io.StringIO(text))] == expected
        features = json.loads(client.get("/services.geojson").text)["features"]
        assert [f["id"] for f in features] == expected
        near = client.get("/services.csv", params={"postcode": "LS9 7TF", "radius_km": 60}).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(near)))
    home = geography.resolve(postcode="LS9 7TF")
    nearest = brute_nearest(services, home.lat, home.lon, ServiceQuery(), len(services), 60)
    assert [(r["id"], float(r["distance_km"])) for r in rows] == [(i, round(d, 3)) for i, d in nearest]


def test_a_page_within_a_radius_is_counted_not_fetched(server, large, proxy, geography):
    """One page near a place within a radius, with every service inside it: the total comes from a count,
    and only the page's services are read (it took 12 searches of up to 1,000 records before)."""
    _, services = large
    reply = httpx.get(f"{server.url}/services", params={"postcode": "LS9 7TF", "radius_km": 1000, "per_page": 20},
                      timeout=60).json()
    home = geography.resolve(postcode="LS9 7TF")
    nearest = brute_nearest(services, home.lat, home.lon, ServiceQuery(), len(services), 1000)
    assert reply["total"] == len(nearest) == len(active(services))
    assert [r["id"] for r in reply["results"]] == [i for i, _ in nearest[:20]]
    asked = proxy.seen(r"/_search|/_count")
    assert len(asked) <= 3, asked  # the thin ring at the edge, the count, one page of the nearest


def test_an_export_cut_off_half_way_is_not_a_complete_file(server, proxy):
    """When the cluster goes away part way through a streamed export, the transfer is broken off (no
    final chunk), so no client takes what arrived for a whole file."""
    proxy.fail(r"/_search", None, after=3)
    for path in ("/services.csv", "/services.geojson"):
        with httpx.Client(base_url=server.url, timeout=120) as client:
            with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
                with client.stream("GET", path) as reply:
                    assert reply.status_code == 200
                    reply.read()
        proxy.heal()
        proxy.fail(r"/_search", None, after=3)


REQUESTS = [("GET", "/health", None), ("GET", "/services", None), ("GET", "/services.csv", None),
            ("GET", "/services.geojson", None), ("GET", "/services/synthetic:000001", None),
            ("POST", "/match", {"home": {"postcode": "LS9 7TF"}}), ("GET", "/gaps/E54000054", None),
            ("GET", "/areas/E54000054", None), ("GET", "/oruk/services", None)]


def test_a_cluster_that_does_not_answer_is_a_503_with_retry_after(server, proxy):
    proxy.fail("", None)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for method, path, body in REQUESTS:
            reply = client.request(method, path, json=body)
            assert reply.status_code == 503, (path, reply.text)
            assert reply.headers["retry-after"] == "30", path
            error = reply.json()["error"]
            assert error["code"] == "index_unavailable" and "did not answer" in error["message"], path
        proxy.heal()
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize("status, code, said", [
    (500, "index_unavailable", "The search index failed (it answered 500)."),
    (400, "index_refused_request", "The search index refused this service's request (it answered 400)."),
])
def test_a_cluster_that_fails_or_refuses_a_request_is_a_503_saying_so(server, proxy, status, code, said):
    """A cluster's fault (500) and a request it refuses (400) were a 500 `internal_error` from every search: a 503
    saying which (a fault may pass: `Retry-After`), never in the cluster's words, which may quote the search."""
    words = 'failed to create query: {"geo_distance": {"location": "53.79,-1.52"}}'
    proxy.fail("", status, error=("query_shard_exception", words))
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for method, path, body in REQUESTS:
            reply = client.request(method, path, json=body)
            assert reply.status_code == 503, (path, reply.text)
            assert ("retry-after" in reply.headers) == (status == 500), path
            error = reply.json()["error"]
            assert error["code"] == code and error["message"].startswith(said), (path, error)
            assert "53.79" not in reply.text and "query_shard_exception" not in reply.text, path
        proxy.heal()
        assert client.get("/health").status_code == 200


def test_the_cli_says_so_in_one_line(large, proxy, home, data_dir):
    base, _ = large
    proxy.fail("", None)
    env = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT),
           **elastic_env(proxy, base)}
    for command in (["index", str(SAMPLE), "--no-progress"], ["match", "--postcode", "LS9 7TF"],
                    ["gaps", "E54000054"]):
        done = subprocess.run([sys.executable, "-m", "cli", *command], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: The search index"), (command, done.stderr)
        assert "did not answer" in lines[0]
