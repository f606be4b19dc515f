"""Request logging that never keeps special-category data.

A search carries health needs and where someone lives, so the log line has the method, the route
template, the status and the time — never the query string or body. Uvicorn's own access log is off.

The libraries a search passes through log what they send: the Elasticsearch and OpenSearch clients log
every request line at INFO (`GET /<index>/_doc/<the person's current placement>`) and, at DEBUG, whole request bodies
(the home's coordinates and needs); urllib3 and httpx log URLs. Their loggers are held at WARNING
whatever REHABMAP_LOG_LEVEL says (`TRANSPORT_LOGGERS`), so what they still say is about failures only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.routing import Mount
from starlette.types import Scope

log = logging.getLogger("rehabmap.access")
TRANSPORT_LOGGERS = ("elastic_transport", "elasticsearch", "opensearch", "opensearchpy", "urllib3", "httpx",
                     "httpcore")


def configure_logging(level: str) -> None:
    """The server's logging: `level` (REHABMAP_LOG_LEVEL) for rehabmap and uvicorn; only warnings and
    errors from the transport libraries, whatever `level` is."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name in TRANSPORT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


Observer = Callable[[str, str, int, float], None]  # method, route template, status, seconds


def log_request(scope: Scope, status: int, seconds: float, observe: Observer | None) -> None:
    """The request's line, written when its reply starts (`api.request_layer`), and the same facts handed to
    `observe` (the metrics)."""
    route = scope.get("route")
    # Under a mounted app (/oruk) the route is the sub-app's, and root_path holds the mount point.
    template = None if isinstance(route, Mount) else getattr(route, "path_format", None)
    path = scope.get("root_path", "") + template if template else "unmatched"
    log.info("%s %s %s %.1fms", scope["method"], path, status, seconds * 1000)
    if observe is not None:
        observe(scope["method"], path, status, seconds)
