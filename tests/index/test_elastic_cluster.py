"""The Elasticsearch backend against a cluster that moves on or misbehaves: answers past the result window,
generations kept for a grace period and cleaned up after crashes, bulk loads that meet an overloaded
cluster, a cluster that does not answer at all, and edits of several records (a request to read and one to
write each chunk of them, one refresh for them all, an edit the cluster cuts short, and one it refuses a record of).

Overload and outages are made by `ClusterProxy` between the backend and the search server (osmem never
answers 429 or goes away by itself); the backend uses the production client through it.
"""

from __future__ import annotations

import collections
import copy
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timezone

import pytest
from geodata.distance import haversine_km_one
from rehabmap import errors
from rehabmap.errors import IndexNotBuilt, IndexUnavailable, SwitchNotKnown, told
from rehabmap.index.base import ServiceQuery
from search.engine import OpenSearchClient
from search.elastic import (DocumentRefused, ElasticIndex, ElasticWriter, RequestRefused, _MAPPINGS, _SETTINGS,
                            _version_name, alias_of)
from tests.api.conftest import Clock
from tests.index.brute_force import brute_nearest, by_name
from tests.index.conftest import client_at

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
    with pytest.raises(RequestRefused, match=r"it answered 400") as refused:
        index.find(ServiceQuery(), limit=50, offset=300)  # what the exports used to do
    assert "Result window is too large" in str(refused.value.__cause__)

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


@pytest.mark.parametrize("status", [408, 429, 503])
@pytest.mark.parametrize("per_document", [False, True])
@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_how_often_each_engines_client_sends_a_bulk_request_the_cluster_keeps_refusing(
        corpus, es_settings, proxy, status, per_document, engine_name):
    """What README says of bulk writes answered "not now" (here 5 retries, 0.01 s apart): whatever `OVERLOADED` holds
    (408, 429, 502-504), whole or per document, is sent again after a backoff on either engine, by one loop of
    rehabmap's (`search.engine._resending`). What is still refused ends the build, unavailable. Before, OpenSearch's
    bulk helper sent again only 429: a document answered 408 or 502-504, or a whole request answered 408, was sent
    once ("… which this service's client for it does not send again"), and its transport sent a whole request
    answered 502-504 again at once, three times, without backoff. Each engine's client sends the same: one value."""
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter(client_at(engine_name, proxy.url), base, bulk_retries=5, backoff_s=0.01)
    fault = proxy.fail(r"/_bulk", status, per_document=per_document)
    with pytest.raises(IndexUnavailable) as raised:
        writer.replace_all(corpus[:20])
    assert fault.hits == 1 + 5
    said = (f"kept refusing documents as overloaded ({status}) after 5 retries." if per_document
            else f"is overloaded or unavailable (it answered {status}).")
    assert raised.value.message == f"The search index {said} The index being served is unchanged."


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_bulk_request_sends_again_only_the_documents_answered_not_now_in_the_order_sent(
        corpus, es_settings, proxy, es_client, engine_name):
    """What `_resending` sends again: of a chunk of 20, the three documents answered 429 (the others stored), in the
    order the chunk sent them; of those, the one answered 503 in turn, alone. No test asked what a resend carried, so
    one sending the whole chunk again (each document written twice) passed every other."""
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter(client_at(engine_name, proxy.url), base, backoff_s=0.01)
    ids = [service.id for service in corpus[:20]]
    proxy.fail(r"/_bulk", 429, per_document=True, times=1, ids=(ids[12], ids[3], ids[7]))
    proxy.fail(r"/_bulk", 503, per_document=True, times=1, ids=(ids[7],))
    proxy.forget()
    assert writer.replace_all(corpus[:20]) == 20
    assert proxy.bulk_ids == [ids, [ids[3], ids[7], ids[12]], [ids[7]]]
    assert not [path for _, path in proxy.seen(r"/_bulk") if "require_alias" in path]  # a build's: the default
    index = ElasticIndex(es_client, base)
    assert index.info().count == 20 and [index.get(i) for i in ids] == corpus[:20]


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_a_document_answered_not_now_once_is_sent_again_on_either_engine(corpus, es_settings, proxy, es_client,
                                                                          engine_name, status):
    """A document the cluster answers 408 or 502-504 once, then takes: OpenSearch's bulk helper sent it again only
    for a 429, so the build failed ("The search index refused documents as overloaded (503), which this service's
    client for it does not send again.") where on Elasticsearch it was sent again and the build succeeded. Both send
    it again now, after the backoff, and the build holds every record."""
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter(client_at(engine_name, proxy.url), base, backoff_s=0.01)
    fault = proxy.fail(r"/_bulk", status, per_document=True, times=1, ids=(corpus[3].id,))
    assert writer.replace_all(corpus[:20]) == 20
    assert fault.hits == 1 and len(proxy.seen(r"/_bulk")) == 2
    assert ElasticIndex(es_client, base).get(corpus[3].id) == corpus[3]


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("status", [408, 504])
def test_a_build_request_written_by_the_cluster_but_answered_not_now_is_sent_again_harmlessly(
        corpus, es_settings, proxy, es_client, engine_name, status):
    """A gateway before the cluster that gives up waiting (504, or 408) while the cluster writes the bulk request: the
    request is sent again, and its documents are there already. A build created each document ("create"), which the
    cluster refuses for an id already there (409 `version_conflict_engine_exception`), so the build failed: "The
    search index refused the record '…': … version conflict, document already exists …". It indexes them now, as an
    edit does, so sending a request again writes the same documents again; an id twice in one build is still refused
    before it is sent."""
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter(client_at(engine_name, proxy.url), base, backoff_s=0.01)
    fault = proxy.fail(r"/_bulk", status, times=1, forwarded=True, error=("timeout_exception", "gave up waiting"))
    assert writer.replace_all(corpus[:300]) == 300
    assert fault.hits == 1 and len(proxy.seen(r"/_bulk")) == 2
    index = ElasticIndex(es_client, base)
    assert index.info().count == 300 and index.get(corpus[123].id) == corpus[123]


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_an_id_twice_in_a_build_after_its_first_chunk_is_refused_and_the_new_index_deleted(
        corpus, es_settings, proxy, es_client, engine_name):
    """README said an id twice in one build is refused "before anything is sent": it is found as the records are
    read, so one at 1,200 comes after the first chunk of 1,000 was written. Its second copy is never sent, the build
    fails, and the new index (1,000 records) is deleted, the alias where it was."""
    base, writer, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    (live,) = _versions(es_client, base)
    proxy.forget()
    with pytest.raises(ValueError, match=rf"^Service id '{re.escape(corpus[5].id)}' appears twice in one build\.$"):
        writer.replace_all([*corpus[:1200], corpus[5], *corpus[1200:1300]])
    assert [len(ids) for ids in proxy.bulk_ids] == [1000]
    assert _versions(es_client, base) == [live] and _live(es_client, base) == live
    assert ElasticIndex(es_client, base).info().count == 200


