"""Issue 17's done-when: two real `rehabmap serve` processes, each with a home of its own as two machines
have, on one PostgreSQL store and one search engine (osmem, the in-memory OpenSearch-compatible server,
or the cluster at ELASTICSEARCH_URL): an edit through one is visible through the other within 2 s, and a
rate-limited client is limited across both, not once per process."""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack

import httpx
import pytest

from indexer.pipeline import GeographyPlacer, build_index
from indexer.sources import load_source
from rehabmap.config import Settings
from rehabmap.maintain.postgres import PostgresDatabase
from rehabmap.maintain.store import Directory
from search.elastic import ElasticWriter
from tests.api.conftest import SAMPLE, serve
from tests.es_proxy import plain_json_proxy
from tests.index.conftest import drop_indices, es_client, es_server  # noqa: F401 (fixtures)

PER_MINUTE = 120  # each process alone would let 2 x 120 through before refusing
SERVICE = "sample:camborne-supported-housing"


@pytest.fixture(scope="module")
def hosts(es_server, es_client, postgres, geography, geodata_dir, data_dir, tmp_path_factory):  # noqa: F811
    alias = f"rehabmap-hosts-{uuid.uuid4().hex[:10]}"
    report = build_index(load_source(SAMPLE), GeographyPlacer(geography),
                         ElasticWriter.from_settings(Settings(ELASTICSEARCH_URL=es_server.url,
                                                              elasticsearch_index=alias), client=es_client),
                         progress=False)
    assert report.indexed == 60
    url = postgres.new_database()
    key_file = tmp_path_factory.mktemp("keys") / "token.key"  # the same key file on both hosts
    _info, token = Directory(PostgresDatabase(url), key_file=key_file).tokens.create(
        "maintainer", "two hosts", actor="test setup")
    with ExitStack() as stack:
        search = es_server.url if es_server.kind != "osmem" else stack.enter_context(plain_json_proxy(es_server.url))
        servers = []
        for name in ("host-a", "host-b"):
            home = tmp_path_factory.mktemp(name)
            (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
            servers.append(stack.enter_context(serve(
                home, data_dir, home / "server.log", REHABMAP_BACKEND="elasticsearch", ELASTICSEARCH_URL=search,
                REHABMAP_ELASTICSEARCH_INDEX=alias, REHABMAP_DATABASE_URL=url, REHABMAP_TOKEN_KEY_FILE=str(key_file),
                REHABMAP_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE))))
        yield [httpx.Client(base_url=s.url, timeout=30) for s in servers], token
    drop_indices(es_client, alias)


def test_an_edit_through_one_host_is_visible_through_the_other_within_2_s(hosts):
    (a, b), token = hosts
    name = f"Camborne House {uuid.uuid4().hex[:6]}"
    edited = a.patch(f"/maintain/services/{SERVICE}", json={"name": name},
                     headers={"Authorization": f"Bearer {token}"})
    assert edited.status_code == 200, edited.text
    deadline = time.monotonic() + 2.0
    seen = None
    while time.monotonic() < deadline:
        seen = b.get(f"/services/{SERVICE}").json().get("name")
        if seen == name:
            break
        time.sleep(0.05)
    assert seen == name


def test_a_rate_limited_client_is_limited_across_both_hosts(hosts):
    """Requests alternate between the hosts until each has refused one. Counted per process, neither would
    refuse before it alone had let PER_MINUTE through, 2 x PER_MINUTE in all; counted together, both
    refuse after about PER_MINUTE in all (plus the 2 a second that refill meanwhile)."""
    (a, b), _token = hosts
    sent, refused, started = 0, set(), time.monotonic()
    while len(refused) < 2 and sent < 2 * PER_MINUTE + 60:
        host = sent % 2
        reply = (a, b)[host].get(f"/services/{SERVICE}")
        sent += 1
        if reply.status_code == 429:
            assert int(reply.headers["Retry-After"]) >= 1
            refused.add(host)
    assert refused == {0, 1} and sent < 2 * PER_MINUTE, (sent, time.monotonic() - started)
