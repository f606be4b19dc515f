"""`api.body_route.JsonBodyRoute` answers exactly as FastAPI's own route does: the same status, headers and
body for a body it parses itself and for every body it hands to FastAPI (other content types, JSON that
does not parse, bodies the model refuses), and the same OpenAPI document; and so does the route when it is
tried first of the app's routes (`serve_first`), with the same route in the scope and the same 405."""

from __future__ import annotations

import json

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from api import body_route, errors
from api.body_route import JsonBodyRoute, serve_first
from api.schemas import MatchIn
from rehabmap.errors import ServiceNotFound

VALID = {"home": {"postcode": "LS9 7TF"}, "needs": ["autism"], "types": ["inpatient_rehab_level2"], "age": 30,
         "max_distance_km": 100, "current_placement": {"service_id": "sample:x"}}
JSON = "application/json"
CASES: dict[str, tuple[str | None, bytes]] = {
    "valid": (JSON, json.dumps(VALID).encode()),
    "valid, an int for a float": (JSON, b'{"home": {"lat": 53, "lon": -1}, "max_distance_km": 5}'),
    "valid, a key twice": (JSON, b'{"home": {"postcode": "E3"}, "limit": 2, "limit": 3}'),
    "valid, charset named": ("application/json; charset=utf-8", json.dumps(VALID).encode()),
    "valid, a +json type": ("application/vnd.api+json", json.dumps(VALID).encode()),
    "the domain refuses it": (JSON, b'{"home": {"postcode": "E3"}, "current_placement": {"service_id": "gone"}}'),
    "strict: a string for an int": (JSON, b'{"home": {"postcode": "E3"}, "age": "30"}'),
    "strict: a string for a bool": (JSON, b'{"home": {"postcode": "E3"}, "own_icb_only": "true"}'),
    "out of range": (JSON, b'{"home": {"postcode": "E3"}, "limit": 0}'),
    "an extra field": (JSON, b'{"home": {"postcode": "E3"}, "radius": 3}'),
    "a model rule": (JSON, b'{"home": {"postcode": "E3", "place": "Bow"}}'),
    "not an object": (JSON, b'["home"]'),
    "null": (JSON, b"null"),
    "NaN": (JSON, b'{"home": {"lat": NaN, "lon": 0}}'),
    "JSON cut short": (JSON, b'{"home": {"postcode": "E3"'),
    "not UTF-8": (JSON, b'{"home": {"postcode": "\xff"}}'),
    "UTF-8 with a byte order mark": (JSON, b"\xef\xbb\xbf" + json.dumps(VALID).encode()),
    "UTF-16": (JSON, json.dumps(VALID).encode("utf-16")),
    "nested past the recursion limit": (JSON, b"[" * 100_000 + b"]" * 100_000),
    # Left by `from_json` to FastAPI's handler, which reads them with `json.loads` (tests/api/test_body_parse.py).
    "a lone surrogate escape": (JSON, b'{"home": {"postcode": "E3"}, "needs": ["\\ud800"]}'),
    "nested past from_json's limit": (JSON, b'{"home": {"postcode": "E3"}, "x": ' + b"[" * 300 + b"]" * 300
                                             + b"}"),
    "empty": (JSON, b""),
    "no content type": (None, json.dumps(VALID).encode()),
    "form content type": ("application/x-www-form-urlencoded", b"home=E3"),
    "text content type": ("text/plain", json.dumps(VALID).encode()),
}


SCOPE_KEYS = ("route", "endpoint", "path_params", "starlette.exception_handlers", "fastapi_middleware_astack")
seen: list[dict[str, bool]] = []  # which of SCOPE_KEYS each request's endpoint found in its scope


def _app(route_class: type[APIRoute], first: bool = False) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    router, other = APIRouter(route_class=route_class), APIRouter()

    @other.get("/other")
    async def get_other() -> dict[str, str]:
        return {}

    @router.post("/match", response_model=dict)
    async def post_match(body: MatchIn, request: Request) -> Response:
        if body.current_placement is not None and body.current_placement.service_id == "gone":
            raise ServiceNotFound("No service with id 'gone'.", field="current_placement.service_id")
        if body.current_placement is not None and body.current_placement.service_id == "boom":
            raise RuntimeError("a defect")  # no handler: raised on to the server
        seen.append({key: key in request.scope for key in SCOPE_KEYS})
        route = request.scope["route"]  # what the access line and the metrics read
        return Response(f"{request.method} {route.path_format} {isinstance(route, APIRoute)} {body.model_dump_json()}",
                        media_type="application/json")

    app.include_router(other)
    app.include_router(router)
    if first:
        serve_first(app, router)
    return app


@pytest.fixture(scope="module")
def clients():
    with TestClient(_app(APIRoute)) as fastapi_route, TestClient(_app(JsonBodyRoute)) as lean_route, \
            TestClient(_app(JsonBodyRoute, first=True)) as first_route:
        yield fastapi_route, lean_route, first_route