# --- a cluster that does not answer ------------------------------------------------------------------------

def _every_call_over_300(engine_name: str, proxy, es_settings, corpus, monkeypatch
                         ) -> tuple[ElasticIndex, dict[str, Callable[[], object]]]:
    """An index through the proxy over 300 services of the corpus, and each read and write the backend makes, by
    name, with a scan begun (in pages of 50) before the cluster went wrong."""
    base = alias_of(es_settings.elasticsearch_index)
    client = client_at(engine_name, proxy.url)
    writer = ElasticWriter(client, base)
    writer.replace_all(corpus[:300])
    index = ElasticIndex(client, base)
    monkeypatch.setattr("search.elastic._SCAN_PAGE", 50)
    cut_off = index.scan(EVERYTHING)
    next(cut_off)
    return index, {
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


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_cluster_that_does_not_answer_is_unavailable_not_a_crash(corpus, es_settings, proxy, monkeypatch,
                                                                    engine_name):
    index, calls = _every_call_over_300(engine_name, proxy, es_settings, corpus, monkeypatch)

    proxy.fail("", None)  # every request: the connection closes with no answer
    for name, call in calls.items():
        with pytest.raises(IndexUnavailable, match="did not answer") as raised:
            call()
        assert raised.value.status == 503 and raised.value.headers == {"Retry-After": "30"}, name
        assert proxy.url.removeprefix("http://") not in raised.value.message, name  # sent to the public

    proxy.heal()
    assert index.info().count == 300
    assert len(list(itertools.islice(index.scan(EVERYTHING), 120))) == 120


def test_an_opensearch_error_without_a_status_is_no_answer_not_an_answer_of_0(es_settings, proxy):
    """opensearch-py raises its `TransportError` with the status 'N/A' where no answer gave one: its connection errors,
    and an error it raises itself, as when it cannot sniff the cluster's nodes (`sniffer_timeout`: before a request,
    once due; 1e-9 s is below what a float of the time can add, so due at every request; the proxy closes the sniff's
    connection). That was taken for an answer of 0: "The search index failed (it answered 0)", a status no cluster
    sends. No node answered: it is said so, as of a connection error."""
    client = OpenSearchClient.connect([proxy.url], sniffer_timeout=1e-9)
    proxy.fail("", None)  # every request: the connection closes with no answer
    with pytest.raises(IndexUnavailable, match=r"^The search index did not answer \(TransportError\)\.") as raised:
        ElasticIndex(client, alias_of(es_settings.elasticsearch_index)).info()
    assert "Unable to sniff hosts" in str(raised.value.__cause__)
    assert proxy.seen("/_nodes"), "the client sniffed, and failed"
    assert raised.value.headers == {"Retry-After": "30"} and "answered" not in raised.value.message


_FAULT = ("null_pointer_exception", 'Cannot invoke "Object.hashCode()" because "key" is null')
# A 404 that is no missing index: a route the cluster does not know (before, a reader's read "No search index").
_NO_ROUTE = ("resource_not_found_exception", "no handler found for uri [/rehabmap/_x] and method [GET]")
# What a cluster says of a request it will not run may quote it: here, as Elasticsearch's query_shard_exception
# does, a search's place, which no log may keep.
_QUOTING = ("query_shard_exception", 'failed to create query: {"geo_distance": {"location": "53.79,-1.52"}}')


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("status, error, raised, said", [
    (500, _FAULT, IndexUnavailable, "The search index failed (it answered 500)."),
    (400, _QUOTING, RequestRefused, "The search index refused this service's request (it answered 400)."),
    (404, _NO_ROUTE, RequestRefused, "The search index refused this service's request (it answered 404)."),
])
def test_a_cluster_that_fails_or_refuses_a_request_is_a_503_saying_so_not_a_crash(
        corpus, es_settings, proxy, monkeypatch, caplog, engine_name, status, error, raised, said):
    """An answer that is neither overload (429, 502-504) nor a refusal of the key escaped every call but a bulk
    write's as a raw `ClusterError`, a 500 from the API: a cluster's fault (500) and a request it refuses (a 4xx: an
    mget, a refresh, a mark, a search). A fault is `IndexUnavailable` (try again in a minute), a refusal
    `RequestRefused` (the people who run the service must act); neither is the person's to mend. The cluster's
    words go to the log, not the message, and only of a write: a read's may quote a search's place or needs (each call
    a minute after the last: the log tells a line once a minute at most, `OperatorLog`)."""
    index, calls = _every_call_over_300(engine_name, proxy, es_settings, corpus, monkeypatch)
    clock = Clock()
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog(clock=clock))

    proxy.fail("", status, error=error)  # every request
    for name, call in calls.items():
        caplog.clear()
        clock.now += 60
        with caplog.at_level(logging.ERROR), pytest.raises(raised) as caught:
            call()
        message = caught.value.message
        assert caught.value.status == 503 and message.startswith(said), (name, message)
        assert error[1] not in message and error[0] not in message, name  # sent to the public
        assert (getattr(caught.value, "headers", None) == {"Retry-After": "30"}) == (status == 500), name
        assert f"{status} {error[0]}" in caplog.text, name
        assert (error[1] in caplog.text) == (name in ("upsert", "replace_all")), name

    proxy.heal()
    assert index.info().count == 300


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("status, error, raised, line, level", [
    (400, _QUOTING, RequestRefused, f"answered 400 {_QUOTING[0]}: its words are not logged", logging.ERROR),
    (503, _QUOTING, IndexUnavailable, "answered 503", logging.INFO),
    (None, _QUOTING, IndexUnavailable, "did not answer: ConnectionError", logging.INFO),
])
def test_a_cluster_refusing_every_search_is_logged_once_a_minute_not_once_a_request(
        corpus, es_settings, proxy, monkeypatch, caplog, engine_name, status, error, raised, line, level):
    """A cluster that refuses every search (a 400) or fails it (a 500) was logged at ERROR once a request, so at the
    rate of the searches; so was one overloaded (503) or out of reach, at INFO, until session 50. Each line is told
    once a minute at most (`OperatorLog`, as the server's other repeated lines to the operator are), at its level: 20
    searches a minute give one line; the first after the minute says how many went unlogged. Each search still answers
    its own 503."""
    index, _ = _every_call_over_300(engine_name, proxy, es_settings, corpus, monkeypatch)
    clock = Clock()
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog(clock=clock))
    proxy.fail(r"/_search", status, error=error)
    logged: list[list[str]] = []
    for minute in range(2):
        clock.now += 60 * minute
        caplog.clear()
        with caplog.at_level(level, logger="rehabmap.api"):
            for second in range(20):
                clock.now += 2.9 * bool(second)  # 19 × 2.9 s = 55.1 s: all within the minute
                with pytest.raises(raised):
                    index.find(ServiceQuery(text="rehab"))
        logged.append([r.getMessage() for r in caplog.records if r.name == "rehabmap.api" and r.levelno == level])
    line = f"{proxy.url.removeprefix('http://')} {line}"
    assert [len(lines) for lines in logged] == [1, 1], logged
    assert line in logged[0][0] and line in logged[1][0] and "[met 19 more times since, unlogged]" in logged[1][0]
    assert error[1] not in caplog.text


