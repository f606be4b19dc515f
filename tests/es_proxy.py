"""An HTTP proxy in front of osmem for a rehabmap server running in its own process.

In-process tests hand the backend a client built with `tests.es_server.PlainJsonNode`; a real
`rehabmap serve` builds its own client, unchanged from production, which sends the compatibility media
types (`application/vnd.elasticsearch+json; compatible-with=8`) that osmem answers with 406. This proxy
does for such a server what `PlainJsonNode` does in process: it forwards every request to osmem with those
two headers rewritten to the plain media types, and passes the answer back as it came. Against a real
cluster (ELASTICSEARCH_URL) it is not needed. It counts the connections its clients open (`proxy_to`), which is
how a test sees how many clients a process talked to the cluster through.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.es_server import _COMPAT

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def _handler(upstream: str) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {name: _COMPAT.sub(r"application/\1", value) if name.lower() in ("accept", "content-type")
                       else value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                reply = connection.getresponse()
                content = reply.read()
                self.send_response(reply.status)
                for name, value in reply.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)
            finally:
                connection.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            """Quiet: what passes through here is the test's business, not the test output's."""

    return Forward


class _Proxy(ThreadingHTTPServer):
    """Counts the connections clients open to it: HTTP/1.1 keeps one for as many requests as a client sends
    one after another, so this is how many clients (or concurrent requests) talked to the cluster."""

    daemon_threads = True
    connections = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1  # (called by the one thread that accepts)
        super().process_request(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def proxy_to(upstream: str) -> Iterator[_Proxy]:
    """A proxy to `upstream` on 127.0.0.1 and a free port, for as long as the block runs."""
    server = _Proxy(("127.0.0.1", 0), _handler(upstream))
    thread = threading.Thread(target=server.serve_forever, name="osmem-proxy", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def plain_json_proxy(upstream: str) -> Iterator[str]:
    """`proxy_to`'s URL."""
    with proxy_to(upstream) as proxy:
        yield proxy.url
