"""/maintain: the maintainers' and providers' API. Every route needs a bearer token (see rehabmap.maintain.auth).

Routes only read the request, ask `rehabmap.maintain.edits.Editor` or the directory store, and shape the reply;
who may do what is decided there. Replies are never cached, and no CORS header is ever sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from api.deps import AppState, State, state_of
from api.exports import attachment
from api.maintain_schemas import (
    AreaDueOut,
    AuditEntryOut,
    AuditOut,
    DueListOut,
    DueOut,
    EditOut,
    GenderIn,
    HsdsAuditOut,
    HsdsMetadataOut,
    KeptOut,
    LinkIn,
    MeOut,
    NeedIn,
    OrganisationIn,
    OrganisationOut,
    QuestionedListOut,
    QuestionedOut,
    QuestionOut,
    RetireIn,
    ServiceHeldOut,
    ServiceIn,
    ServicePatchIn,
)
from api.paging import PageNumber
from api.routes.services import held_item
from api.schemas import ServiceOut, error_responses
from indexer.sources.curated import TABLES
from indexer.upload import kept_table
from rehabmap.errors import DirectoryUnavailable, ServiceNotFound, UnknownOrganisation
from rehabmap.maintain.audit import hsds_rows
from rehabmap.maintain.auth import Principal, Role, Rule
from rehabmap.maintain.edits import CREATE, KEEP, MAINTAINER_ROLES, RETIRE, STATE, Editor, version_of
from rehabmap.maintain.freshness import areas_due, due_for_verification
from rehabmap.maintain.history import audit_page
from rehabmap.maintain.organisations import Organisation
from rehabmap.maintain.retirement import retirement
from rehabmap.maintain.store import Directory
from rehabmap.record import Service

_SECURITY = HTTPBearer(auto_error=False, scheme_name="token",
                       description="A rehabmap API token: 'Authorization: Bearer rmk_<id>_<secret>'. "
                                   "Made with 'rehabmap tokens create'.")
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}}


def _doc(description: str, code: str, message: str, headers: dict[str, Any] | None = None) -> dict:
    entry: dict[str, Any] = {"description": description, "content": {"application/json": {
        "schema": _ERROR, "example": {"error": {"code": code, "message": message}}}}}
    if headers:
        entry["headers"] = headers
    return entry


RESPONSES: dict[int | str, dict[str, Any]] = {
    **error_responses(400, 404, 422, 503),
    401: _doc("No token, or not a valid one.", "unauthenticated",
              "This needs an API token: send 'Authorization: Bearer <token>'.",
              {"WWW-Authenticate": {"description": "Bearer, with the error.", "schema": {"type": "string"}}}),
    403: _doc("The token's role or organisation does not allow this.", "forbidden",
              "Service 'cqc:1-123' is not linked to your organisation (Mind in Leeds); a provider may change "
              "only its own services."),
}
router = APIRouter(prefix="/maintain", tags=["maintain"], responses=RESPONSES)


_UNAVAILABLE = "The maintainers' directory store is not open on this server: is REHABMAP_HOME writable?"


def _directory(state: AppState) -> Directory:
    if state.directory is None:
        raise DirectoryUnavailable(_UNAVAILABLE)
    return state.directory


def _owned(state: AppState, caller: Principal) -> list[str] | None:
    """The services a provider token's organisation owns; None for the other roles, which may see every one."""
    if caller.role is not Role.provider:
        return None
    assert caller.organisation_id is not None  # a provider token always has one (a CHECK on the tokens table)
    return _directory(state).organisations.owned_by(caller.organisation_id)


def _editor(state: AppState) -> Editor:
    if state.editor is None:
        raise DirectoryUnavailable(_UNAVAILABLE)
    return state.editor


def principal(request: Request, state: State,
              _: Annotated[HTTPAuthorizationCredentials | None, Depends(_SECURITY)] = None) -> Principal:
    """The caller, from the bearer token; 401 (with WWW-Authenticate) when there is none or it is invalid.
    (The security scheme is declared for the OpenAPI document; the header is read here, whatever it holds.)"""
    return _directory(state).tokens.authenticate(request.headers.get("authorization"))


Caller = Annotated[Principal, Depends(principal)]


