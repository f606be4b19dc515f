"""A search server for the tests: osmem (an in-memory OpenSearch/Elasticsearch-compatible server), or a
real cluster named by ELASTICSEARCH_URL.

The OpenSearch client (opensearch-py) sends plain JSON, which osmem takes: the tests use it unchanged.

The official client (elasticsearch-py 9) sends `application/vnd.elasticsearch+json; compatible-with=9`
as Accept and Content-Type on every request. Elasticsearch understands it; osmem answers 406. Rather
than weaken the production client, the tests hand the backend a client built with `PlainJsonNode`, an
HTTP node that sends the same requests with the plain `application/json` / `application/x-ndjson` media
types. Against a real cluster the tests use an ordinary client, exactly as production does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from elastic_transport import HttpHeaders, Urllib3HttpNode
from elasticsearch import Elasticsearch

from search.engine import ElasticsearchClient, OpenSearchClient, SearchClient

_COMPAT = re.compile(r"application/vnd\.elasticsearch\+(json|x-ndjson)\s*;\s*compatible-with=\d+")


class PlainJsonNode(Urllib3HttpNode):
    """Sends the client's compatibility media types as the plain ones osmem accepts (tests only)."""

    def perform_request(self, method, target, body=None, headers=None, **kwargs):  # type: ignore[override]
        if headers:
            headers = HttpHeaders(headers)
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value:
                    headers[name] = _COMPAT.sub(r"application/\1", value)
        return super().perform_request(method, target, body=body, headers=headers, **kwargs)


@dataclass(frozen=True)
class SearchServer:
    url: str
    kind: str  # "osmem" or "elasticsearch"

    def client(self) -> ElasticsearchClient:
        """The Elasticsearch client, with plain media types on osmem."""
        if self.kind == "osmem":
            return ElasticsearchClient(Elasticsearch(self.url, node_class=PlainJsonNode, request_timeout=60))
        return ElasticsearchClient(Elasticsearch(self.url, request_timeout=60))

    def opensearch_client(self) -> OpenSearchClient:
        """The OpenSearch client exactly as production builds it (osmem speaks the OpenSearch API)."""
        return OpenSearchClient.connect([self.url], timeout=60)


def osmem_binary() -> str | None:
    try:
        from osmem_server import OsmemError, resolve_binary
    except ImportError:
        return None
    try:
        return resolve_binary()
    except OsmemError:
        return None


def _answers(url: str, timeout_s: float) -> bool:
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def osmem(startup_timeout: float = 120.0) -> Iterator[SearchServer]:
    """Start osmem on 127.0.0.1 with a port the OS picks, wait until it answers, stop it afterwards.

    The server also exits by itself if this process dies (it watches our pid and its stdin). Its stdout is
    read to the end by a thread, not only up to the line that says where it listens: a pipe left unread
    would stop osmem at its next write once 64 KiB had piled up in it. `startup_timeout` only ends a wait
    on an osmem that hangs; it prints its address as soon as it listens.
    """
    binary = osmem_binary()
    if binary is None:
        raise RuntimeError("osmem-server is not installed (pip install osmem-server)")
    process = subprocess.Popen(
        [binary, "-addr", "127.0.0.1:0", "-no-ja", "-parent-pid", str(os.getpid())],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready: dict = {}
    said = threading.Event()  # it printed where it listens, or its stdout closed
    output: deque[str] = deque(maxlen=50)

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if said.is_set():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and "url" in message:
                ready.update(message)
                said.set()
        said.set()

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        if not said.wait(startup_timeout) or not ready:
            raise RuntimeError(f"osmem did not start within {startup_timeout} s: {''.join(output)[-2000:]}")
        url = ready["url"]
        if not _answers(url, startup_timeout):
            raise RuntimeError(f"osmem at {url} does not answer: {''.join(output)[-2000:]}")
        yield SearchServer(url, "osmem")
    finally:
        process.kill()
        process.wait(timeout=10)
        reader.join(timeout=10)
        if process.stdin:
            process.stdin.close()
        if process.stdout:
            process.stdout.close()


@contextmanager
def search_server() -> Iterator[SearchServer]:
    """The cluster at ELASTICSEARCH_URL when set, else a private osmem."""
    url = os.environ.get("ELASTICSEARCH_URL")
    if url:
        yield SearchServer(url.rstrip("/"), "elasticsearch")
        return
    with osmem() as server:
        yield server


class CountingRecords:
    """A cluster's client that counts the records its searches give (what a backend reads and validates)."""

    def __init__(self, client: SearchClient) -> None:
        self.client, self.records = client, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.search(index, body)
        self.records += len(answer["hits"]["hits"])
        return answer


def drop_indices(client: SearchClient, base: str) -> None:
    """Delete every index of one test alias, by name (clusters refuse wildcard deletes by default)."""
    names = [name for name in client.indices(f"{base}*") if name == base or name.startswith(f"{base}-")]
    if names:
        client.delete_indices(names)