def _same_replies(clients, method: str, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
    fastapi_reply, *replies = (client.request(method, "/match", content=body, headers=headers or {})
                               for client in clients)
    for reply in replies:
        assert (reply.status_code, reply.headers.raw, reply.content) == \
            (fastapi_reply.status_code, fastapi_reply.headers.raw, fastapi_reply.content)


@pytest.mark.parametrize("case", CASES)
def test_replies_are_fastapis_byte_for_byte(clients, case: str) -> None:
    content_type, body = CASES[case]
    _same_replies(clients, "POST", body, {"content-type": content_type} if content_type else {})


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "OPTIONS"])
def test_another_method_is_refused_as_fastapi_refuses_it(clients, method: str) -> None:
    _same_replies(clients, method)
    assert clients[2].request(method, "/match").headers["allow"] == "POST"


def test_the_cases_reach_every_branch(clients) -> None:
    """The cases above are worth comparing: some are answered, some refused by the model, some by FastAPI's
    reading of the body, and one by the domain's own error."""
    statuses = {case: clients[0].post("/match", content=body, headers={"content-type": kind} if kind else {})
                .status_code for case, (kind, body) in CASES.items()}
    assert statuses["valid"] == statuses["valid, a key twice"] == statuses["valid, a +json type"] == 200
    assert statuses["the domain refuses it"] == 404
    assert statuses["strict: a string for an int"] == statuses["NaN"] == statuses["empty"] == 422
    assert statuses["form content type"] == statuses["JSON cut short"] == 422
    assert statuses["nested past the recursion limit"] == 400
    assert statuses["a lone surrogate escape"] == statuses["nested past from_json's limit"] == 422


def test_the_openapi_document_is_fastapis(clients) -> None:
    assert clients[1].get("/openapi.json").content == clients[2].get("/openapi.json").content == \
        clients[0].get("/openapi.json").content


def test_the_first_route_is_the_one_tried_first(clients) -> None:
    first = clients[2].app.router.routes[0]
    assert isinstance(first.route, JsonBodyRoute) and first.path == "/match" and not first.include_in_schema


def test_a_usual_body_is_answered_above_fastapis_exception_middleware(clients) -> None:
    """`FirstRoutes`: the route's scope as the route table sets it, but neither the exception handlers nor the
    exit stack of the two middlewares it skips; FastAPI's own route has both."""
    seen.clear()
    for client in clients[0], clients[2]:
        assert client.post("/match", json=VALID).status_code == 200
    assert seen == [dict.fromkeys(SCOPE_KEYS, True), {**dict.fromkeys(SCOPE_KEYS, True),
                                                      "starlette.exception_handlers": False,
                                                      "fastapi_middleware_astack": False}]


def test_a_body_the_lean_handler_leaves_is_parsed_once_more_only(clients, monkeypatch) -> None:
    """Handed down the stack by `FirstRoutes`, a body the model refuses is not tried again by the first route:
    parsed once by the lean handler and once by FastAPI's."""
    parsed = []
    loads, from_json = json.loads, body_route.from_json
    monkeypatch.setattr(json, "loads", lambda *args, **kwargs: parsed.append("FastAPI") or loads(*args, **kwargs))
    monkeypatch.setattr(body_route, "from_json",
                        lambda *args, **kwargs: parsed.append("lean") or from_json(*args, **kwargs))
    reply = clients[2].post("/match", content=CASES["strict: a string for an int"][1], headers={"content-type": JSON})
    assert reply.status_code == 422 and parsed == ["lean", "FastAPI"]


def test_an_error_without_a_handler_is_answered_as_fastapi_answers_it(clients) -> None:
    """Raised on past the app's exception handlers to its catch-all (`api.errors`), as from FastAPI's route."""
    body = json.dumps({**VALID, "current_placement": {"service_id": "boom"}}).encode()
    _same_replies(clients, "POST", body, {"content-type": JSON})
    assert clients[2].post("/match", content=body, headers={"content-type": JSON}).status_code == 500


async def _asgi_post(app: FastAPI, messages: list[dict]) -> tuple[object, ...]:
    """`POST /match` to `app` as raw ASGI with the body in `messages` (as a server hands it on): the reply's
    status, headers and body, or the type of what was raised."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/match", "raw_path": b"/match", "query_string": b"", "root_path": "", "state": {},
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    pending, sent = list(messages), []

    async def receive() -> dict:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    except Exception as exc:  # noqa: BLE001 - compared with what FastAPI's route raises
        return (type(exc).__name__,)
    return tuple((m.get("status"), m.get("headers"), m.get("body")) for m in sent)


@pytest.mark.parametrize("messages", [
    [{"type": "http.request", "body": part, "more_body": more} for part, more in
     ((json.dumps(VALID).encode()[:9], True), (b"", True), (json.dumps(VALID).encode()[9:], False))],
    [{"type": "http.request", "body": b'{"home": ', "more_body": True}, {"type": "http.disconnect"}],
    [{"type": "http.disconnect"}],
], ids=["in three parts", "gone part way", "gone before the body"])
def test_a_body_in_parts_or_a_client_gone_is_read_as_fastapi_reads_it(clients, messages) -> None:
    import asyncio

    fastapi_reply = asyncio.run(_asgi_post(clients[0].app, messages))
    for client in clients[1:]:
        assert asyncio.run(_asgi_post(client.app, messages)) == fastapi_reply