def _may(rule: Rule) -> Any:
    """The route's role rule as a dependency, which FastAPI solves before it checks the path, query and body: a
    caller who may not do the thing is told so (403) before what is wrong with what it sent (422)."""
    def may(caller: Caller) -> None:
        rule.require(caller)
    return Depends(may)


# The paths of a service's actions after its id: one list, read by the id's convertor (below) and the routes.
_NEED, _GENDER, _RETIRE, _VERIFY, _KEEP = "/needs/{need}", "/gender", "/retire", "/verify", "/edits/{field}/keep"
_ACTIONS = (_NEED, _GENDER, _RETIRE, _VERIFY, _KEEP)
_SERVICE = "/services/{service_id:service_id}"


class _ServiceIdConvertor(Convertor[str]):
    """A service's id in a path: any text (an id may hold '/'), but never ending in the words of one of its
    actions (`_ACTIONS`: a route added there is one the id never swallows), so an action
    asked with another method is the 405 it is, with its Allow header: before, `GET …/verify` fell to the route of
    the service itself, which read '…/verify' as an id ('No service with id', 404)."""

    regex = "(?:(?!(?:" + "|".join(re.sub(r"\{[^}]+\}", "[^/]+", tail) for tail in _ACTIONS) + ")$).)+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("service_id", _ServiceIdConvertor())
ServiceId = Annotated[str, Path(max_length=300, description="rehabmap id, e.g. sample:leeds-recovery-college",
                                openapi_examples={"sample": {"value": "sample:leeds-recovery-college"}})]


IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=500, description=(
    "The version (ETag) of the record this change was made from (GET /maintain/services/{id}, or an edit's "
    "reply): if the record has changed since, nothing is written (412). A PATCH of needs_met, needs_not_met or "
    "gender, which replaces the whole lists, must send it (without it: 428); '*' says any version."))]
_STALE: dict[int | str, dict[str, Any]] = {412: _doc(
    "The record changed since the version in If-Match; nothing was written.", "precondition_failed",
    "'cqc:1-123' has changed since you read it (a maintainer's edit or a sync), so this change was not made: … "
    "GET /maintain/services/cqc:1-123 for the record as it is now and its ETag …")}
_VERSIONED: dict[int | str, dict[str, Any]] = {**_STALE, 428: _doc(
    "A change of needs_met, needs_not_met or gender sent without If-Match; nothing was written.",
    "precondition_required", "A change of needs_met must say which version of 'cqc:1-123' it was made from, … GET "
    "/maintain/services/cqc:1-123 for the record and its version (also its ETag), make your change to that, and "
    "send it with the header If-Match: \"<version>\". …")}


def _held(state: AppState, service: Service, response: Response, today: date) -> ServiceHeldOut:
    """The service with when and why it was retired when it is (as GET /services/{id} says), its version (also the
    ETag header), and whether the index holds it (a new service kept, which it lacks, is `listed` false), as of
    `today`: the day the request read once (`AppState.days`), as the write it answers stamped by the same reading
    (before, read again here: a verify at midnight answered its own stamp as a day old)."""
    out = ServiceOut.of(service, today, verify_after_days=state.settings.verify_after_days)
    version = version_of(service)
    response.headers["ETag"] = f'"{version}"'
    return ServiceHeldOut(service=out.retired(retirement(state.directory, service)), version=version,
                          listed=not _editor(state).unlisted(service.id))


def _edit(state: AppState, result: tuple[Service, list[str]], response: Response, today: date | None = None
          ) -> EditOut:
    """The service as written (`_held`, as of `today`, else the day now) and the fields the request changed."""
    service, changed = result
    held = _held(state, service, response, today or state.today())
    return EditOut(service=held.service, version=held.version, listed=held.listed, changed=changed)


@contextmanager
def _unshown_explained(request: Request, service_id: str, field: str = "service_id") -> Iterator[None]:
    """A synced record the index does not hold, because it awaits review or a maintainer rejected it, is not
    'no service': the 404 says which (the review queue the composition root opens), and where a maintainer decides
    it (`Remedy.REVIEW_DECISION`: no route of the API does)."""
    try:
        yield
    except ServiceNotFound:
        item = held_item(request, service_id)
        # the source as a person reads it: "Care Quality Commission (CQC)", never "cqc"
        held = item.held(state_of(request).source_title(item.source), field=field) if item is not None else None
        if held is None:
            raise
        raise held from None