# --- edits: a request to read and one to write each chunk of an upsert, one refresh for all -----------------------

@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_an_edit_of_an_index_never_built_says_so_not_that_a_request_was_refused(corpus, es_settings, proxy,
                                                                                  engine_name):
    """An edit reads its records first (`_mget`); with no index behind the alias (never built, or its alias gone),
    the cluster answers 404 `index_not_found_exception`, which was taken for a request refused whole: "The search
    index refused this service's request (it answered 404). The people who run this service have to fix the search
    index", as if rehabmap had sent one the cluster will not take. There is no index to edit: `IndexNotBuilt`, in a
    reader's words, and nothing written (no index made by the write)."""
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter(client_at(engine_name, proxy.url), base)
    with pytest.raises(IndexNotBuilt) as raised:
        writer.upsert({corpus[0].id: {"name": f"{_RENAMED} House"}})
    assert raised.value.message == f"No search index '{base}'. Run 'rehabmap index SOURCE...' first."
    assert not proxy.seen("/_bulk"), "nothing written"
    assert writer.client.indices(f"{es_settings.elasticsearch_index}*") == {}, "no index made by a write"


_GONE = ("index_not_found_exception", "no such index")


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_write_whose_index_goes_while_it_writes_is_not_a_refused_request(corpus, es_settings, proxy, es_client,
                                                                            engine_name):
    """A bulk request answered 404 `index_not_found_exception` (the index it writes to gone since the write's first
    request) was a request refused whole: "The search index refused the whole request writing … (it answered 404).
    The people who run this service have to fix the search index", though nothing in it was wrong; then, for an edit,
    "No search index … Run 'rehabmap index SOURCE...' first", though its read had found one and what it wrote before
    may be stored. It is unavailable for now."""
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    proxy.fail(r"/_bulk", 404, error=_GONE)
    with pytest.raises(IndexUnavailable) as raised:
        writer.upsert(changes)
    assert told(raised.value) == ("The search index no longer has an index this service's request named (it "
                                  "answered 404). Try again in a minute.")


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_an_edit_whose_index_goes_between_its_read_and_its_write_makes_no_index_named_like_the_alias(
        corpus, es_settings, proxy, es_client, engine_name):
    """The index behind the alias deleted (through the cluster) after the edit read its records, before it wrote
    them: the bulk request to the alias's name made an index of that name (the cluster creates an index a write
    names, osmem, Elasticsearch and OpenSearch alike), mapped from the documents, and the edit "succeeded" into it,
    refreshed, counted and marked. The write now requires the alias (`require_alias`): each document is answered 404
    `index_not_found_exception`, and the edit is unavailable, as a write whose index goes is; no index is made."""
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    (live,) = _versions(es_client, base)
    with pytest.raises(IndexUnavailable) as raised:
        writer.upsert(changes, before_commit=lambda: es_client.delete_indices([live]))
    assert told(raised.value) == ("The search index no longer has an index this service's request named (it "
                                  "answered 404). Try again in a minute.")
    assert es_client.indices(f"{base}*") == {}, "no index made by the write"
    assert [path for _, path in proxy.seen("/_bulk")][-1].endswith("require_alias=true")


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("path", [r"/_mget", r"/_bulk"])
def test_a_whole_request_answered_409_is_a_conflict_to_try_again_not_a_refused_request(
        corpus, es_settings, proxy, es_client, engine_name, path):
    """The cluster answers 200 to any bulk it parsed (a bulk's conflicts are its documents') and has none for an
    mget: a whole request answered 409 is a gateway's or a proxy's before it, for a cause this service cannot know.
    It was refused ("The search index refused the whole request writing 6 records, the first '…' (it answered 409).
    The people who run this service have to fix the search index"), then said as "conflicts with a change made to it
    meanwhile", a cause claimed, with no word of who mends it if it persists. It is said as seen, unavailable for now
    and the operator's if it fails again, as a 5xx is; the edit passes once it passes."""
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    proxy.fail(path, 409, times=1, error=("version_conflict_engine_exception", "version conflict, injected"))
    with pytest.raises(IndexUnavailable) as raised:
        writer.upsert(changes)
    assert told(raised.value) == ("The search index answered that this service's request conflicts (it answered "
                                  "409). Try again in a minute; if it fails again, the people who run this service "
                                  "have to fix the search index: what it answered is in this service's log.")
    assert raised.value.headers["Retry-After"]
    assert sorted(s.id for s in writer.upsert(changes)) == sorted(changes)


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_build_whose_new_index_is_deleted_under_it_fails_and_the_alias_stays(corpus, es_settings, proxy, es_client,
                                                                               engine_name):
    """The build's new index deleted (through the cluster) after its first chunk of 1000 records: the next bulk
    request made the index again (the cluster creates an index a write names), mapped from the documents, so the
    build answered 1500 and moved the alias to an index of the 500 written after, `location` mapped as numbers. It
    checks the index is the one it made and holds what it wrote: it fails, unavailable, the alias where it was, what
    the cluster made deleted; a build again succeeds."""
    base, writer, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    (live,) = _versions(es_client, base)

    def deleting_after_the_first_chunk():
        for i, service in enumerate(corpus):
            if i == 1200:  # the first chunk is written; the second is being read
                (new,) = set(_versions(es_client, base)) - {live}
                es_client.delete_indices([new])
            yield service

    with pytest.raises(IndexUnavailable) as raised:
        writer.replace_all(deleting_after_the_first_chunk())
    assert re.fullmatch(rf"The new index {re.escape(base)}-\d{{20}} is not the one this build made: it holds 500 of "
                        r"the 1500 records written \(it was deleted, or replaced, while they were written\)\. The "
                        r"index being served is unchanged\. Run the build again\.", told(raised.value))
    assert raised.value.message.endswith("unchanged.")  # the fact; its own ask is said in place of "Try again …"
    assert _versions(es_client, base) == [live] and _live(es_client, base) == live
    assert ElasticIndex(es_client, base).info().count == 200
    assert writer.replace_all(corpus[:10]) == 10


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_build_whose_new_index_is_deleted_after_its_check_fails_at_the_alias_switch_and_the_alias_stays(
        corpus, es_settings, proxy, es_client, engine_name):
    """The window the check above leaves: the new index deleted after the build counted it, before the alias moves
    (here as the `_aliases` request reaches the cluster). The cluster refuses to add an alias to an index that is not
    there (404 `index_not_found_exception`) and applies none of the call's actions, so the build fails, unavailable,
    the alias where it was on the generation it served; a build again succeeds."""
    base, writer, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    (live,) = _versions(es_client, base)

    def delete_the_new_index() -> None:
        (new,) = set(_versions(es_client, base)) - {live}
        es_client.delete_indices([new])

    proxy.before(r"/_aliases", delete_the_new_index)
    with pytest.raises(IndexUnavailable) as raised:
        writer.replace_all(corpus[200:500])
    assert told(raised.value) == ("The search index no longer has an index this service's request named (it "
                                  "answered 404). The index being served is unchanged. Try again in a minute.")
    assert _versions(es_client, base) == [live] and _live(es_client, base) == live
    assert ElasticIndex(es_client, base).info().count == 200
    assert writer.replace_all(corpus[:10]) == 10


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_build_whose_alias_switch_the_cluster_applied_but_a_gateway_answered_504_goes_live(
        corpus, es_settings, proxy, es_client, caplog, engine_name):
    """A gateway that gave up waiting answers the `_aliases` call 504 after the cluster applied it (every try of it):
    the build deleted its new index, which the alias then named, so no index served at all, and it said "The index
    being served is unchanged.". The alias read after the failure names the new index: the build is live and
    succeeds (its token says so to a rebuild's `recover`), the old generation is retired, the answer logged."""
    base, writer, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    (live,) = _versions(es_client, base)
    proxy.fail(r"^/_aliases", 504, forwarded=True)
    with caplog.at_level(logging.WARNING):
        assert writer.replace_all(corpus[200:500]) == 300
    (new,) = set(_versions(es_client, base)) - {live}
    assert _live(es_client, base) == new and ElasticIndex(es_client, base).info().count == 300
    assert "retired_at" in es_client.indices(live)[live]["mappings"]["_meta"]
    assert f"the cluster answered the alias switch to {new} with an error" in caplog.text


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_build_whose_alias_switch_and_the_alias_read_after_it_fail_keeps_its_index_and_says_it_is_not_known(
        corpus, es_settings, proxy, es_client, engine_name):
    """The switch answered 504 after the cluster applied it, and the alias cannot be read after it: the new index
    may be the one served, so it is kept (deleting it left no index at all), and the error says what is not known,
    not "unchanged"."""
    base, writer, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    (live,) = _versions(es_client, base)
    proxy.fail(r"^/_aliases", 504, forwarded=True)
    proxy.fail(r"^/_alias/", 503, after=1)  # the build's own read before the switch answered, the one after not
    _builds_not_known_if_served(writer, corpus, proxy)
    proxy.heal()
    (new,) = set(_versions(es_client, base)) - {live}
    assert _live(es_client, base) == new and ElasticIndex(es_client, base).info().count == 300
    assert "retired_at" in es_client.indices(live)[live]["mappings"]["_meta"], "a grace period, as a switch gives"


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_build_whose_alias_switch_a_gateway_answered_504_unapplied_keeps_its_index_as_the_cluster_may_apply_it(
        corpus, es_settings, proxy, es_client, engine_name):
    """A gateway answers the `_aliases` call 504 without the cluster having applied it yet (it may still, queued):
    the alias read after it names the old index. Before, the build deleted its new index and said "unchanged", and a
    queued switch that then applied left no index served. Now the new index is kept, the error says what is not
    known, and the next build removes it, never served."""
    base, writer, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    (live,) = _versions(es_client, base)
    proxy.fail(r"^/_aliases", 504)
    _builds_not_known_if_served(writer, corpus, proxy)
    proxy.heal()
    (kept,) = set(_versions(es_client, base)) - {live}
    assert _live(es_client, base) == live and es_client.count(kept) == 300, "the new index kept, the old one served"
    assert writer.replace_all(corpus[:10]) == 10
    assert kept not in _versions(es_client, base), "the next build removes it"


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_build_whose_alias_switch_is_refused_with_a_400_deletes_its_index_and_says_unchanged(
        corpus, es_settings, proxy, es_client, engine_name):
    """A 4xx is a definite refusal: the cluster (or a gateway before it) will not apply the switch, so the new index
    never serves and is deleted, the alias where it was."""
    base, writer, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    (live,) = _versions(es_client, base)
    proxy.fail(r"^/_aliases", 400, error=("illegal_argument_exception", "injected by the test proxy"))
    with pytest.raises(RequestRefused, match=r"\(it answered 400\)\. .*The index being served is unchanged\."):
        writer.replace_all(corpus[200:500])
    assert _versions(es_client, base) == [live] and _live(es_client, base) == live


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("error", [("no_shard_available_action_exception", "No shard available for [get [x]]"),
                                   ("index_closed_exception", "closed")])
