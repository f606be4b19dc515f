"""Abuse resistance, as three small ASGI middlewares around the whole app (the /oruk mount included):

* `RateLimit`: a token bucket per client IP address (`api.rate_limits`: in memory, or shared by every host
  through the PostgreSQL store): up to `rate_limit_per_minute` requests in a burst, refilled at that many
  a minute; past it, 429 with `Retry-After`. /health and the page
  assets under /static are not counted. The client is the connection's address; behind a reverse
  proxy, let uvicorn take it from X-Forwarded-For (it trusts FORWARDED_ALLOW_IPS, 127.0.0.1 by
  default), or every caller shares the proxy's bucket. Addresses are never logged and are forgotten
  once their bucket is full again (a minute of quiet).
* `BodyLimit`: a request body over `max_body_bytes` (64 KiB) is refused with 413 before the app reads it.
* `SecurityHeaders`: nosniff, no referrer, no framing, and a Content-Security-Policy that allows nothing
  on API replies (the web pages set their own, and keep it); /maintain replies are never cached.

Each reply made here has the API's JSON error shape.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if "content-security-policy" not in headers:
                    kind = headers.get("content-type", "")
                    headers["Content-Security-Policy"] = (
                        DOCS_CSP if path in DOCS_PATHS else SVG_CSP if kind.startswith("image/svg") else API_CSP)
                if path.startswith("/maintain"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimit:
    """Token bucket per client address (`api.rate_limits`: in this process, or shared through the store);
    `per_minute` 0 turns it off."""

    def __init__(self, app: ASGIApp, per_minute: int, buckets: Buckets | None = None, clock=time.monotonic) -> None:
        self.app = app
        self.on = per_minute > 0
        self.buckets = buckets if buckets is not None else MemoryBuckets(per_minute, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.on or scope["path"].startswith(UNCOUNTED):
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        take = self.buckets.take
        wait = await run_in_threadpool(take, client) if self.buckets.does_io else take(client)
        if wait is None:
            await self.app(scope, receive, send)
            return
        headers = {"Retry-After": str(wait)}
        if scope["path"].startswith("/oruk"):
            headers["Access-Control-Allow-Origin"] = "*"  # an open ORUK feed: even its 429 is readable
        await _error(429, "rate_limited", f"Too many requests from your address. Try again in {wait} s.",
                     headers)(scope, receive, send)


class BodyLimit:
    """Reads the body (at most `max_bytes`) before the app does; more is a 413 and the app never runs."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = f"{self.max_bytes // 1024} KiB" if self.max_bytes % 1024 == 0 else f"{self.max_bytes} bytes"
        await _error(413, "request_too_large", f"The request body is larger than {limit}; send less.",
                     {"Connection": "close"})(scope, receive, send)


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


def install(app: FastAPI, *, per_minute: int, max_body_bytes: int, buckets: Buckets | None = None) -> None:
    """Outermost of the app's middleware: add after everything else. `buckets`: the rate limit's counters,
    by default in this process."""
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(RateLimit, per_minute=per_minute, buckets=buckets)
    app.add_middleware(SecurityHeaders)
    document(app)