@router.get("/me", response_model=MeOut, summary="Who this token is")
def me(caller: Caller, state: State) -> MeOut:
    """The token's label, role, organisation and expiry; for a provider, the services it may change."""
    services = _owned(state, caller)
    return MeOut(token_id=caller.token_id, name=caller.name, role=caller.role.value,
                 organisation=caller.organisation, services=services, expires_at=caller.expires_at)


@router.post("/services", response_model=EditOut, status_code=201, summary="Add a service",
             responses={409: _doc("A service with that id exists.", "service_exists",
                                  "There is already a service with id 'directory:x'.")}, dependencies=[_may(CREATE)])
def create_service(body: ServiceIn, caller: Caller, state: State, response: Response) -> EditOut:
    """Maintainers and admins. The new service is live at once, audited field by field, and kept through
    every re-import. Its areas come from its point; its capacity date defaults to today. Where the search index
    refuses or fails its write, a 503 whose `service_id` names the service kept: change that one (PATCH, or POST
    .../verify), which writes it once the index answers; the POST sent again would add a second service."""
    stamp, today = state.days()
    return _edit(state, _editor(state).create(caller, body.given(), stamp), response, today)


@router.put(_SERVICE + _NEED, response_model=EditOut, responses=_STALE,
            summary="State one need of a service", dependencies=[_may(STATE)])
def state_need(service_id: ServiceId, need: Annotated[str, Path(max_length=60, description=(
                   "The need's code (as in needs_met), or language:<ISO 639 code>; not a gender need: PUT "
                   ".../gender."), openapi_examples={"autism": {"value": "autism"}})],
               body: NeedIn, caller: Caller, state: State, request: Request, response: Response,
               if_match: IfMatch = None) -> EditOut:
    """Maintainers and admins: the service takes people with the need, does not, or says nothing of it, laid
    over the record as it is when the change is made, so two maintainers (or a maintainer and a sync) stating
    two needs at once both count, as two PATCHes of the whole lists would not. Audited as an edit of the
    stated lists; confirms a need read from its listing."""
    with _unshown_explained(request, service_id):
        return _edit(state, _editor(state).state_need(caller, service_id, need, body.takes, if_match=if_match),
                     response)


@router.put(_SERVICE + _GENDER, response_model=EditOut, responses=_STALE,
            summary="State whom a service takes", dependencies=[_may(STATE)])
def state_gender(service_id: ServiceId, body: GenderIn, caller: Caller, state: State, request: Request,
                 response: Response, if_match: IfMatch = None) -> EditOut:
    """Maintainers and admins: men only, women only, women and men, or not stated; the three gender needs follow
    from it and nothing else changes. Confirms or corrects the gender read from its listing (a guess that never
    leaves a person out): stated, a match leaves out a single-gender service for the other gender."""
    with _unshown_explained(request, service_id):
        return _edit(state, _editor(state).state_gender(caller, service_id, body.gender, if_match=if_match),
                     response)


@router.get(_SERVICE, response_model=ServiceHeldOut, summary="A service and its version")
def service(service_id: ServiceId, caller: Caller, state: State, request: Request,
            response: Response) -> ServiceHeldOut:
    """The service as the live index holds it (a new service the index has not taken yet as the directory's edits
    keep it, `listed` false), and its version (also the ETag header) to send in If-Match with a change made from
    it. Maintainers and admins, or a provider for its own services."""
    with _unshown_explained(request, service_id):
        return _held(state, _editor(state).editable(caller, service_id), response, state.today())


async def _may_change(request: Request, service_id: ServiceId, caller: Caller, state: State) -> None:
    """The caller may change the fields the body names (`Editor.authorise_update`), asked before the body's values
    are checked (FastAPI solves a route's dependencies before its body): a provider sending a field it may not
    change is told so (403), not what is wrong with the value. Names that are no field, and a body that is no JSON
    object, are left to the body's own 422."""
    try:
        body = await request.json()
    except ValueError:
        return
    if isinstance(body, dict):
        named = body.keys() & ServicePatchIn.model_fields.keys()
        await run_in_threadpool(_editor(state).authorise_update, caller, service_id, named)


