"""The search cluster's client: the few calls the backend (`search.elastic`) makes, answered by each
engine's own official client — `elasticsearch` for Elasticsearch 8, `opensearch-py` for OpenSearch 2
(`REHABMAP_SEARCH_ENGINE`).

The two clients share an ancestor and have grown apart: Elasticsearch 8's takes keyword-only bodies
(`document=`, `settings=`/`mappings=`, `meta=`, `actions=`), answers with response objects and per-request
`options()`, and sends a compatibility media type that OpenSearch refuses; OpenSearch's takes `body=` and
`ignore=`, answers plain dicts and raises its own exceptions. Every such difference lives here, so the backend
is written once, against `SearchClient`: requests are the JSON bodies of the REST API the two engines share,
answers are plain dicts, and a failure is `Unreachable` (no answer) or `ClusterError` (an answer with an error
status), whichever client raised it.

Credentials go into the client's Authorization header only: `where` names a node by scheme, host and port,
and the errors raised here carry the library's message, which holds no header.
"""

from __future__ import annotations

import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import elastic_transport
import elasticsearch
import opensearchpy

from rehabmap.config import SearchEngine, Settings
from rehabmap.errors import IndexNotBuilt

Document = tuple[str, dict[str, Any]]  # (id, source)
# Answers that mean "not now": overloaded, or a node (or a proxy before it) that gave up waiting (408, which was taken
# for a refusal of the request itself: "fix the search index", never sent again).
OVERLOADED = (408, 429, 502, 503, 504)
REFUSED_CREDENTIALS = (401, 403)  # answers that mean "not with that key": the deployment's to fix


class Unreachable(Exception):
    """No node answered: refused, timed out, or its TLS certificate did not check. `kind` names which."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ClusterError(Exception):
    """The cluster answered with an error status; `error` is its error type (`index_not_found_exception`)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class DocumentUnread(ClusterError):
    """An `mget` answered (200) with an error for a document other than its index missing: a shard not available,
    the index closed. `error` is the cluster's type; its words name the index and the document's id, never a
    search's (an `mget` names documents by id), so a reader's may be logged too."""


