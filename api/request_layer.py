"""The one ASGI layer every request to the app passes, outermost of the app's own middleware: the rate limit
and the body limit before the app runs (`api.security.Limits`), then one `send` wrapper that, when the reply
starts, adds the security headers (`api.security.add_headers`) and writes the privacy-safe request line and
metrics (`api.logging.log_request`), and the catch-all around the app (`api.errors.answer_unexpected`).

These were five middlewares, each wrapping `send` again; as one they cost a request less (bench/RESULTS.md,
"POST /match, fourth pass") and keep the order they had: a 429 or 413 gets the security headers but no log
line; a 500 made here is logged as one. A plain ASGI layer, not Starlette's BaseHTTPMiddleware, which ends a
streamed reply cleanly even when the app fails part way through it and would turn a broken export into a
truncated file that looks whole (see `api.errors.ResponseCutOff`).
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import security
from api.errors import answer_unexpected
from api.logging import Observer, log_request
from api.rate_limits import Buckets


class RequestLayer:
    def __init__(self, app: ASGIApp, limits: security.Limits, observe: Observer | None = None) -> None:
        self.app = app
        self.limits = limits
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        refusal = await self.limits.refusal(scope)
        if refusal is not None:
            await self._refuse(refusal, scope, receive, send)
            return
        read = await self.limits.read_body(scope, receive)
        if read is None:  # the client went away
            return
        if isinstance(read, Response):
            await self._refuse(read, scope, receive, send)
            return
        observe = self.observe
        began = time.perf_counter()
        started = False

        async def send_reply(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                log_request(scope, message["status"], time.perf_counter() - began, observe)
                security.add_headers(message, path)
            await send(message)

        try:
            await self.app(scope, read, send_reply)
        except Exception as exc:
            await answer_unexpected(exc, started, scope, read, send_reply)

    @staticmethod
    async def _refuse(reply: Response, scope: Scope, receive: Receive, send: Send) -> None:
        """A limit's own reply: with the security headers, not logged (as before the layers were one)."""
        path = scope["path"]

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                security.add_headers(message, path)
            await send(message)

        await reply(scope, receive, send_secured)


def install(app: FastAPI, *, per_minute: int, max_body_bytes: int, observe: Observer | None = None,
            buckets: Buckets | None = None) -> None:
    """Outermost of the app's middleware: add after everything else; the app's own catch-all is left out
    (`api.errors.install(app, catch_all=False)`). `buckets`: the rate limit's counters, by default in this
    process; `observe`: the metrics, handed each request's method, route template, status and time."""
    app.add_middleware(RequestLayer, limits=security.Limits(per_minute, max_body_bytes, buckets), observe=observe)
    security.document(app)
