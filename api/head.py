"""HEAD answered wherever GET is, with GET's status and headers and no body (RFC 9110 §9.3.2: a server
supporting GET should support HEAD). Monitoring tools and link checkers ask with HEAD; FastAPI's routes list
only the methods they are declared with, so every GET endpoint and page answered HEAD with 405.

One layer for the API, the ORUK feed and the pages, rather than HEAD added to each route's methods, which
would put a second operation with the same id beside every GET in both OpenAPI documents. The request is
routed and answered as the GET it asks about; the method is HEAD again before the reply starts, so the
request log, the metrics and the server (uvicorn drops a HEAD reply's body itself) see what was asked."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        scope["method"] = "GET"  # in place: the router's route, set on this scope, is what the request log names

        async def send_head(message: Message) -> None:
            scope["method"] = "HEAD"
            if message["type"] == "http.response.body":
                message = {"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)}
            await send(message)

        try:
            await self.app(scope, receive, send_head)
        finally:
            scope["method"] = "HEAD"
