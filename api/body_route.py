"""A route whose usual request is answered without FastAPI's per-request machinery, for `POST /match`.

FastAPI's request handler does, for every request, what a route with one JSON body and the `Request` needs
only once: it looks up telemetry, builds an error context from the endpoint's source, parses the
content type with `email.message`, solves the dependencies (a `Response` made, path, query, header and
cookie parameters read) and runs the endpoint through a generic caller: ~70–90 µs of CPU a request
beyond the body's parsing (bench/RESULTS.md, "POST /match, eighth pass, the framework"). `JsonBodyRoute`
(FastAPI's documented `route_class` hook) answers a body sent as `application/json` that parses and validates
exactly as FastAPI would parse and validate it (`json.loads`, then the model's validation in Python mode,
`from_attributes` as FastAPI asks) by calling the endpoint itself. Anything else (another content type, an
empty body, JSON that does not parse, a body the model refuses) goes to FastAPI's own handler, on the same
`Request` (its body read once), so every 4xx reply is FastAPI's, byte for byte. The route is otherwise an
`APIRoute`: its OpenAPI operation and its exception handlers are FastAPI's.

The body is parsed by pydantic-core's `from_json`, ~20k instructions a request fewer than `json.loads`
(bench/RESULTS.md, session 29): every body `from_json` accepts, `json.loads` accepts as the same value
(tests/api/test_body_parse.py: every code point in a string, raw and escaped; every short number and
structure); what it refuses and `json.loads` would not (a lone surrogate escape, a byte order mark, UTF-16,
nesting past 200) goes to FastAPI's handler, as any body that does not parse. Its cache of strings is off,
so no string of a body (a postcode, needs) is held once the request is answered.

`serve_first` puts such a route ahead of the app's route table as well: FastAPI finds a route by trying
each one in turn (the docs' four, then each included router's, each with its own scope bookkeeping), ~60 µs
of CPU a request before `/match` was reached; the first route tried costs one regex.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, request_response
from pydantic import BaseModel
from pydantic_core import from_json
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.security import replayed

_JSON = b"application/json"


class JsonBodyRoute(APIRoute):
    """For an `async def` endpoint taking one pydantic model as its JSON body and the `Request`, with no
    dependencies and returning a `Response` (for a route added with dependencies, FastAPI's handler alone)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        general = super().get_route_handler()
        lean = self.lean_handler()
        if lean is None:
            return general

        async def handler(request: Request) -> Response:
            try:
                raw = await request.body()
            except ClientDisconnect:  # FastAPI's handler answers it, as it always has
                return await general(request)
            response = await lean(request, raw)
            return response if response is not None else await general(request)

        return handler

    def lean_handler(self) -> Callable[[Request, bytes], Coroutine[Any, Any, Response | None]] | None:
        """The endpoint's reply to a usual request with its body read (`raw`), or None for FastAPI's handler
        to answer; None if the endpoint is not of this kind."""
        dependant = self.dependant
        model = _json_body_model(dependant)
        if model is None:
            return None
        validate = model.model_validate
        endpoint = dependant.call
        body_name, request_name = dependant.body_params[0].name, dependant.request_param_name
        assert endpoint is not None and request_name is not None

        async def lean(request: Request, raw: bytes) -> Response | None:
            content_type = next((value for name, value in request.scope["headers"] if name == b"content-type"), None)
            if content_type != _JSON:
                return None
            try:
                body = validate(from_json(raw, cache_strings=False), from_attributes=True) if raw else None
            except Exception:  # noqa: BLE001 - FastAPI's handler answers it, as it always has
                return None
            if body is None:
                return None
            response: Response = await endpoint(**{body_name: body, request_name: request})
            return response

        return lean


def _json_body_model(dependant: Dependant) -> type[BaseModel] | None:
    """The model of the endpoint's one body parameter, if the endpoint needs nothing else solved but the
    `Request` and is a coroutine; else None."""
    if (len(dependant.body_params) != 1 or dependant.request_param_name is None or dependant.dependencies
            or dependant.path_params or dependant.query_params or dependant.header_params
            or dependant.cookie_params or dependant.response_param_name or dependant.background_tasks_param_name
            or dependant.http_connection_param_name or dependant.security_scopes_param_name
            or not inspect.iscoroutinefunction(dependant.call)):
        return None
    model = dependant.body_params[0].field_info.annotation
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


class _First(Route):
    """`route`'s requests, answered by `route`'s endpoint directly when its lean handler can (unless `FirstRoutes`
    tried it already), else by FastAPI's own handler under FastAPI's request wrapper (two exit stacks and an
    exception wrapper, ~20 µs of CPU a request; an exception raised by the endpoint is answered by the app's
    ExceptionMiddleware with the same handlers). Left out of the OpenAPI document (`route` is in it). The
    scope's route is `route`, as FastAPI sets it: the access line and the metrics name its template; a wrong
    method is refused with the same 405 and Allow."""

    def __init__(self, route: JsonBodyRoute) -> None:
        super().__init__(route.path, route.endpoint, methods=route.methods, name=route.name, include_in_schema=False)
        self.route = route
        self.lean = lean = route.lean_handler()
        fastapi_app = request_response(APIRoute.get_route_handler(route))  # FastAPI's own: lean was tried

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            raw = await _whole_body(receive)
            if raw is None:  # FastAPI's handler answers a client gone (a 400), as FastAPI's own route does
                await fastapi_app(scope, _gone, send)
                return
            if lean is not None and _LEAN_TRIED not in scope:
                response = await lean(Request(scope, replayed(raw, receive), send), raw)
                if response is not None:
                    await response(scope, receive, send)
                    return
            await fastapi_app(scope, replayed(raw, receive), send)

        self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self.route
        return match, child_scope


_LEAN_TRIED = "rehabmap.lean_tried"  # in the scope of a request `FirstRoutes` handed down: not to parse it again


class FirstRoutes:
    """The app's innermost middleware (`serve_first`): a request to a route served first that its lean handler
    answers is answered here, above FastAPI's ExceptionMiddleware, its exit stack (for uploaded files, which a
    JSON body has none of) and the route table: ~10–20 µs of CPU a request (bench/RESULTS.md, "POST /match,
    ninth pass, the framework"). An exception the endpoint raises is answered by the app's own
    ExceptionMiddleware, with the handlers FastAPI gave it, as if it had been raised below it. Every other
    request, and a body the lean handler leaves, goes down the stack as before (its body replayed, not parsed
    again), so every 4xx and 405 is FastAPI's. Only the request's route, endpoint and path parameters are set
    in its scope, as the route table sets them (not `router`, which `url_for` reads: the lean path has no use
    for it)."""

    def __init__(self, app: ASGIApp, routes: list[_First]) -> None:
        self.app = app
        # Above an ExceptionMiddleware only (FastAPI puts one below the app's own middleware): else every request
        # goes down, and `_First` tries the lean handler itself.
        self.exceptions = app if isinstance(app, ExceptionMiddleware) else None
        self.routes = [route for route in routes if route.lean is not None] if self.exceptions is not None else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for first in self.routes:
                match, child_scope = first.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    await self._serve(first, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, first: _First, scope: Scope, receive: Receive, send: Send) -> None:
        assert first.lean is not None
        raw = await _whole_body(receive)
        if raw is not None:
            try:
                response = await first.lean(Request(scope, replayed(raw, receive), send), raw)
            except Exception as exc:  # noqa: BLE001 - answered by the app's handlers, or raised on as they raise it
                await self._answer_raised(exc, scope, replayed(raw, receive), send)
                return
            if response is not None:
                await response(scope, receive, send)
                return
        scope[_LEAN_TRIED] = True  # down the stack, where the first route has FastAPI's handler answer it
        await self.app(scope, _gone if raw is None else replayed(raw, receive), send)

    async def _answer_raised(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """What the app's ExceptionMiddleware makes of `exc` (the reply its handler makes, or `exc` raised on
        when it has none): the same middleware, over an app that raises it."""

        async def raise_it(scope: Scope, receive: Receive, send: Send) -> None:
            raise exc

        assert self.exceptions is not None
        answer = copy.copy(self.exceptions)
        answer.app = raise_it
        await answer(scope, receive, send)


async def _whole_body(receive: Receive) -> bytes | None:
    """The request's body as `Request.body` reads it, without its async generator (~2.5 µs of CPU a request
    less: bench/RESULTS.md, "POST /match, ninth pass, the framework"); None if the client went away."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return None


async def _gone() -> Message:
    """`receive` of a request whose client went away: FastAPI's handler answers it (a 400)."""
    return {"type": "http.disconnect"}


def serve_first(app: FastAPI, router: APIRouter) -> None:
    """Each `JsonBodyRoute` of `router` (included in `app` as it is, without dependencies of its own) tried
    first of all `app`'s routes, and its usual requests answered just above FastAPI's exception and exit-stack
    middleware (`FirstRoutes`: the innermost of `app`'s own middleware, whatever is added before or after)."""
    if app.middleware_stack is not None:  # as `add_middleware` refuses
        raise RuntimeError("Cannot add middleware after an application has started")
    first = [_First(route) for route in router.routes if isinstance(route, JsonBodyRoute)]
    app.router.routes[:0] = first
    app.user_middleware.append(Middleware(FirstRoutes, routes=first))  # `add_middleware` puts it outermost