@router.patch(_SERVICE, response_model=EditOut, responses=_VERSIONED,
              summary="Change a service", dependencies=[Depends(_may_change)])
def update_service(service_id: ServiceId, body: ServicePatchIn, caller: Caller, state: State, request: Request,
                   response: Response, if_match: IfMatch = None) -> EditOut:
    """Maintainers and admins may change any field shown; a provider only capacity, accepting referrals
    and contact details, of its own organisation's services. The result must be a valid service record,
    or nothing is written (422 naming the field). Each changed field is audited; the change is live at
    once and survives re-imports. needs_met, needs_not_met and gender replace the whole lists: send If-Match with
    the version they were read at (without it, a 428; a change since, a 412), or state one need with PUT
    .../needs/{need}. Given without gender, they follow the import's rule: a gender need met states the gender
    (needs_met ["female_only"] is women only), and lists that contradict the gender are a 422 naming both
    fields."""
    with _unshown_explained(request, service_id):
        stamp, today = state.days()
        return _edit(state, _editor(state).update(caller, service_id, body.given(), stamp, if_match=if_match),
                     response, today)


@router.post(_SERVICE + _RETIRE, response_model=EditOut, summary="Retire a service",
             dependencies=[_may(RETIRE)])
def retire_service(service_id: ServiceId, caller: Caller, state: State, request: Request, response: Response,
                   body: Annotated[RetireIn | None, Body()] = None) -> EditOut:  # None: an older client, told
    """Maintainers and admins, saying why (`reason`, required since 2026-12: a request without it is refused,
    400, naming the field): the service becomes inactive and leaves every search; its page and the answer's
    `retired_reason` give the reason. It stays in the index (and the audit log), and PATCH with status
    'active' brings it back."""
    with _unshown_explained(request, service_id):
        return _edit(state, _editor(state).retire(caller, service_id, body.reason if body else None), response)


@router.post(_SERVICE + _VERIFY, response_model=EditOut,
             summary="Mark a service verified today")
def verify_service(service_id: ServiceId, caller: Caller, state: State, request: Request,
                   response: Response) -> EditOut:
    """Stamps `last_verified` with today's date (audited). Maintainers and admins, or a provider for its
    own services."""
    with _unshown_explained(request, service_id):
        stamp, today = state.days()
        return _edit(state, _editor(state).verify(caller, service_id, stamp), response, today)


@router.get("/questioned", response_model=QuestionedListOut, summary="Edits a source has since changed",
            dependencies=[_may(Rule("list the edits a source has questioned", MAINTAINER_ROLES))])
def questioned(
    state: State,
    limit: Annotated[int, Query(ge=1, le=500, description="Services at most.")] = 100,
) -> QuestionedListOut:
    """Maintainers and admins: each service with a field a maintainer's edit keeps while its source now gives
    another value (a sync said so: its report's "edited here, changed by the source"), the latest first. Each
    stays listed until a maintainer keeps the edit or changes the field."""
    overlay = _directory(state).overlay
    results = []
    for service_id, questions in overlay.open_questions_of(overlay.questioned_services(limit=limit)).items():
        service = state.backend.get(service_id)
        results.append(QuestionedOut(
            id=service_id, name=service.name if service else None, status=service.status if service else None,
            questions=[QuestionOut(field=q.field, edit=q.old, source_value=q.new, since=q.at, by=q.actor,
                                   audit_id=q.id) for q in questions]))
    return QuestionedListOut(results=results)


FieldName = Annotated[str, Path(max_length=64, pattern=r"^[a-z_]+$", description="The field, as in ServiceOut.",
                                openapi_examples={"phone": {"value": "phone"}})]


@router.post(_SERVICE + _KEEP, response_model=KeptOut,
             summary="Keep an edit a source has since changed", dependencies=[_may(KEEP)])
def keep_edit(service_id: ServiceId, field: FieldName, caller: Caller, state: State) -> KeptOut:
    """Maintainers and admins: the maintainer's edit of the field stays shown over the source's new value, and
    saying so is audited (`keep`), which closes the question (GET /maintain/questioned). Nothing shown changes.
    404 when no source has questioned that field."""
    return KeptOut(id=service_id, kept=_editor(state).keep_edits(caller, service_id, [field]))


