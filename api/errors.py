"""Errors a person can cause (the domain's and geodata's) and bad requests become precise 4xx JSON replies, here and
only here; never a stack trace."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geodata.errors import GeodataError
from rehabmap.errors import DomainError, Remedy, for_operator, tell_operator, with_remedy
from rehabmap.record import id_in_path

log = logging.getLogger("rehabmap.api")


# geodata knows nothing of HTTP: the status of each of its errors is decided here (any other is a 400).
GEODATA_STATUS: dict[str, int] = {"unknown_postcode": 404, "terminated_postcode": 404, "unknown_place": 404,
                                  "unknown_area": 404, "geodata_not_built": 503}


# What an API client can do about an error (`rehabmap.errors.Remedy`): a route to call, or who must act, never a
# command. The tokens and the review queue are not the API's, so their errors never reach it; a record the queue holds
# back does, and no route decides it: its page in the queue is named by the record's id (the error's `subject`), written
# in the path as the pages' links write it (`id_in_path`).
REMEDIES = {Remedy.ORGANISATIONS: "GET /maintain/organisations lists them; POST /maintain/organisations adds one.",
            Remedy.TOKEN_KEY: "Nothing is wrong with the request or the token: the server's operator must restore the "
                              "key file or make a new key.",
            Remedy.REVIEW_DECISION: "The API has no route to decide it: a maintainer accepts or rejects it on its page "
                                    "in the keepers' review queue, /keepers/review/{subject}.",
            Remedy.KEPT_TABLE: "Nothing is wrong with the request: the server's operator must restore the file from "
                               "its backup, or a maintainer can upload the whole table again on the keepers' upload "
                               "page, /keepers/upload, which replaces it.",
            Remedy.EDIT_KEPT: "The edit is kept in the directory's edits: do not make it again. Once the search index "
                              "is fixed, a rebuild of it or the server's next start writes it.",
            Remedy.SERVICE_KEPT: "The new service is kept in the directory's edits as '{subject}': do not send this "
                                 "POST again, which would add a second service. GET /maintain/services/{subject} reads "
                                 "it; once the search index is fixed, a change of it (a PATCH, or POST "
                                 "/maintain/services/{subject}/verify) writes it, as a rebuild of the index or the "
                                 "server's next start does."}


class TaxonomyNotFound(DomainError):
    """An ORUK taxonomy or term id that rehabmap does not publish."""

    status = 404
    code = "taxonomy_not_found"


def _path(loc: tuple[int | str, ...], dropped: tuple[str, ...]) -> str:
    """Where in the request a validation error is, as the request names it: a union's branch that pydantic
    tried ('list[constrained-str]', "literal['any']") is no field of it, and no field name has a '['."""
    return ".".join(str(p) for p in loc if p not in dropped and "[" not in str(p))


_SEND_JSON = "Send a JSON object, with Content-Type: application/json."


def _whole_body_problem(error: Mapping[str, Any]) -> str | None:
    """What is wrong with a request body as a whole, in words a caller can act on: pydantic's own name no field
    and nothing to do ('0: JSON decode error' on field '0', a bare 'Field required'); None for a field's error."""
    loc = tuple(error["loc"])
    if error["type"] == "json_invalid":
        return (f"The request body is not valid JSON: {error.get('ctx', {}).get('error', 'it does not parse')} "
                f"at character {loc[-1]}. {_SEND_JSON}")
    if loc == ("body",):
        if error["type"] == "value_error":  # a rule of the whole body, in its own words ("send at least one field
            said = str(error["msg"]).removeprefix("Value error, ")  # to change"): it read "not a JSON object"
            return f"{said[:1].upper()}{said[1:]}."
        return ("The request has no body. " if error["type"] == "missing" else "The request body is not a JSON "
                "object, or was not sent as JSON. ") + _SEND_JSON
    return None