def test_an_edit_whose_read_the_cluster_answers_with_another_error_per_document_is_not_an_index_never_built(
        corpus, es_settings, proxy, monkeypatch, caplog, engine_name, error):
    """An `mget` is answered 200 with an error per document; every such error was taken for a missing index: an
    edit whose read met a shard not available or its index closed said "No search index '…'. Run 'rehabmap index
    SOURCE...' first.", telling the operator to build one, and nothing was logged. It is a fault of the cluster's,
    logged at ERROR in its words; nothing is written. It was then said as "The search index failed (it answered
    500)", though the request was answered 200, and a reader's (a scan by relevance reads its records by id) logged
    without the cluster's words, which name an index and an id, never a search's. Both say the cluster's error type
    and log its words."""
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    proxy.forget()
    proxy.fail(r"/_mget", 200, per_document=True, error=error)  # answered 200, an error per document
    said = f"could not read a document of an mget: {error[0]}: {error[1]}"
    for read in (lambda: writer.upsert(changes), lambda: list(ElasticIndex(writer.client, base).scan(
            ServiceQuery(text="synthetic")))):
        monkeypatch.setattr(errors, "operator_log", errors.OperatorLog(clock=Clock()))
        caplog.clear()
        with caplog.at_level(logging.ERROR), pytest.raises(IndexUnavailable) as raised:
            read()
        assert told(raised.value).startswith(f"The search index could not read a record ({error[0]}). Try again "
                                             "in a minute"), told(raised.value)
        assert said in caplog.text and "answered 500" not in caplog.text
    assert not proxy.seen("/_bulk")


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_shard_outage_met_by_reads_of_differing_records_is_logged_once_a_minute(
        corpus, es_settings, proxy, monkeypatch, caplog, engine_name):
    """A document the cluster could not read is logged with the cluster's words, which name the document ("No shard
    available for [get [index][id]]"), so each read of another record made a line of its own and `OperatorLog`, which
    remembered the whole line, logged an outage at the rate of the reads. The line is remembered by its error type
    alone, the words beside it where it is logged: 20 reads of 20 records in a minute log one line, and the first
    after the minute says how many went unlogged."""
    base, writer, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    words = [f"Quill{chr(ord('a') + i)}x" for i in range(20)]  # a word each, in the corpus nowhere
    writer.upsert({service.id: {"name": word} for service, word in zip(corpus, words)})
    index = ElasticIndex(writer.client, base)
    clock = Clock()
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog(clock=clock))
    proxy.fail(r"/_mget", 200, per_document=True,
               error=("no_shard_available_action_exception", "No shard available for [get [x][{id}]]"))
    logged: list[list[str]] = []
    for minute in range(2):
        clock.now += 60 * minute
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="rehabmap.api"):
            for word in words:
                clock.now += 2.9 * (word != words[0])  # 19 × 2.9 s = 55.1 s: all within the minute
                with pytest.raises(IndexUnavailable):
                    list(index.scan(ServiceQuery(text=word, include_inactive=True)))
        logged.append([r.getMessage() for r in caplog.records if r.name == "rehabmap.api"])
    assert [len(lines) for lines in logged] == [1, 1], logged
    line = (f"{writer.client.where()} could not read a document of an mget: "
            f"no_shard_available_action_exception: No shard available for [get [x][")
    assert logged[0][0] == f"{line}{corpus[0].id}]]", logged
    assert logged[1][0] == f"{line}{corpus[0].id}]] [met 19 more times since, unlogged]", logged


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("call", ["count_near", "info"])
def test_a_generation_deleted_between_a_readers_requests_says_so_and_logs_no_error(
        corpus, es_settings, proxy, monkeypatch, caplog, engine_name, call):
    """A reader names the concrete index its first request answered from; a rebuild may delete it (after the grace
    period) before the next: routine. A count near a place said "No search index '…'. Run 'rehabmap index
    SOURCE...' first." (its count named the generation, under the alias's `_found`), and `info` "The search index no
    longer has an index this service's request named" with an ERROR line. Both say the generation was deleted (ask
    again), as a scan does, and log no ERROR."""
    base, _, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    index = ElasticIndex(client_at(engine_name, proxy.url), base)
    near, far = corpus[1], corpus[0]
    radius = haversine_km_one(near.lat, near.lon, far.lat, far.lon)  # `far` in the ring the count reads
    calls = {"count_near": lambda: index.count_near(near.lat, near.lon, EVERYTHING, radius_km=radius),
             "info": index.info}
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog(clock=Clock()))
    proxy.fail(r"/_count", 404, error=_GONE)
    with caplog.at_level(logging.ERROR), pytest.raises(IndexUnavailable) as raised:
        calls[call]()
    assert re.fullmatch(rf"The index generation this answer was reading \({re.escape(base)}-\d{{20}}\) has been "
                        r"deleted: .* Ask again\.", told(raised.value))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