@router.get("/verification-due", response_model=DueListOut, summary="Services due for verification")
def verification_due(
    caller: Caller, state: State,
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=500, description="Results per page.")] = 100,
) -> DueListOut:
    """Active services never verified, or not verified for `verify_after_days` (REHABMAP_VERIFY_AFTER_DAYS),
    the longest overdue first; and (`areas_due`, not paged) the areas a curated table covers on a check as old.
    A provider sees its own services only, and no areas."""
    days = state.settings.verify_after_days
    owned = _owned(state, caller)
    services: Iterable[Service]
    if owned is not None:
        services = [s for s in (state.backend.get(i) for i in owned) if s is not None]
    else:
        services = state.backend.all()
    today = state.today()
    due = due_for_verification(services, today, days)
    chosen = due[(page - 1) * per_page:page * per_page]
    areas = [] if owned is not None else areas_due(state.coverage().claims, today, days)
    return DueListOut(verify_after_days=days, total=len(due), results=[
        DueOut(id=d.service.id, name=d.service.name, service_type=d.service.service_type.value,
               organisation=d.service.organisation, last_verified=d.service.last_verified,
               days_since_verified=d.days_since) for d in chosen], areas_due=[
        AreaDueOut(area_code=a.claim.area_code, area_name=state.area_name(a.claim.area_code),
                   category=a.claim.category, table=a.table, verified_on=a.verified_on,
                   verified_by=a.claim.verified_by, days_since_verified=a.days_since) for a in areas])


@router.get("/audit", response_model=AuditOut | HsdsAuditOut, summary="The audit log (admins)",
            dependencies=[_may(Rule("read the audit log", (Role.admin,)))])
