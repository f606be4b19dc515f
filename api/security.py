"""Abuse resistance, checked by the one request layer around the whole app (`api.request_layer`; the /oruk
mount included):

* The rate limit (`Limits.refusal`): a token bucket per client IP address (`api.rate_limits`: in memory, or
  shared by every host through the PostgreSQL store): up to `rate_limit_per_minute` requests in a burst,
  refilled at that many a minute; past it, 429 with `Retry-After`. /health and the page
  assets under /static are not counted. The client is the connection's address; behind a reverse
  proxy, let uvicorn take it from X-Forwarded-For (it trusts FORWARDED_ALLOW_IPS, 127.0.0.1 by
  default), or every caller shares the proxy's bucket. Addresses are never logged and are forgotten
  once their bucket is full again (a minute of quiet).
* The body limit (`Limits.read_body`): a request body over `max_body_bytes` (64 KiB) is refused with 413
  before the app reads it.
* The security headers (`add_headers`): nosniff, no referrer, no framing, and a Content-Security-Policy that
  allows nothing on API replies (the web pages set their own, and keep it); /maintain replies are never cached.

Each reply made here has the API's JSON error shape.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive, Scope

from api.rate_limits import Buckets, MemoryBuckets

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# An SVG map opened on its own draws with its inline styles; nothing else.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
# FastAPI's interactive docs load Swagger UI / ReDoc from their CDN and start them with an inline script.
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
            "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'")
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect", "/oruk/docs", "/oruk/redoc",
                        "/oruk/docs/oauth2-redirect"})
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
UNCOUNTED = ("/health", "/static/")
# The same headers as ASGI pairs, made once (a reply's header names are lower case, as Starlette sends them).
_RAW_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in HEADERS.items()]
_RAW_NAMES = frozenset(name for name, _ in _RAW_HEADERS)
_RAW_CSP = {csp: csp.encode("latin-1") for csp in (API_CSP, SVG_CSP, DOCS_CSP)}
_BODILESS = ("GET", "HEAD", "OPTIONS")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def add_headers(message: Message, path: str) -> None:
    """The security headers on a reply's `http.response.start` to `path`: each one the app did not set
    itself, the Content-Security-Policy by what the reply is, and no caching under /maintain. Works on the
    raw pairs, as `MutableHeaders.setdefault` would, without making a header object per reply."""
    raw = message["headers"] = list(message["headers"])
    # Each name's first value, made without a Python loop (a set, a generator and `next`: the function took
    # ~1.7× this CPU warm); a reply the app gave none of the three, the usual one, gets them all at once.
    present = dict(reversed(raw))
    if present.keys().isdisjoint(_RAW_NAMES):
        raw.extend(_RAW_HEADERS)
    else:
        raw.extend(pair for pair in _RAW_HEADERS if pair[0] not in present)
    if b"content-security-policy" not in present:
        kind = present.get(b"content-type", b"")
        csp = DOCS_CSP if path in DOCS_PATHS else SVG_CSP if kind.startswith(b"image/svg") else API_CSP
        raw.append((b"content-security-policy", _RAW_CSP[csp]))
    if path.startswith("/maintain"):
        MutableHeaders(raw=raw)["Cache-Control"] = "no-store"


def replayed(body: bytes, receive: Receive) -> Receive:
    """`receive` for a reader of a request whose `body` was read already: the body, then `receive` again."""
    done = False

    async def replay() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class Limits:
    """The rate limit (`per_minute` 0 turns it off; `buckets`: its counters, by default in this process)
    and the body limit, asked before the app runs."""

    def __init__(self, per_minute: int, max_body_bytes: int, buckets: Buckets | None = None,
                 clock=time.monotonic) -> None:
        self.rate_limited = per_minute > 0
        self.buckets = buckets if buckets is not None else MemoryBuckets(per_minute, clock)
        self.max_bytes = max_body_bytes

    async def refusal(self, scope: Scope) -> Response | None:
        """The 429 for a client past its rate, else None (a token spent)."""
        if not self.rate_limited or scope["path"].startswith(UNCOUNTED):
            return None
        client = scope["client"][0] if scope.get("client") else "unknown"
        take = self.buckets.take
        wait = await run_in_threadpool(take, client) if self.buckets.does_io else take(client)
        if wait is None:
            return None
        headers = {"Retry-After": str(wait)}
        if scope["path"].startswith("/oruk"):
            headers["Access-Control-Allow-Origin"] = "*"  # an open ORUK feed: even its 429 is readable
        return _error(429, "rate_limited", f"Too many requests from your address. Try again in {wait} s.", headers)

    async def read_body(self, scope: Scope, receive: Receive) -> Receive | Response | None:
        """Reads the body (at most `max_body_bytes`) before the app does: a `receive` that hands the app the
        body read, or the 413 for more (the app never runs), or None if the client went away. A request
        without a body (GET, HEAD, OPTIONS) keeps its own `receive`."""
        if scope["method"] in _BODILESS:
            return receive
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return self._too_large()
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return self._too_large()
            chunks.append(chunk)
            more = message.get("more_body", False)
        return replayed(b"".join(chunks), receive)

    def _too_large(self) -> Response:
        limit = f"{self.max_bytes // 1024} KiB" if self.max_bytes % 1024 == 0 else f"{self.max_bytes} bytes"
        return _error(413, "request_too_large", f"The request body is larger than {limit}; send less.",
                      {"Connection": "close"})


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
_ERROR_BODY = {"application/json": {"schema": {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}}


def document(app: FastAPI) -> None:
    """Add the replies these middlewares make (429 everywhere counted, 413 where there is a body) to every
    operation of the app's OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                if not path.startswith(UNCOUNTED):
                    responses.setdefault("429", {"description": "Too many requests from this address: wait "
                                                 "Retry-After seconds.", "headers": _RETRY_AFTER,
                                                 "content": _ERROR_BODY})
                if "requestBody" in operation:
                    responses.setdefault("413", {"description": "The request body is too large.",
                                                 "content": _ERROR_BODY})
        app.openapi_schema = schema
        return schema

    # FastAPI's documented way to extend the schema is to replace app.openapi, which it types as a method.
    app.openapi = openapi  # type: ignore[method-assign]
