"""Open CORS for the public Open Referral UK API only.

ORUK compliance asks every response of an open feed to carry `Access-Control-Allow-Origin: *`, with or
without an Origin header, so browser apps anywhere can read it. The clinicians' POST /match is not an
open feed and never gets the header: this middleware is installed on the /oruk sub-application alone.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = "GET, HEAD, OPTIONS"


class OpenCorsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in request_headers:
            preflight = Response(status_code=204, headers={
                "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": request_headers.get("access-control-request-headers", "*"),
                "Access-Control-Max-Age": "86400"})
            await preflight(scope, receive, send)
            return

        async def send_open(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Access-Control-Allow-Origin"] = "*"
            await send(message)

        await self.app(scope, receive, send_open)