def audit(
    state: State,
    service_id: Annotated[str | None, Query(max_length=300, description="Only this service's history: its changes, "
                                            "and the uploads that took it out of the directory.")] = None,
    after_id: Annotated[int, Query(ge=0, le=2**62, description="Entries after this id (the previous page's "
                                                                 "next_after_id).")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Entries per page.")] = 100,
    format: Annotated[Literal["native", "hsds"], Query(description="'hsds': HSDS 3.0 metadata rows (changes to "
                                                                    "services only).")] = "native",
) -> AuditOut | HsdsAuditOut:
    """Every change, oldest first: when, who (the token's label and id), what, the old and new value. The
    log is append-only; it records changes to the directory, never anything about a search."""
    entries, total = audit_page(_directory(state).audit, service_id, after_id=after_id, limit=limit,
                                services_only=format == "hsds")
    next_after = entries[-1].id if entries and len(entries) == limit else None
    if format == "hsds":
        return HsdsAuditOut(total=total, next_after_id=next_after,
                            contents=[HsdsMetadataOut(**row) for row in hsds_rows(entries)])
    return AuditOut(total=total, next_after_id=next_after, entries=[AuditEntryOut(**vars(e)) for e in entries])


TableName = Annotated[str, Path(max_length=100, description="The table's file name: " + ", ".join(
    t.file_name for t in TABLES) + ".", openapi_examples={"ips": {"value": TABLES[0].file_name}})]


@router.get("/curated-tables/{file_name}", response_class=Response, summary="Download a kept curated table",
            responses={200: {"description": "The table as it was last added through the upload page, byte for byte "
                             "(its Content-Type names the encoding it was written in); a download, saved under the "
                             "table's name.",
                             "content": {"text/csv": {"schema": {"type": "string"},
                                                      "example": ",".join(TABLES[0].columns) + "\n…"}}},
                       404: _doc("No curated table has that name (unknown_table, naming the tables), or none of its "
                                 "kind has been uploaded here yet (table_not_kept).",
                                 "table_not_kept", "No ips_services.csv table has been uploaded here yet, so there is "
                                 "none to download: …"),
                       503: _doc("The kept table cannot be read as text: changed on the server's disk since it was "
                                 "added. The server's log names the file; restoring it, or uploading the whole table "
                                 "again, mends it.", "table_unreadable",
                                 "The ips_services.csv table kept here cannot be read: the file is binary, not text "
                                 "(it holds NUL bytes). …")},
            dependencies=[_may(Rule("download curated tables", MAINTAINER_ROLES))])
def curated_table(file_name: TableName, state: State) -> Response:
    """Maintainers and admins: the curated table of this kind the directory holds. An upload replaces it whole, so
    a new table must hold every row that stays: start from this one; uploaded again unchanged, it takes nothing out.
    A table given to `rehabmap index` on the server is read beside it, and is not this download."""
    table = kept_table(state.settings.home, file_name)
    return Response(table.data, media_type=f"text/csv; charset={table.charset}",
                    headers=attachment(table.spec.file_name))


def _organisation_out(org: Organisation) -> OrganisationOut:
    return OrganisationOut(id=org.id, name=org.name, created_at=org.created_at, service_ids=org.service_ids)


@router.get("/organisations", response_model=list[OrganisationOut], summary="Organisations and their services",
            dependencies=[_may(Rule("list organisations", MAINTAINER_ROLES))])
def organisations(state: State) -> list[OrganisationOut]:
    """Maintainers and admins: every organisation and the services linked to it (a provider token of the
    organisation may change those)."""
    return [_organisation_out(o) for o in _directory(state).organisations.all()]


def _known(request: Request, state: AppState, service_ids: list[str]) -> None:
    """Each service is in the index, or made here and kept (`Editor.record`); one held for review is a 404 saying so
    (`_unshown_explained`)."""
    for service_id in service_ids:
        with _unshown_explained(request, service_id, field="service_ids"):
            if _editor(state).record(service_id) is None:
                raise ServiceNotFound(f"No service with id '{service_id[:80]}'.", field="service_ids")


@router.post("/organisations", response_model=OrganisationOut, status_code=201, summary="Add an organisation",
             dependencies=[_may(Rule("add organisations", (Role.admin,)))])
def add_organisation(body: OrganisationIn, caller: Caller, state: State, request: Request) -> OrganisationOut:
    """Admins: a provider organisation, optionally with the services it runs."""
    _known(request, state, body.service_ids)
    directory = _directory(state)
    org = directory.organisations.add(body.name, actor=caller.who)
    if body.service_ids:
        org = directory.organisations.link(org, body.service_ids, actor=caller.who)
    return _organisation_out(org)


OrganisationId = Annotated[int, Path(ge=1, le=2**62, description="The organisation's id.")]


def _organisation(state: AppState, organisation_id: int) -> Organisation:
    """The organisation the path names, read once for the route (its change takes it as read): one that is not there
    is a 404 naming the path's parameter, organisation_id, as the API names every input it refuses (the store names
    its own argument, 'organisation', a name or an id, which no request to the API has)."""
    try:
        return _directory(state).organisations.get(organisation_id)
    except UnknownOrganisation as error:
        raise UnknownOrganisation(error.message, field="organisation_id", remedy=error.remedy) from None


@router.post("/organisations/{organisation_id}/services", response_model=OrganisationOut,
             summary="Link services to an organisation",
             dependencies=[_may(Rule("link services to organisations", (Role.admin,)))])
def link_services(organisation_id: OrganisationId, body: LinkIn, caller: Caller, state: State,
                  request: Request) -> OrganisationOut:
    """Admins: the organisation becomes the owner of these services (each service has one owner)."""
    organisation = _organisation(state, organisation_id)
    _known(request, state, body.service_ids)
    return _organisation_out(_directory(state).organisations.link(organisation, body.service_ids, actor=caller.who))


@router.delete("/organisations/{organisation_id}/services/{service_id:path}", response_model=OrganisationOut,
               summary="Unlink a service from an organisation",
               dependencies=[_may(Rule("unlink services from organisations", (Role.admin,)))])
def unlink_service(organisation_id: OrganisationId, service_id: ServiceId, caller: Caller,
                   state: State) -> OrganisationOut:
    """Admins: the organisation's provider tokens may no longer change this service. A service it does not own
    (another organisation does, or none) is a 404 `not_linked` naming its owner, and nothing is unlinked."""
    organisation = _organisation(state, organisation_id)
    return _organisation_out(_directory(state).organisations.unlink(organisation, [service_id], actor=caller.who))