_RENAMED = "Quillwort"  # a word the corpus has nowhere


def _an_edit_of_several(corpus, n: int) -> dict[str, dict]:
    """Renames of `n` services and one new service, all named with the planted word."""
    changes: dict[str, dict] = {s.id: {"name": f"{_RENAMED} House {i}"} for i, s in enumerate(corpus[:n])}
    added = {**corpus[n].model_dump(mode="json"), "id": f"{corpus[n].id}-added", "name": f"{_RENAMED} Court"}
    return {**changes, added["id"]: added}


def _builds_not_known_if_served(writer: ElasticWriter, corpus, proxy) -> None:
    """A build of 300 whose alias switch a gateway answered 504 (`_UNKNOWN`). The switch was sent with the time the
    cluster may hold it queued, each engine's parameter (before, none: the cluster's default, unknown to rehabmap), so
    the error says within how long it has applied or never will (`settles_s`: that and a margin)."""
    proxy.forget()
    with pytest.raises(SwitchNotKnown) as raised:
        writer.replace_all(corpus[200:500])
    assert told(raised.value) == (
        "The search index is overloaded or unavailable (it answered 504). Whether the new index is the one served "
        "is not known: the cluster may apply the alias switch it did not answer; the next rebuild, server start or "
        "sync from 60 seconds on finds out. Try again in a minute.")
    timeout = "cluster_manager_timeout" if isinstance(writer.client, OpenSearchClient) else "master_timeout"
    assert {path for _, path in proxy.seen(r"^/_aliases")} == {f"/_aliases?{timeout}=30s"}
    assert raised.value.settles_s == 60


