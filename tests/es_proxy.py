"""An HTTP proxy in front of osmem for a rehabmap server running in its own process.

In-process tests hand the backend a client built with `tests.es_server.PlainJsonNode`; a real
`rehabmap serve` builds its own client, unchanged from production, which sends the compatibility media
types (`application/vnd.elasticsearch+json; compatible-with=8`) that osmem answers with 406. This proxy
does for such a server what `PlainJsonNode` does in process: it forwards every request to osmem with those
two headers rewritten to the plain media types, and passes the answer back as it came. Against a real
cluster (ELASTICSEARCH_URL) it is not needed.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


@contextmanager
def plain_json_proxy(upstream: str) -> Iterator[str]:
    """A proxy to `upstream` on 127.0.0.1 and a free port, for as long as the block runs; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="osmem-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
