"""A fault-injecting HTTP proxy in front of the tests' search server.

It stands where the network and a cluster under strain stand in production: it forwards every request to the real
server (osmem, or the cluster at ELASTICSEARCH_URL), records it (and a bulk request's document ids), and when told
to, answers as an overloaded cluster does (429 or 503 for a whole request, or 429 for every document of a bulk request
or for some of them, the others stored), refuses a whole request as a cluster refuses one it will not take (a 400 or
a 413, in its own words), or does not answer at all (a cluster that is down). osmem never does any of these by itself.

It also hands the official client's compatibility media types to the server as the plain ones, as
`tests/es_server.PlainJsonNode` does in-process, so a `rehabmap` process using the production client can
be pointed at osmem through it.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_COMPAT = re.compile(r"application/vnd\.elasticsearch\+(json|x-ndjson)\s*;\s*compatible-with=\d+")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade"}


_OVERLOADED = ("es_rejected_execution_exception", "injected by the test proxy")  # a whole request's, by default


@dataclass
class Fault:
    """What to do to requests whose path (query string included) matches `path`: answer `status` for
    the whole request (the cluster's `error`, type and reason: by default an overloaded node's), or `status` for
    every document of a bulk request (`per_document`; with `ids`, only for the documents of those ids, the others
    forwarded and stored) or of an `mget` (`per_document`: answered 200, each document the `error`), or close the
    connection without an answer (`status` None; `held`: once the event is set, a node that never answers before its
    client gives up). `forwarded`: the whole request's `status` is answered after the
    request was forwarded and the server answered it (a gateway that gave up waiting while the cluster wrote). The
    first `after` matching requests pass; then at most `times` fail (None: every one)."""

    path: str
    status: int | None = None
    per_document: bool = False
    times: int | None = None
    after: int = 0
    error: tuple[str, str] = _OVERLOADED
    ids: tuple[str, ...] = ()
    forwarded: bool = False
    held: threading.Event | None = None
    hits: int = 0
    passed: int = 0

    def applies(self, path: str) -> bool:
        if re.search(self.path, path) is None:
            return False
        if self.passed < self.after:
            self.passed += 1
            return False
        return self.times is None or self.hits < self.times


class ClusterProxy:
    def __init__(self, upstream: str, *, api_key: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        """`api_key`: answer 401, as a cluster with security on does, to a request without
        `Authorization: ApiKey <api_key>` (osmem has no security of its own). `tls`: serve HTTPS with it."""
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 9200)
        self.requests: list[tuple[str, str]] = []
        self.bulk_ids: list[list[str]] = []  # each bulk request's document ids, in the order it carried them
        self.faults: list[Fault] = []
        self._actions: list[tuple[str, Callable[[], None]]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if api_key is not None and self.headers.get("Authorization") != f"ApiKey {api_key}":
                    self._reply(401, json.dumps({"error": {
                        "type": "security_exception", "reason": "missing authentication credentials"},
                        "status": 401}).encode(), "application/json")
                    return
                fault = proxy._record(self.command, self.path, body)
                proxy._act(self.path)
                if fault is not None and fault.status is None:
                    if fault.held is not None:
                        fault.held.wait()
                    self.close_connection = True  # a cluster that is down: no answer at all
                    return
                if fault is not None and not fault.per_document:
                    if fault.forwarded:
                        proxy._forward(self.command, self.path, body, self.headers.items())
                    kind, reason = fault.error
                    self._reply(fault.status or 503, json.dumps({"error": {"type": kind, "reason": reason},
                                                                 "status": fault.status}).encode(), "application/json")
                    return
                if fault is not None and "/_mget" in self.path:
                    self._reply(200, _documents_failed(body, fault), "application/json")
                    return
                if fault is not None:
                    self._reply(200, proxy._some_rejected(self.command, self.path, body, self.headers.items(),
                                                          fault), "application/json")
                    return
                status, headers, answer = proxy._forward(self.command, self.path, body, self.headers.items())
                self._reply(status, answer, None, headers)

            def _reply(self, status: int, body: bytes, content_type: str | None,
                       headers: list[tuple[str, str]] | None = None) -> None:
                self.send_response(status)
                for name, value in headers or []:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                if content_type:
                    self.send_header("Content-Type", content_type)
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="cluster-proxy", daemon=True)

    def __enter__(self) -> ClusterProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def fail(self, path: str, status: int | None = None, *, per_document: bool = False,
             times: int | None = None, after: int = 0, error: tuple[str, str] = _OVERLOADED,
             ids: tuple[str, ...] = (), forwarded: bool = False, held: threading.Event | None = None) -> Fault:
        fault = Fault(path, status, per_document, times, after, error=error, ids=ids, forwarded=forwarded, held=held)
        with self._lock:
            self.faults.append(fault)
        return fault

    def before(self, path: str, action: Callable[[], None]) -> None:
        """Do `action` (to the cluster, as another of its clients: delete an index) before forwarding the next request
        whose path matches, once: what happens to the cluster between two of the backend's requests."""
        with self._lock:
            self._actions.append((path, action))

    def _act(self, path: str) -> None:
        with self._lock:
            due = [pair for pair in self._actions if re.search(pair[0], path)]
            self._actions = [pair for pair in self._actions if pair not in due]
        for _, action in due:
            action()

    def heal(self) -> None:
        with self._lock:
            self.faults.clear()

    def seen(self, path: str = "") -> list[tuple[str, str]]:
        """The requests so far (method, path) whose path matches."""
        with self._lock:
            return [r for r in self.requests if re.search(path, r[1])]

    def forget(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bulk_ids.clear()

    def _record(self, method: str, path: str, body: bytes) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            if "/_bulk" in path:
                self.bulk_ids.append([str(meta.get("_id")) for _, meta, _ in _bulk_actions(body)])
            for fault in self.faults:
                if fault.applies(path):
                    fault.hits += 1
                    return fault
        return None

    def _forward(self, method: str, path: str, body: bytes,
                 headers: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]], bytes]:
        sent = {name: _COMPAT.sub(r"application/\1", value) for name, value in headers
                if name.lower() not in _HOP_BY_HOP and name.lower() != "host"}
        connection = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            connection.request(method, path, body=body if body else None, headers=sent)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


    def _some_rejected(self, method: str, path: str, body: bytes, headers: list[tuple[str, str]],
                       fault: Fault) -> bytes:
        """A bulk answer refusing the fault's documents (every one, without `ids`) as an overloaded node does
        (thread pool queue full), the others forwarded as a request of their own and answered as the server did,
        each item in its document's place."""
        actions = _bulk_actions(body)
        refused = [not fault.ids or meta.get("_id") in fault.ids for _, meta, _ in actions]
        taken = b"".join(lines for (_, _, lines), no in zip(actions, refused) if not no)
        answered = iter(json.loads(self._forward(method, path, taken, headers)[2])["items"] if taken else [])
        items = [{action: {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": fault.status or 429,
                           "error": {"type": "es_rejected_execution_exception",
                                     "reason": "rejected execution (injected by the test proxy)"}}}
                 if no else next(answered) for (action, meta, _), no in zip(actions, refused)]
        return json.dumps({"took": 1, "errors": True, "items": items}).encode()


def _documents_failed(body: bytes, fault: Fault) -> bytes:
    """An `mget` answered 200 with the fault's error for each document, as a cluster answers one whose shard it
    cannot reach (`no_shard_available_action_exception`) or whose index is closed: an error per document, no status.
    "{id}" in the reason is the document's id, as a cluster's reason names it ("No shard available for [get [i][1]]").
    """
    kind, reason = fault.error
    docs = [{"_id": doc_id, "error": {"type": kind, "reason": reason.replace("{id}", doc_id)}}
            for doc_id in json.loads(body)["ids"]]
    return json.dumps({"docs": docs}).encode()


def _bulk_actions(body: bytes) -> list[tuple[str, dict, bytes]]:
    """A bulk request's actions: each one's kind ("index", "create", "delete"), its metadata and its lines."""
    actions = []
    lines = [line + b"\n" for line in body.split(b"\n") if line.strip()]
    position = 0
    while position < len(lines):
        ((action, meta),) = json.loads(lines[position]).items()
        width = 1 if action == "delete" else 2
        actions.append((action, meta, b"".join(lines[position:position + width])))
        position += width
    return actions