def _two_hundred_written(engine_name: str, proxy, es_settings, corpus) -> tuple[str, ElasticWriter, dict[str, dict]]:
    """The alias, a writer through the proxy over 200 services of the corpus it has written, and an edit of five of
    them and one new (`_an_edit_of_several`)."""
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter(client_at(engine_name, proxy.url), base)
    writer.replace_all(corpus[:200])
    return base, writer, _an_edit_of_several(corpus, 5)


def _refreshes(proxy) -> list[tuple[str, str]]:
    """The requests that asked the cluster for a refresh: a `_refresh` call, or a write with `refresh=true`."""
    return proxy.seen(r"_refresh|[?&]refresh=")


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_an_upsert_reads_and_writes_in_a_request_each_refreshes_once_then_marks(corpus, es_settings, proxy,
                                                                                 engine_name):
    """A sync's live write passes every record a run changed to one upsert: each used to be read with a request of
    its own and indexed with another (2N round trips for N records), and before that with a refresh each too; now
    they are read with one `mget` and indexed with one bulk request, the index refreshed once, and then marked
    edited, so a reader that sees the mark finds every record of the edit."""
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    index = ElasticIndex(writer.client, base)
    before = index.generation()
    proxy.forget()
    assert sorted(s.id for s in writer.upsert(changes)) == sorted(changes)
    assert sorted(s.id for s in index.find(ServiceQuery(text=_RENAMED)).items) == sorted(changes)
    requests = proxy.seen()
    assert _refreshes(proxy) == [("POST", f"/{base}/_refresh")]
    assert not proxy.seen(r"/_doc/")  # no request of one record
    (read,) = [at for at, (_, path) in enumerate(requests) if "/_mget" in path]
    (written,) = [at for at, (_, path) in enumerate(requests) if "/_bulk" in path]
    (marked,) = [at for at, (method, path) in enumerate(requests) if method == "PUT" and path.endswith("/_mapping")]
    assert read < written < requests.index(("POST", f"/{base}/_refresh")) < marked
    assert index.generation() != before and index.info().count == 201


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_an_upsert_stopped_part_way_is_finished_by_the_next(corpus, es_settings, proxy, es_client, engine_name,
                                                            monkeypatch):
    """Written two records a bulk request, the cluster goes away after the first request: the call fails, the index
    is not marked (no cache learns of a part of an edit), and the two are stored. The next upsert of the same
    changes (a sync's next live write) skips those two as unchanged, indexes the other four, refreshes once and
    marks."""
    monkeypatch.setattr("search.elastic._BULK_CHUNK", 2)
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    index = ElasticIndex(es_client, base)
    before = index.generation()
    proxy.fail(r"/_bulk", None, after=1)  # the bulk requests past the first: the connection closes, no answer
    with pytest.raises(IndexUnavailable, match="did not answer"):
        writer.upsert(changes)
    assert index.generation() == before
    assert [index.get(i).name for i in list(changes)[:3]] == [f"{_RENAMED} House 0", f"{_RENAMED} House 1",
                                                               corpus[2].name]

    proxy.heal()
    proxy.forget()
    assert sorted(s.id for s in writer.upsert(changes)) == sorted(list(changes)[2:])
    assert (len(proxy.seen(r"/_mget")), len(proxy.seen(r"/_bulk"))) == (3, 2)  # six read, four written, two a time
    assert _refreshes(proxy) == [("POST", f"/{base}/_refresh")]
    assert index.generation() != before
    assert sorted(s.id for s in index.find(ServiceQuery(text=_RENAMED)).items) == sorted(changes)


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_an_upsert_names_a_record_the_cluster_refuses_and_keeps_the_rest_of_its_request(
        corpus, es_settings, proxy, es_client, engine_name, monkeypatch):
    """The cluster refuses one record of an edit's bulk request (here the live generation's mapping lacks a field the
    record has: the engine refuses a document its mapping does not fit). The call fails naming that record, the
    index is not marked, and the records of the request before and after it are stored, as a bulk request stores
    every document it can. Once the mapping is mended, the next upsert of the same changes writes that one alone."""
    lacking = copy.deepcopy(_MAPPINGS)
    del lacking["properties"]["capacity_as_of"]
    monkeypatch.setattr("search.elastic._MAPPINGS", lacking)
    services = [s for s in corpus if s.capacity_as_of is None][:200]
    base = alias_of(es_settings.elasticsearch_index)
    writer = ElasticWriter(client_at(engine_name, proxy.url), base)
    writer.replace_all(services)
    index = ElasticIndex(es_client, base)
    before = index.generation()
    changes = _an_edit_of_several(services, 5)
    refused = services[2].id
    changes[refused] = {**changes[refused], "capacity": "available", "capacity_as_of": date.today().isoformat()}
    proxy.forget()
    with pytest.raises(DocumentRefused, match=f"refused the record '{refused}': .*capacity_as_of") as raised:
        writer.upsert(changes)
    assert raised.value.answered == 400 and len(proxy.seen(r"/_bulk")) == 1
    assert index.generation() == before
    stored = {i: index.get(i) for i in changes}
    assert stored[refused] == services[2]
    assert sorted(i for i, s in stored.items() if s is not None and s.name.startswith(_RENAMED)) == sorted(
        i for i in changes if i != refused)

    (concrete,) = es_client.aliased(base)
    es_client.client.indices.put_mapping(index=concrete, properties={
        "capacity_as_of": _MAPPINGS["properties"]["capacity_as_of"]})
    assert [s.id for s in writer.upsert(changes)] == [refused]
    assert index.generation() != before and index.get(refused).capacity == "available"


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("status, error", [
    (400, ("illegal_argument_exception", "Malformed action/metadata line [3], expected START_OBJECT but found "
                                         "[VALUE_STRING]")),
    (413, ("content_too_long_exception", "request body is too large: 104857700 bytes, the limit is 104857600")),
])
def test_a_bulk_request_the_cluster_refuses_whole_names_its_records_and_logs_its_words(
        corpus, es_settings, proxy, es_client, engine_name, monkeypatch, caplog, status, error):
    """The cluster refuses a whole bulk request with a 4xx that is neither overload nor a refusal of rehabmap's key (a
    request it will not parse, one larger than it takes). That was a raw `ClusterError`: a 500 from the API, a
    traceback from the command line. It is `RequestRefused`, a 503 naming the records the request carried and the
    status, not sent again; the cluster's own words are in the log for the operator, not in the message. An edit so
    stopped is left unmarked, the request before it stored; a build so stopped leaves the index being served."""
    monkeypatch.setattr("search.elastic._BULK_CHUNK", 2)
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    index = ElasticIndex(es_client, base)
    before = index.generation()
    ids = list(changes)
    proxy.forget()
    proxy.fail(r"/_bulk", status, error=error, after=1)  # the first request taken, the second refused whole
    with caplog.at_level(logging.ERROR, logger="search.elastic"), pytest.raises(RequestRefused) as raised:
        writer.upsert(changes)
    refused = raised.value
    assert (refused.status, refused.code, refused.answered) == (503, "index_refused_request", status)
    assert refused.message == (f"The search index refused the whole request writing 2 records, the first '{ids[2]}' "
                               f"(it answered {status}). The people who run this service have to fix the search "
                               "index: what it answered is in this service's log.")
    assert len(proxy.seen(r"/_bulk")) == 2  # not sent again
    assert error[1] in caplog.text and f"'{ids[2]}'" in caplog.text
    assert index.generation() == before
    assert [index.get(i).name for i in ids[:3]] == [f"{_RENAMED} House 0", f"{_RENAMED} House 1", corpus[2].name]

    (live,) = _versions(es_client, base)
    with pytest.raises(RequestRefused, match=r"writing 2 records, .* The index being served is unchanged\. "):
        writer.replace_all(corpus[200:300])
    assert _versions(es_client, base) == [live] and index.info().count == 200


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_request_refused_whole_after_some_of_its_documents_were_refused_as_overloaded_names_those(
        corpus, es_settings, proxy, es_client, engine_name, monkeypatch):
    """The cluster answers a chunk's other documents and refuses one as overloaded; the client's helper sends that one
    again, alone, and the cluster refuses that request whole (400). The refusal was laid at the wrong records: the ids
    sent were dropped one per answer in the order sent, not by the answer's id, so the message named "2 records, the
    first" the one stored after it (and the one only read ahead, never sent). It names the record that request
    carried; the others of its chunk are stored, and the chunk after it unsent."""
    monkeypatch.setattr("search.elastic._BULK_CHUNK", 3)
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    writer.backoff_s = 0.01
    index = ElasticIndex(es_client, base)
    ids = list(changes)
    proxy.forget()
    proxy.fail(r"/_bulk", 429, per_document=True, ids=(ids[1],), times=1)  # a and c stored, b refused: not now
    proxy.fail(r"/_bulk", 400, error=("illegal_argument_exception", "Malformed action/metadata line [1]"))
    with pytest.raises(RequestRefused) as raised:
        writer.upsert(changes)
    assert raised.value.message.startswith(f"The search index refused the whole request writing the record "
                                           f"'{ids[1]}' (it answered 400). ")
    assert len(proxy.seen(r"/_bulk")) == 2  # the chunk, and its refused document alone; the next chunk unsent
    assert [index.get(i).name for i in ids[:4]] == [f"{_RENAMED} House 0", corpus[1].name, f"{_RENAMED} House 2",
                                                    corpus[3].name]


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_a_bulk_request_the_cluster_times_out_is_unavailable_for_now_not_refused(corpus, es_settings, proxy,
                                                                                es_client, engine_name):
    """A node (or a proxy before it) that gives up waiting for a bulk request answers 408: "not now", as an
    overloaded one does. It was taken for a refusal of the request itself (a 503 `index_refused_request`: "fix the
    search index", never sent again). It is unavailable for now (503, try again, Retry-After), the index unmarked;
    and once the cluster answers, the same edit is written."""
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    writer.backoff_s, writer.edit_retries = 0.01, 2
    index = ElasticIndex(es_client, base)
    before = index.generation()
    proxy.fail(r"/_bulk", 408, error=("timeout_exception", "request timed out"))
    with pytest.raises(IndexUnavailable, match=r"\(it answered 408\)\.$") as raised:
        writer.upsert(changes)
    assert told(raised.value).endswith("(it answered 408). Try again in a minute.")
    assert raised.value.status == 503 and raised.value.headers["Retry-After"]
    assert index.generation() == before
    proxy.heal()
    assert sorted(s.id for s in writer.upsert(changes)) == sorted(changes)


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_an_upsert_the_cluster_finds_overloaded_is_sent_again_with_backoff_then_unavailable(corpus, es_settings,
                                                                                          proxy, engine_name):
    """An edit's bulk request goes through the build's retries: records refused as overloaded are sent again after
    a backoff, and refused after the last retry, the call is unavailable for now (503, try again), unmarked."""
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    writer.backoff_s, writer.edit_retries = 0.01, 2
    proxy.forget()
    fault = proxy.fail(r"/_bulk", 429, per_document=True, times=2)
    assert sorted(s.id for s in writer.upsert(changes)) == sorted(changes)
    assert fault.hits == 2 and len(proxy.seen(r"/_bulk")) == 3
    index = ElasticIndex(writer.client, base)
    before = index.generation()
    proxy.heal()
    fault = proxy.fail(r"/_bulk", 429, per_document=True)
    with pytest.raises(IndexUnavailable, match=r"overloaded \(429\) after 2 retries\.$") as raised:
        writer.upsert({corpus[7].id: {"name": f"{_RENAMED} Hall"}})
    assert told(raised.value).endswith("overloaded (429) after 2 retries. Try again in a minute.")
    assert fault.hits == 1 + 2 and raised.value.status == 503
    assert index.generation() == before and index.get(corpus[7].id) == corpus[7]


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
@pytest.mark.parametrize("per_document", [False, True])
def test_an_edit_is_sent_again_fewer_times_than_a_build_as_it_holds_the_index_lock(
        corpus, es_settings, proxy, es_client, engine_name, per_document):
    """An edit holds the index lock (every other edit, sync and swap waits) while its bulk request is sent again, and
    was sent again as often as a build's, each waited for as long (7 requests of up to 120 s, 61 s of backoff: ~15
    minutes behind a gateway answering 504 after its own timeout). It is sent again 3 times (README: at most 55 s in
    all, each request waited for 12 s), a build still 6, with the writer's defaults (here 0.01 s apart)."""
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    writer.backoff_s = 0.01
    index = ElasticIndex(es_client, base)
    fault = proxy.fail(r"/_bulk", 504, per_document=per_document, error=("timeout_exception", "gave up waiting"))
    with pytest.raises(IndexUnavailable) as raised:
        writer.upsert(changes)
    assert fault.hits == 1 + 3
    said = ("kept refusing documents as overloaded (504) after 3 retries." if per_document
            else "is overloaded or unavailable (it answered 504).")
    assert raised.value.message == f"The search index {said}"
    assert index.get(corpus[0].id) == corpus[0]
    with pytest.raises(IndexUnavailable, match="unchanged"):
        writer.replace_all(corpus[:10])
    assert fault.hits == 1 + 3 + 1 + 6


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_an_edit_of_many_chunks_shares_its_resends_as_it_holds_the_index_lock(corpus, es_settings, proxy,
                                                                           monkeypatch, engine_name):
    """A sync's live write of N chunks was sent again up to the edit's limit a chunk, so the index lock (every
    other edit, sync and swap waiting) could be held N × 55 s while the cluster failed. The resends are now the
    edit's: here 4 chunks of 50, each chunk's first request answered 429; the first three are sent again (the edit's
    3 resends) and written, the fourth's 429 ends the edit, unavailable, the index unmarked. Before, all four were
    sent again and the edit succeeded after 8 requests. A build's chunks keep a limit each (the same faults: 8
    requests, built)."""
    monkeypatch.setattr("search.elastic._BULK_CHUNK", 50)
    base, writer, _ = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    writer.backoff_s = 0.01
    index = ElasticIndex(writer.client, base)
    before = index.generation()
    changes = {s.id: {"name": f"{_RENAMED} House {i}"} for i, s in enumerate(corpus[:200])}

    def first_sends_refused() -> None:
        proxy.heal()
        proxy.forget()
        for k in range(4):  # a fault examines only the requests no fault before it took: the 1st, 3rd, 5th, 7th
            proxy.fail(r"/_bulk", 429, after=k, times=1)

    first_sends_refused()
    with pytest.raises(IndexUnavailable, match=r"\(it answered 429\)\.$"):
        writer.upsert(changes)
    assert len(proxy.seen(r"/_bulk")) == 7
    assert index.generation() == before
    assert [index.get(s.id).name for s in corpus[149:151]] == [f"{_RENAMED} House 149", corpus[150].name]
    first_sends_refused()
    writer.replace_all(corpus[:200])
    assert len(proxy.seen(r"/_bulk")) == 8 and index.get(corpus[199].id) == corpus[199]


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_an_edit_gives_up_a_bulk_request_the_cluster_does_not_answer_after_its_own_timeout(
        corpus, es_settings, proxy, es_client, engine_name, monkeypatch):
    """An edit's bulk request was waited for as a build's is, 120 s, the index lock held (README: a maintainer's
    gateway gives up long before). It is waited for `_EDIT_TIMEOUT_S` (12 s; here 0.5 s, against a node that answers
    nothing until the test ends), then unavailable, not sent again (no answer is no "not now")."""
    monkeypatch.setattr("search.elastic._EDIT_TIMEOUT_S", 0.5)
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    released = threading.Event()
    fault = proxy.fail(r"/_bulk", None, held=released)
    started = time.monotonic()
    try:
        with pytest.raises(IndexUnavailable, match=r"^The search index did not answer \(ConnectionTimeout\)\.$"):
            writer.upsert(changes)
        waited = time.monotonic() - started
    finally:
        released.set()
    assert fault.hits == 1 and waited < 60, waited  # the build's 120 s would be over 60


