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
from typing import TextIO

from fastapi.telemetry import TelemetryConfig
from starlette.routing import Mount
from starlette.types import Scope

log = logging.getLogger("rehabmap.access")
FRAMEWORK_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
TRANSPORT_LOGGERS = ("elastic_transport", "elasticsearch", "opensearch", "opensearchpy", "urllib3", "httpx",
                     "httpcore")
_own: logging.StreamHandler[TextIO] | None = None  # the handler `configure_logging` installed, if it did


def configure_logging(level: str) -> None:
    """The server's logging: `level` (REHABMAP_LOG_LEVEL) for rehabmap and uvicorn; only warnings and
    errors from the transport libraries, whatever `level` is.

    The line shows the time, level, logger and message, nothing else a record carries; so a record is not
    asked to find its caller's file and line or its thread's and process's names (logging's documented
    switches, "Optimization" in the logging HOWTO): ~25 µs of CPU an access line in a request, a third of
    its cost (bench/RESULTS.md, "POST /match, eighth pass, the framework")."""
    global _own
    handler = logging.StreamHandler()  # to stderr, as basicConfig's own
    handler.setFormatter(SecondFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    if handler in logging.getLogger().handlers:  # not when the process had its logging set up already
        logging._srcfile = None  # no findCaller: funcName and lineno are not in the line
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        _own = handler
    for name in TRANSPORT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class SecondFormatter(logging.Formatter):
    """`logging.Formatter` that makes the date and time of a second once, not once a record (`time.strftime`
    of `localtime`, ~10 µs of CPU an access line in a request): the same text, a record's milliseconds
    added as the default format adds them. Safe from several threads without its handler's lock (the access
    line's own path, `_write_own`, calls `stamp` outside it)."""

    _second: tuple[int, str] = (-1, "")  # one tuple, swapped whole: a thread reads a second and its text together

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt is not None or self.datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.stamp(record.created, record.msecs)

    def stamp(self, created: float, msecs: float) -> str:
        """The `asctime` of a record made at `created` (`time.time()`) with `msecs` (as `LogRecord` has it)."""
        second = self._second
        if second[0] != int(created):  # a local time's offset changes only on a whole second
            second = self._second = (int(created), time.strftime(self.default_time_format, self.converter(created)))
        return self.default_msec_format % (second[1], msecs) if self.default_msec_format else second[1]


_LINE = "%s %s %s %.1fms"  # method, route template, status, milliseconds
# The whole line as FORMAT lays it out, the access line's message in its place: date and time, level name, logger
# name, then `_LINE`'s facts, made in one formatting, not the message's and then a dictionary's (~6k instructions).
_OWN_LINE = FORMAT % {"asctime": "%s", "levelname": "%s", "name": "%s", "message": _LINE}
Observer = Callable[[str, str, int, float], None]  # method, route template, status, seconds


def log_request(scope: Scope, status: int, seconds: float, observe: Observer | None) -> None:
    """The request's line, written when its reply starts (`api.request_layer`), and the same facts handed to
    `observe` (the metrics)."""
    route = scope.get("route")
    # Under a mounted app (/oruk) the route is the sub-app's, and root_path holds the mount point.
    template = None if isinstance(route, Mount) else getattr(route, "path_format", None)
    path = scope.get("root_path", "") + template if template else "unmatched"
    method = scope["method"]
    if log.isEnabledFor(logging.INFO):
        args = (method, path, status, seconds * 1000)
        if _own is None or not _write_own(_own, args):
            log.info(_LINE, *args)
    if observe is not None:
        observe(method, path, status, seconds)


def _write_own(handler: logging.StreamHandler[TextIO], args: tuple[object, ...]) -> bool:
    """The access line written straight to the handler `configure_logging` installed, when no one else would
    see its record: no other handler, filter or record factory on the way, no one's own formatter or level.
    The same text, written and flushed under the handler's lock as `StreamHandler.emit` writes it, so each
    line is handed to the operating system before the reply starts (a worker killed after it loses none).
    False (nothing written) when the record has somewhere else to go: `logging` then makes and handles it.

    The record, its dictionary of attributes, the handler chain and `Formatter.format` were ~40% of a line's
    CPU that has nowhere else to go (bench/RESULTS.md, "POST /match, ninth pass, the framework")."""
    logger: logging.Logger | None = log
    while logger is not None:  # the loggers the record would pass; only the root has a handler, ours
        handlers = logger.handlers
        ours = len(handlers) == 1 and handlers[0] is handler  # `handlers == [handler]`, without making the list
        if logger.filters or (handlers and not ours) or (logger.parent is None) != ours:
            return False
        if not logger.propagate:
            return logger.parent is None
        logger = logger.parent
    formatter = handler.formatter
    if (handler.filters or handler.level > logging.INFO or type(formatter) is not SecondFormatter
            or formatter._fmt != FORMAT or formatter.datefmt is not None
            or logging.getLogRecordFactory() is not logging.LogRecord):
        return False
    created = time.time()
    line = _OWN_LINE % (formatter.stamp(created, int((created - int(created)) * 1000) + 0.0),
                        logging.getLevelName(logging.INFO), log.name, *args)
    with handler.lock:  # type: ignore[union-attr]
        try:
            stream = handler.stream
            stream.write(line + handler.terminator)
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - reported as logging reports a handler's failure
            handler.handleError(log.makeRecord(log.name, logging.INFO, "(unknown file)", 0, _LINE, args, None))
    return True
