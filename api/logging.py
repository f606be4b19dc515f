"""Request logging that never keeps special-category data.

A search carries health needs and where someone lives, so the log line has the method, the route
template, the status and the time — never the query string or body. Uvicorn's own access log is off.

The libraries a search passes through log what they send: the Elasticsearch and OpenSearch clients log
every request line at INFO (`GET /<index>/_doc/<the person's current placement>`) and, at DEBUG, whole request bodies
(the home's coordinates and needs); urllib3 and httpx log URLs. Their loggers are held at WARNING
whatever REHABMAP_LOG_LEVEL says (`TRANSPORT_LOGGERS`), so what they still say is about failures only.

FastAPI's own OpenTelemetry spans, metrics and logs are off in every app (`FRAMEWORK_TELEMETRY`): once a
process has an OpenTelemetry provider (an agent, an SDK set up by a library), FastAPI would record each
request's spans and validation failures with their messages, which quote the input. With them off it also
no longer asks for the providers on every request (~15 µs of CPU a request; bench/RESULTS.md, "POST /match,
eighth pass, the framework"). The Prometheus metrics (`api.metrics`) are the operator's numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fastapi.telemetry import TelemetryConfig
from starlette.routing import Mount
from starlette.types import Scope

log = logging.getLogger("rehabmap.access")
FRAMEWORK_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
TRANSPORT_LOGGERS = ("elastic_transport", "elasticsearch", "opensearch", "opensearchpy", "urllib3", "httpx",
                     "httpcore")


def configure_logging(level: str) -> None:
    """The server's logging: `level` (REHABMAP_LOG_LEVEL) for rehabmap and uvicorn; only warnings and
    errors from the transport libraries, whatever `level` is.

    The line shows the time, level, logger and message, nothing else a record carries; so a record is not
    asked to find its caller's file and line or its thread's and process's names (logging's documented
    switches, "Optimization" in the logging HOWTO): ~25 µs of CPU an access line in a request, a third of
    its cost (bench/RESULTS.md, "POST /match, eighth pass, the framework")."""
    handler = logging.StreamHandler()  # to stderr, as basicConfig's own
    handler.setFormatter(SecondFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    if handler in logging.getLogger().handlers:  # not when the process had its logging set up already
        logging._srcfile = None  # no findCaller: funcName and lineno are not in the line
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for name in TRANSPORT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class SecondFormatter(logging.Formatter):
    """`logging.Formatter` that makes the date and time of a second once, not once a record (`time.strftime`
    of `localtime`, ~10 µs of CPU an access line in a request): the same text, a record's milliseconds
    added as the default format adds them. Called under its handler's lock, as every formatter is."""

    _second: int | None = None
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt is not None or self.datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:  # a local time's offset changes only on a whole second
            self._stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return self.default_msec_format % (self._stamp, record.msecs) if self.default_msec_format else self._stamp


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