@pytest.mark.parametrize("engine_name", ["elasticsearch", "opensearch"])
def test_the_counts_by_source_stay_true_through_an_upsert_cut_off(corpus, es_settings, proxy, es_client,
                                                                   engine_name, monkeypatch):
    """The counts by source (the mark's, shown on /health and the pages) were the old counts plus the services a
    call added: a call cut off after indexing a new service left it uncounted, as its retry found it there.
    They are now the engine's own count after the refresh, so the retry's are true; and a retry that finds
    nothing left to write (the refresh was cut off) still marks, as the counts moved."""
    base, writer, changes = _two_hundred_written(engine_name, proxy, es_settings, corpus)
    index = ElasticIndex(es_client, base)
    new = list(changes)[-1]
    changes = {new: changes[new], **changes}  # the new service is written first
    monkeypatch.setattr("search.elastic._BULK_CHUNK", 2)
    proxy.fail(r"/_bulk", None, after=1)  # with the first renamed, in the first request of two records
    with pytest.raises(IndexUnavailable):
        writer.upsert(changes)
    proxy.heal()
    assert len(writer.upsert(changes)) == 4
    engine = dict(collections.Counter(s.source for s in index.scan(EVERYTHING)))
    assert index.info().sources == engine and sum(engine.values()) == 201 == index.info().count

    before = index.generation()
    again = {**corpus[10].model_dump(mode="json"), "id": f"{corpus[10].id}-again", "name": f"{_RENAMED} Row"}
    proxy.fail(r"_refresh", None)
    with pytest.raises(IndexUnavailable):
        writer.upsert({again["id"]: again})
    proxy.heal()
    assert writer.upsert({again["id"]: again}) == []
    assert index.generation() != before
    assert index.info().sources == dict(collections.Counter(s.source for s in index.scan(EVERYTHING)))
    assert sum(index.info().sources.values()) == 202 == index.info().count
