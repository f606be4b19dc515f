"""The Elasticsearch backend against a cluster that moves on or misbehaves: answers past the result window,
generations kept for a grace period and cleaned up after crashes, bulk loads that meet an overloaded
cluster, and a cluster that does not answer at all.

Overload and outages are made by `ClusterProxy` between the backend and the search server (osmem never
answers 429 or goes away by itself); the backend uses the production client through it.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest
from rehabmap.errors import IndexUnavailable
from rehabmap.index.base import ServiceQuery
from search.elastic import ElasticIndex, ElasticWriter, _MAPPINGS, _SETTINGS, _version_name, alias_of
from tests.index.conftest import client_at
from tests.index.test_backend_behaviour import brute_nearest, by_name

EVERYTHING = ServiceQuery(include_inactive=True)


def _versions(client, base: str) -> list[str]:
    return sorted(client.indices(f"{base}-*"))


def _live(client, base: str) -> str:
    (name,) = client.aliased(base)
    return name


# --- no result window ------------------------------------------------------------------------------------

def test_scans_and_counts_read_past_the_result_window(corpus, embedded_index, es_settings, es_client, monkeypatch):
    """Elasticsearch refuses from + size beyond index.max_result_window (10,000 by default): exports and
    counts must not page with from/size. Here the window is 300 over 1,500 services, read 97 at a time (a
    page must fit the window, as the usual 1,000 fits 10,000)."""
    monkeypatch.setattr("search.elastic._SCAN_PAGE", 97)
    writer = ElasticWriter.from_settings(es_settings, client=es_client)
    writer.replace_all(corpus)
    index = ElasticIndex.from_settings(es_settings, client=es_client)
    es_client.client.indices.put_settings(index=_live(es_client, alias_of(es_settings.elasticsearch_index)),
                                          settings={"index": {"max_result_window": 300}})
    with pytest.raises(Exception, match="Result window is too large"):
        index.find(ServiceQuery(), limit=50, offset=300)  # what the exports used to do

    assert [s.id for s in index.scan(ServiceQuery())] == by_name(corpus, ServiceQuery())
    text = ServiceQuery(text="synthetic")
    scanned = [s.id for s in index.scan(text)]
    # Relevance is each engine's own (Lucene BM25, FTS5 bm25): the same services, each once.
    assert len(scanned) == len(set(scanned)) and set(scanned) == {s.id for s in embedded_index.scan(text)}
    assert len(scanned) > 1000
    hits = [(h.service.id, round(h.distance_km, 6)) for h in index.scan_nearest(52.5, -1.9, EVERYTHING)]
    assert hits == [(i, round(d, 6)) for i, d in brute_nearest(corpus, 52.5, -1.9, EVERYTHING, len(corpus), None)]
    assert index.count_near(52.5, -1.9, EVERYTHING, radius_km=1000) == len(corpus)
    assert sorted(index.ids()) == sorted(s.id for s in corpus) and len(list(index.all())) == len(corpus)


# --- generations: a grace period, then deleted; crash leftovers cleaned up -------------------------------

def test_a_scan_that_outlives_the_grace_period_fails_plainly(corpus, es_settings, es_client, monkeypatch):
    """With no grace period (the old behaviour), the generation a scan reads is deleted under it: the scan
    then fails with a message, never ends early as if it were complete."""
    monkeypatch.setattr("search.elastic._SCAN_PAGE", 50)
    writer = ElasticWriter(es_client, alias_of(es_settings.elasticsearch_index), grace_s=0)
    index = ElasticIndex.from_settings(es_settings, client=es_client)
    for query in (EVERYTHING, ServiceQuery(text="synthetic", include_inactive=True)):  # by name; by relevance
        writer.replace_all(corpus[:300])
        scan = index.scan(query)
        next(scan)
        writer.replace_all(corpus[300:400])
        with pytest.raises(IndexUnavailable, match="has been deleted"):
            list(scan)


def test_a_build_deletes_expired_and_abandoned_generations_only(corpus, es_settings, es_client):
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter.from_settings(es_settings, client=es_client)
    writer.replace_all(corpus[:50])
    previous = _live(es_client, base)

    def make(year: int, **meta: str) -> str:
        name = _version_name(base, datetime(year, 1, 1, tzinfo=timezone.utc))
        es_client.create_index(name, _SETTINGS, {**_MAPPINGS, "_meta": meta})
        return name

    abandoned = make(2001)  # a build that crashed before going live: never marked
    expired = make(2002, retired_at=datetime(2002, 6, 1, tzinfo=timezone.utc).isoformat())
    recent = make(2003, retired_at=datetime.now(timezone.utc).isoformat())  # still in its grace period
    building = make(2999)  # newer than any live generation: a build still running elsewhere

    writer.replace_all(corpus[50:100])
    live = _live(es_client, base)
    assert _versions(es_client, base) == sorted([recent, previous, live, building])
    assert ElasticIndex.from_settings(es_settings, client=es_client).info().count == 50
    del abandoned, expired


# --- an overloaded cluster ---------------------------------------------------------------------------------

@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_bulk_loads_retry_an_overloaded_cluster_with_backoff(corpus, es_settings, proxy, engine_name):
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter(client_at(engine_name, proxy.url), base, backoff_s=0.01)
    proxy.fail(r"/_bulk", 429, times=2)  # the whole request refused, twice
    proxy.fail(r"/_bulk", 503, times=1)
    proxy.fail(r"/_bulk", 429, per_document=True, times=1)  # every document of one request refused
    assert writer.replace_all(corpus) == len(corpus)
    assert [fault.hits for fault in proxy.faults] == [2, 1, 1]
    assert len(proxy.seen(r"/_bulk")) == 2 + 4  # two chunks of 1,000, and four refusals sent again
    index = ElasticIndex(client_at(engine_name, proxy.url), base)
    assert index.info().count == len(corpus) and index.get(corpus[1234].id) == corpus[1234]


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("status, per_document", [(503, False), (429, True)])
def test_a_build_the_cluster_keeps_refusing_fails_and_leaves_the_live_index(corpus, es_settings, proxy, es_client,
                                                                            status, per_document, engine_name):
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter(client_at(engine_name, proxy.url), base, bulk_retries=3, backoff_s=0.01)
    writer.replace_all(corpus[:100])
    (live,) = _versions(es_client, base)
    fault = proxy.fail(r"/_bulk", status, per_document=per_document)
    with pytest.raises(IndexUnavailable, match="unchanged") as raised:
        writer.replace_all(corpus[100:300])
    assert fault.hits == 1 + 3  # bounded: the first try and three retries
    assert raised.value.status == 503 and raised.value.headers["Retry-After"]
    assert _versions(es_client, base) == [live]  # the alias unmoved, the half-built index gone
    assert ElasticIndex(es_client, base).info().count == 100


# --- a cluster that does not answer ------------------------------------------------------------------------

@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_cluster_that_does_not_answer_is_unavailable_not_a_crash(corpus, es_settings, proxy, monkeypatch,
                                                                    engine_name):
    base = alias_of(es_settings.elasticsearch_index)
    client = client_at(engine_name, proxy.url)
    writer = ElasticWriter(client, base)
    writer.replace_all(corpus[:300])
    index = ElasticIndex(client, base)
    monkeypatch.setattr("search.elastic._SCAN_PAGE", 50)
    cut_off = index.scan(EVERYTHING)
    next(cut_off)

    proxy.fail("", None)  # every request: the connection closes with no answer
    calls = {
        "info": index.info, "generation": index.generation, "get": lambda: index.get(corpus[0].id),
        "find": lambda: index.find(ServiceQuery()), "count_by_type": lambda: index.count_by_type(ServiceQuery()),
        "count_near": lambda: index.count_near(53.8, -1.5, ServiceQuery(), radius_km=20),
        "nearest": lambda: index.nearest(53.8, -1.5, ServiceQuery(), k=5),
        "scan": lambda: index.scan(ServiceQuery()), "scan_nearest": lambda: index.scan_nearest(53.8, -1.5, EVERYTHING),
        "all": lambda: next(iter(index.all())), "ids": index.ids,
        "a scan cut off half way": lambda: list(cut_off),
        "upsert": lambda: writer.upsert({corpus[0].id: {"beds": 3}}),
        "replace_all": lambda: writer.replace_all(corpus[:10]),
    }
    for name, call in calls.items():
        with pytest.raises(IndexUnavailable, match="did not answer") as raised:
            call()
        assert raised.value.status == 503 and raised.value.headers == {"Retry-After": "30"}, name
        assert proxy.url.removeprefix("http://") not in raised.value.message, name  # sent to the public

    proxy.heal()
    assert index.info().count == 300
    assert len(list(itertools.islice(index.scan(EVERYTHING), 120))) == 120