def _body(status: int, code: str, message: str, field: str | None = None,
          headers: Mapping[str, str] | None = None, places: list[str] | None = None,
          service_id: str | None = None) -> JSONResponse:
    """`service_id`: the new service an error kept (`Remedy.SERVICE_KEPT`), for a script to change rather than make
    again."""
    error: dict[str, str | list[str]] = {"code": code, "message": message}
    if field:
        error["field"] = field
    if places:
        error["places"] = places
    if service_id:
        error["service_id"] = service_id
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _internal_error() -> JSONResponse:
    return _body(500, "internal_error", "Something went wrong on our side. Please try again.")


def _log_unexpected(exc: BaseException) -> None:
    """The exception's type and where it was raised, never its message: a message can quote the input
    (a postcode, a need), and the log must not hold that. A domain error about a file of the server's (its
    `where` set: an index SQLite cannot read, met part way through a streamed export) says what and where, for
    the operator to act on: such a message names the file and quotes nothing of a request."""
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    where = " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))
    if isinstance(exc, DomainError) and exc.where:
        log.error("unexpected error: %s at %s: %s", type(exc).__name__, where or "?", for_operator(exc))
    else:
        log.error("unexpected error: %s at %s", type(exc).__name__, where or "?")


class ResponseCutOff(Exception):
    """A reply that had started (a streamed export) could not be finished. Raised to the server, which then
    drops the connection without the end of the body: the client sees the transfer fail, instead of a
    truncated file that looks whole. Its message says nothing of the request."""

    def __init__(self) -> None:
        super().__init__("the reply was cut off part way by the error logged just before")


class CatchAllMiddleware:
    """Turns an unexpected exception into the JSON 500 inside the app, so it never reaches the server,
    which would log its traceback with the exception's message. Once a reply has started there is no
    status left to send: the exception becomes `ResponseCutOff`, so that the middleware above cannot end
    the reply as if it were whole."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            await answer_unexpected(exc, started, scope, receive, send)


async def answer_unexpected(exc: Exception, started: bool, scope: Scope, receive: Receive, send: Send) -> None:
    """The catch-all's answer to `exc`, raised by the app: its type and place logged, then the JSON 500, or
    `ResponseCutOff` if the reply had `started`. Called in the `except` block that caught `exc`."""
    # Raised in a streamed body, a domain error (the index out of reach) arrives wrapped by Starlette,
    # which could no longer answer it; name it rather than the wrapper.
    _log_unexpected(next((e for e in _chain(exc) if isinstance(e, DomainError)), exc))
    if started:
        raise ResponseCutOff() from None
    await _internal_error()(scope, receive, send)


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def install(app: FastAPI, *, catch_all: bool = True) -> None:
    """The handlers, and the catch-all (innermost of the app's middleware: add others after this). An app
    served inside `api.request_layer`, which catches there, leaves out its own (`catch_all=False`)."""
    if catch_all:
        app.add_middleware(CatchAllMiddleware)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        tell_operator(exc)
        return _body(exc.status, exc.code, with_remedy(exc, REMEDIES, id_in_path), exc.field,
                     getattr(exc, "headers", None),
                     service_id=exc.subject if exc.remedy is Remedy.SERVICE_KEPT else None)

    @app.exception_handler(GeodataError)
    async def geodata_error(_: Request, exc: GeodataError) -> JSONResponse:
        tell_operator(exc)
        return _body(GEODATA_STATUS.get(exc.code, 400), exc.code, exc.message, exc.field, places=exc.offered)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        if whole := next(filter(None, map(_whole_body_problem, exc.errors())), None):
            return _body(422, "invalid_request", whole)
        problems: dict[str, list[str]] = {}  # a value that fits no branch of a union has an error for each
        for e in exc.errors():
            problems.setdefault(_path(e["loc"], ("body",)), []).append(e["msg"])
        message = "; ".join(f"{where}: {', or '.join(said)}" if where else ", or ".join(said)
                            for where, said in problems.items())
        first = exc.errors()[0]["loc"] if exc.errors() else ()
        return _body(422, "invalid_request", message, _path(first, ("body", "query", "path")) or None)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _body(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, ResponseCutOff):  # logged already, where it happened
            _log_unexpected(exc)
        return _internal_error()