class SearchClient(Protocol):
    """What the backend asks of a cluster. Index names may be aliases wherever a reader may use one."""

    def where(self) -> str:
        """The engine and its first node, without credentials: 'OpenSearch at https://os1:9200'."""

    def create_index(self, name: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None: ...

    def put_meta(self, index: str, meta: dict[str, Any]) -> None:
        """Replace the mapping's `_meta` (where a generation keeps its build facts and edit mark)."""

    def mappings(self, index: str) -> dict[str, Any]:
        """{concrete index: {"mappings": ...}} for an index or an alias."""

    def refresh(self, index: str) -> None: ...

    def delete_indices(self, names: Sequence[str]) -> None:
        """Delete these indices by name (never a wildcard); ones already gone are no error."""

    def indices(self, pattern: str) -> dict[str, Any]:
        """{index: {"aliases", "mappings", ...}} of the indices matching a wildcard; {} when none."""

    def aliased(self, alias: str) -> list[str]:
        """The indices the alias points to; [] when there is no such alias."""

    def update_aliases(self, actions: list[dict[str, Any]], *, queued_s: int) -> None:
        """One `_aliases` call: every action applies at once, or none does. `queued_s`: how long the cluster may hold
        it queued before giving it up, said to it explicitly (its master node's timeout: Elasticsearch's
        `master_timeout`, OpenSearch 2's `cluster_manager_timeout`; 30 s, the default, where unsaid), so a caller
        left without an answer knows when it will have applied or never will (`search.elastic._SWITCH_SETTLES_S`)."""

    def get(self, index: str, doc_id: str, source: list[str]) -> dict[str, Any] | None:
        """The document's source (these fields of it), or None; `ClusterError` 404 if the index is missing."""

    def bulk(self, index: str, documents: Sequence[Document], *, require_alias: bool, timeout_s: float,
             resends: Resends, backoff_s: float, max_backoff_s: float) -> Iterator[tuple[bool, dict[str, Any]]]:
        """Write the documents in one request, without a refresh (a costly operation, so the caller makes one for
        all), each replacing (or adding) its id's ("index", never "create": a request sent again after the cluster
        wrote it, answered "not now" by a gateway that gave up waiting, writes the same documents again where
        "create" refused each as already there, 409, failing the build). Per document (ok, its result:
        "_id", "status", "error"); `mget` reads it once answered, searches after the index's next refresh. What the
        cluster refuses as overloaded (`OVERLOADED`, whole or per document) is sent again with exponential backoff,
        while `resends` has any left (`_resending`). `require_alias` (sent only when true): `index` must be an alias; a
        document written while none is there is answered 404 `index_not_found_exception`, where the cluster would
        otherwise make an index of that name for it."""

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def count(self, index: str, query: dict[str, Any] | None = None) -> int: ...

    def mget(self, index: str, ids: list[str], source: list[str]) -> list[dict[str, Any]]:
        """The documents of these ids, in this order, as the engine answers each ("found", "_source"; "error"
        where the index is missing): real time, as `get` reads, so a write is read before any refresh."""

    def close(self) -> None: ...


def connect(settings: Settings) -> SearchClient:
    """The client of the configured engine for the configured nodes, API key and CA bundle."""
    hosts = settings.elasticsearch_hosts
    if not hosts:
        raise IndexNotBuilt("The search engine backend is selected but ELASTICSEARCH_URL is not set.")
    key = settings.elasticsearch_api_key.get_secret_value() if settings.elasticsearch_api_key else None
    if settings.search_engine is SearchEngine.opensearch:
        return OpenSearchClient.connect(hosts, api_key=key, ca_file=settings.elasticsearch_ca_file)
    return ElasticsearchClient.connect(hosts, api_key=key, ca_file=settings.elasticsearch_ca_file)


def _reason(body: Any, fallback: str) -> str:
    """The cluster's own words for an error answer, else the library's."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not error.get("reason"):
        return str(error) if error else fallback
    said = f"{error.get('type', 'error')}: {error['reason']}"
    causes = error.get("root_cause") or []
    cause = causes[0] if causes and isinstance(causes[0], dict) else {}
    if cause.get("reason") and cause["reason"] != error["reason"]:  # "all shards failed" says little
        said += f" ({cause.get('type', 'error')}: {cause['reason']})"
    return said


_Client = TypeVar("_Client", elasticsearch.Elasticsearch, opensearchpy.OpenSearch)


class _Adapter(ABC, Generic[_Client]):
    """What the two adapters share: the calls both official clients spell alike. Each adapter turns its own
    client's failures into `Unreachable` / `ClusterError` (`_answered`)."""

    def __init__(self, client: _Client) -> None:
        self.client: _Client = client

    @abstractmethod
    def _answered(self) -> AbstractContextManager[None]: ...

    def refresh(self, index: str) -> None:
        with self._answered():
            self.client.indices.refresh(index=index)

    def close(self) -> None:
        self.client.close()


# --- Elasticsearch 8 ---------------------------------------------------------------------------------------

class ElasticsearchClient(_Adapter[elasticsearch.Elasticsearch]):
    """`SearchClient` over the official `elasticsearch` client (its major pinned to the cluster's)."""

    engine = "Elasticsearch"

    @classmethod
    def connect(cls, hosts: list[str], *, api_key: str | None = None,
                ca_file: Path | None = None) -> ElasticsearchClient:
        options: dict[str, Any] = {}
        if api_key is not None:
            options["api_key"] = api_key
        if ca_file is not None:
            options["ca_certs"] = str(ca_file)
        return cls(elasticsearch.Elasticsearch(hosts, **options))

    @contextmanager
    def _answered(self) -> Iterator[None]:
        try:
            yield
        except (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout) as exc:
            raise Unreachable(type(exc).__name__, str(exc)) from exc
        except elasticsearch.ApiError as exc:
            raise ClusterError(exc.meta.status, str(exc.error), _reason(exc.body, str(exc))) from exc

    def where(self) -> str:
        nodes = self.client.transport.node_pool.all()
        if not nodes:
            return self.engine
        config = nodes[0].config
        return f"{self.engine} at {config.scheme}://{config.host}:{config.port}{config.path_prefix}"

    def create_index(self, name: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        with self._answered():
            self.client.indices.create(index=name, settings=settings, mappings=mappings)

    def put_meta(self, index: str, meta: dict[str, Any]) -> None:
        with self._answered():
            self.client.indices.put_mapping(index=index, meta=meta)

    def mappings(self, index: str) -> dict[str, Any]:
        with self._answered():
            return dict(self.client.indices.get_mapping(index=index).body)

    def delete_indices(self, names: Sequence[str]) -> None:
        with self._answered():
            self.client.options(ignore_status=404).indices.delete(index=",".join(names))

    def indices(self, pattern: str) -> dict[str, Any]:
        with self._answered():
            found = self.client.options(ignore_status=404).indices.get(index=pattern)
            return dict(found.body) if found.meta.status == 200 else {}

    def aliased(self, alias: str) -> list[str]:
        with self._answered():
            found = self.client.options(ignore_status=404).indices.get_alias(name=alias)
            return list(found.body) if found.meta.status == 200 else []

    def update_aliases(self, actions: list[dict[str, Any]], *, queued_s: int) -> None:
        with self._answered():
            self.client.indices.update_aliases(actions=actions, master_timeout=f"{queued_s}s")

    def get(self, index: str, doc_id: str, source: list[str]) -> dict[str, Any] | None:
        with self._answered():
            found = self.client.options(ignore_status=404).get(index=index, id=doc_id, source_includes=source)
        return document_source(found.body, found.meta.status)

    def bulk(self, index: str, documents: Sequence[Document], *, require_alias: bool, timeout_s: float,
             resends: Resends, backoff_s: float, max_backoff_s: float) -> Iterator[tuple[bool, dict[str, Any]]]:
        # "Not now" answers are sent again by `_resending`, with backoff, not at once by the client.
        client = self.client.options(request_timeout=timeout_s, retry_on_status=())

        def send(pending: Sequence[Document]) -> list[dict[str, Any]]:
            with self._answered():
                # None: not sent (a build's every request said `require_alias=false`, the cluster's default).
                answer = client.bulk(operations=_operations(index, pending), require_alias=require_alias or None)
                return _results(answer.body)

        return _resending(send, documents, resends=resends, backoff_s=backoff_s, max_backoff_s=max_backoff_s)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._answered():
            return dict(self.client.search(index=index, body=dict(body)).body)

    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        with self._answered():
            return int(self.client.count(index=index, query=query)["count"])

    def mget(self, index: str, ids: list[str], source: list[str]) -> list[dict[str, Any]]:
        with self._answered():
            return list(self.client.mget(index=index, ids=ids, source_includes=source)["docs"])


# --- OpenSearch 2 ------------------------------------------------------------------------------------------

class OpenSearchClient(_Adapter[opensearchpy.OpenSearch]):
    """`SearchClient` over `opensearch-py`. Its transport sends a request answered 502-504 again at once, to the
    next node (three times), as Elasticsearch's does. Bulk requests go through a second client whose transport does
    not (`bulk_client`: opensearch-py sets `retry_on_status` for a client, where Elasticsearch's sets it for a
    request, `options()`), so `_resending` alone sends them again, with backoff, as on Elasticsearch."""

    engine = "OpenSearch"

    def __init__(self, client: opensearchpy.OpenSearch, bulk_client: opensearchpy.OpenSearch) -> None:
        super().__init__(client)
        self.bulk_client = bulk_client

    @classmethod
    def connect(cls, hosts: list[str], *, api_key: str | None = None, ca_file: Path | None = None,
                **options: Any) -> OpenSearchClient:
        if api_key is not None:
            options["headers"] = {"authorization": f"ApiKey {api_key}"}
        if ca_file is not None:
            options["ca_certs"] = str(ca_file)
        return cls(opensearchpy.OpenSearch(hosts, verify_certs=True, **options),
                   opensearchpy.OpenSearch(hosts, verify_certs=True, retry_on_status=(), **options))

    @contextmanager
    def _answered(self) -> Iterator[None]:
        try:
            yield
        except opensearchpy.TransportError as exc:
            # No status ('N/A'), no answer: a connection error (timeouts and TLS failures included), or one the client
            # raises itself without one.
            if not isinstance(exc.status_code, int):
                raise Unreachable(type(exc).__name__, str(exc)) from exc
            raise ClusterError(exc.status_code, str(exc.error), _reason(exc.info, str(exc))) from exc

    def where(self) -> str:
        connections = self.client.transport.connection_pool.connections
        if not connections:
            return self.engine
        return f"{self.engine} at {connections[0].host}{connections[0].url_prefix}"

    def create_index(self, name: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        with self._answered():
            self.client.indices.create(index=name, body={"settings": settings, "mappings": mappings})

    def put_meta(self, index: str, meta: dict[str, Any]) -> None:
        with self._answered():
            self.client.indices.put_mapping(index=index, body={"_meta": meta})

    def mappings(self, index: str) -> dict[str, Any]:
        with self._answered():
            return dict(self.client.indices.get_mapping(index=index))

    def delete_indices(self, names: Sequence[str]) -> None:
        with self._answered():
            self.client.indices.delete(index=",".join(names), ignore=404)

    def indices(self, pattern: str) -> dict[str, Any]:
        with self._answered():
            try:
                return dict(self.client.indices.get(index=pattern))
            except opensearchpy.NotFoundError:
                return {}

    def aliased(self, alias: str) -> list[str]:
        with self._answered():
            try:
                return list(self.client.indices.get_alias(name=alias))
            except opensearchpy.NotFoundError:
                return []

    def update_aliases(self, actions: list[dict[str, Any]], *, queued_s: int) -> None:
        with self._answered():
            self.client.indices.update_aliases(body={"actions": actions},
                                               params={"cluster_manager_timeout": f"{queued_s}s"})

    def get(self, index: str, doc_id: str, source: list[str]) -> dict[str, Any] | None:
        with self._answered():
            try:
                found = self.client.get(index=index, id=doc_id, _source_includes=",".join(source))
            except opensearchpy.NotFoundError as exc:
                return document_source(exc.info, 404)
        return document_source(found, 200)

    def bulk(self, index: str, documents: Sequence[Document], *, require_alias: bool, timeout_s: float,
             resends: Resends, backoff_s: float, max_backoff_s: float) -> Iterator[tuple[bool, dict[str, Any]]]:
        def send(pending: Sequence[Document]) -> list[dict[str, Any]]:
            with self._answered():
                return _results(self.bulk_client.bulk(body=_operations(index, pending), request_timeout=timeout_s,
                                                      require_alias=require_alias or None))

        return _resending(send, documents, resends=resends, backoff_s=backoff_s, max_backoff_s=max_backoff_s)

    def close(self) -> None:
        super().close()
        self.bulk_client.close()

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._answered():
            return dict(self.client.search(index=index, body=body))

    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        with self._answered():
            return int(self.client.count(index=index, body={"query": query} if query else None)["count"])

    def mget(self, index: str, ids: list[str], source: list[str]) -> list[dict[str, Any]]:
        with self._answered():
            return list(self.client.mget(index=index, body={"ids": ids}, _source_includes=",".join(source))["docs"])


def _operations(index: str, documents: Sequence[Document]) -> list[dict[str, Any]]:
    """A bulk request's body indexing the documents: an action line and the source, each."""
    lines: list[dict[str, Any]] = []
    for doc_id, source in documents:
        lines += [{"index": {"_index": index, "_id": doc_id}}, source]
    return lines


def _results(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A bulk answer's result of each document, in the order sent ({"index": result} → result)."""
    return [result for item in answer["items"] for result in item.values()]


class Resends:
    """How many more times a write's bulk requests may be sent again. A build gives each request its own; an edit
    one for all of its requests: an edit holds the index lock, and a sync's live write of N chunks, each sent again
    up to its own limit, held it N times as long as one chunk's (N × 55 s) while the cluster failed."""

    def __init__(self, times: int) -> None:
        self.left = times


def _resending(send: Callable[[Sequence[Document]], list[dict[str, Any]]], documents: Sequence[Document], *,
               resends: Resends, backoff_s: float, max_backoff_s: float) -> Iterator[tuple[bool, dict[str, Any]]]:
    """Each document's (ok, result) of one bulk request, what the cluster answers "not now" (`OVERLOADED`: the whole
    request, or a document of it) sent again after `backoff_s`, doubling up to `max_backoff_s`, while `resends` has
    any left; then its answer is the document's (a whole request's, the `ClusterError`). One loop for both engines:
    each client's bulk helper resent its own choice (opensearch-py's 429 alone, so a document answered 408 or 502-504
    was never sent again on OpenSearch), and matching them meant copying a private part of one. The answers given
    first are those taken, the ones sent again after them."""
    pending = list(documents)
    for attempt in itertools.count():
        last = resends.left == 0
        try:
            results = send(pending)
        except ClusterError as exc:
            if exc.status not in OVERLOADED or last:
                raise
            again = pending
        else:
            again = []
            for document, result in zip(pending, results, strict=True):
                status = int(result.get("status") or 500)
                if status in OVERLOADED and not last:
                    again.append(document)
                else:
                    yield 200 <= status < 300, result
        if not again:
            return
        time.sleep(min(max_backoff_s, backoff_s * 2 ** attempt))
        resends.left -= 1
        pending = again


def document_source(body: Any, status: int | None = None) -> dict[str, Any] | None:
    """A document's answer, a GET's (`status`, its answer's) or one of an `mget`'s (None: a document's answer has
    no status of its own): the source, None for no such document, `ClusterError` where the index could not be read
    (the answer then has no "found" at all): of no such index, `status` or 404; of another error (a shard not
    available, the index closed), `status`, or of an `mget`'s document `DocumentUnread`, a fault of the cluster's,
    not a missing index (before, 404), nor an answer of 500, which it was said as though the request was answered
    200."""
    if isinstance(body, dict) and body.get("found"):
        return dict(body.get("_source", {}))
    if isinstance(body, dict) and "found" in body:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    kind = (error.get("type", "") if isinstance(error, dict) else "") or "index_not_found_exception"
    missing = kind == "index_not_found_exception"
    if missing or status is not None:
        raise ClusterError(status or 404, kind, _reason(body, "no such index" if missing else kind))
    raise DocumentUnread(200, kind, _reason(body, kind))
