"""Changing the directory: what maintainers and providers do, and how a rebuild keeps it.

A write (`Editor`):

1. checks the caller may make it (role, and for a provider, its organisation and the fields it may touch);
2. lays the change over the service as the live index holds it and validates the result as a `Service`
   (an edit the record refuses is a 422 naming the field, and nothing is written);
3. commits the audit rows and the overlay row in one transaction in the directory store (none for a change the
   overlay holds already: the same edit sent again after the index refused or failed it, `Editor._recorded`);
4. applies the service's whole overlay to the live index (`RecordWriter.upsert`), so readers see it; an edit that
   changes nothing the record shows applies it again where the directory holds edits of the service, which the index
   may not show yet (`Editor._laid_again`: sent again after the index refused or failed it).

Steps 2–4 run under the directory's index lock. If the process dies between 3 and 4, `Editor.reconcile`
(run when the API starts) lays every overlay entry the live index lacks; if it dies inside 3, nothing
was written. Laying an overlay entry twice gives the same record, so repeating is always safe.

A rebuild (`OverlayWriter`) lays the overlay over the freshly imported records as they stream into the
new index, adds the services made here, and takes the index lock before the new index goes live; edits
committed while it was building are then laid over the new index before the lock is released.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from geodata.errors import GeodataError
from rehabmap.errors import (DomainError, Forbidden, IndexNotBuilt, IndexRefused, IndexUnavailable, InvalidEdit,
                             PreconditionRequired, QuestionNotFound, Remedy, ServiceMerged, ServiceExists,
                             ServiceNotFound, StaleEdit)
from rehabmap.index.base import (IndexBackend, LiveWriter, Parts, PartWriter, RecordWriter, Revision, Stored,
                                 as_service, overlay_record, with_sources_word)
from rehabmap.index.names import OVERLAY_SOURCE
from rehabmap.maintain.audit import KEPT, Change, given_reason
from rehabmap.maintain.auth import PROVIDER_FIELDS, Principal, Role, Rule
from rehabmap.maintain.overlay import READ_FIELDS, OverlayEntry, log_unnoted
from rehabmap.maintain.readings import GENDERS, NEED_LISTS, stated_needs, with_gender
from rehabmap.maintain.store import Directory
from rehabmap.record import IMPORTED, TYPED, Provenance, Service, edit_context
from rehabmap.taxonomy import GENDER_NEEDS, parse_need

if TYPE_CHECKING:
    from geodata.areas import AreaCodes
    from geodata.postcodes import PostcodePoint

log = logging.getLogger(__name__)

# Fields kept by the system, never compared or laid by an edit (what rehabmap read among them: `READ_FIELDS`).
_BOOKKEEPING = frozenset({"provenance", "field_sources", "cqc_registered_needs", "source_needs_met", "source_gender",
                          *READ_FIELDS})
MAINTAINER_ROLES = (Role.admin, Role.maintainer)
ALL_ROLES = (Role.admin, Role.maintainer, Role.provider)
# The writes only maintainers and admins make: the Editor asks each, and the API asks it again before the body.
CREATE = Rule("create services", MAINTAINER_ROLES)
RETIRE = Rule("retire services", MAINTAINER_ROLES)
STATE = Rule("state whom a service takes", MAINTAINER_ROLES)
KEEP = Rule("keep edits over a source's changes", MAINTAINER_ROLES)
# What decides who a search lists, and is given whole: an update of any of them must name the version it was made
# from (If-Match), as two maintainers' whole lists (or genders) sent from one reading would each undo the other's.
# The other fields are one value each, where the last word is the one wanted (a phone, today's capacity).
VERSIONED_FIELDS = frozenset({*NEED_LISTS, "gender"})


class Postcodes(Protocol):
    def lookup(self, text: str) -> PostcodePoint: ...


class Geography(Protocol):
    """The slice of `geodata.Geography` an edit needs to place a service."""

    @property
    def postcodes(self) -> Postcodes: ...

    def locate(self, lat: float, lon: float, lad_code: str | None = None) -> AreaCodes: ...


def _field_of(message: str, loc: tuple[Any, ...]) -> str | None:
    if loc:
        return ".".join(str(p) for p in loc)
    named = [f for f in Service.model_fields if re.search(rf"\b{f}\b", message)]
    return named[0] if named else None


def validated(data: Mapping[str, Any], context: dict[str, Any] | None = None,
              current: Service | None = None) -> Service:
    """The record, or a 422 naming the first field it refuses. `context`: `Service`'s validation context; `current`:
    the record edited, whose catchment polygon, if the edit leaves it, is kept unchecked (`edit_context`)."""
    try:
        return Service.model_validate(dict(data), context={**(edit_context(current, context) or {}), TYPED: True})
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        field = _field_of(first["msg"], tuple(first["loc"]))
        # A rule's own words, without pydantic's "Value error, " before them: a maintainer reads this.
        problems = "; ".join(f"{_field_of(e['msg'], tuple(e['loc'])) or 'record'}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in errors)
        raise InvalidEdit(f"The service record refuses this edit: {problems}.", field=field) from None
    except DomainError as exc:
        raise InvalidEdit(exc.message, field=exc.field) from None


def _without_derived_gender_needs(data: dict[str, Any], current: Service, fields: Mapping[str, Any]) -> None:
    """The list not given loses the gender needs the current gender derived, which are not a word of their own:
    then the import's rule for needs lists given without a gender (`Service._consistent` under `IMPORTED`, which
    the caller validates with) holds for an edit too: gender needs stated give the gender (needs_met
    ["female_only"] is women only, as a feed's row is), and a list that contradicts the gender is refused (422
    naming gender and the list), never a gender cleared or a need left saying another."""
    if current.gender is not None:
        for name in NEED_LISTS.keys() - fields.keys():
            data[name] = [n for n in data[name] if n not in GENDER_NEEDS]


def check_needs(fields: Mapping[str, Any]) -> None:
    """An unknown need is a 422 naming the list it is in."""
    for key in ("needs_met", "needs_not_met"):
        for need in fields.get(key) or ():
            try:
                parse_need(need)
            except DomainError as exc:
                raise InvalidEdit(exc.message, field=key) from None


def changes_between(before: Service | None, after: Service) -> list[Change]:
    """Field by field, what differs (JSON values); for a new service, every field that is not empty."""
    new = after.model_dump(mode="json")
    if before is None:
        default = {"legacy_locked_label": False, "pd_specialist": False, "description": "", "needs_met": [],
                   "needs_not_met": [], "status": "active"}
        return [Change(f, None, v) for f, v in new.items()
                if f not in _BOOKKEEPING and f != "id" and v not in (None, {}, [], "") and default.get(f, ...) != v
                and not (f in ("areas", "service_area") and not any(v.values()))]
    old = before.model_dump(mode="json")
    return [Change(f, old.get(f), v) for f, v in new.items() if f not in _BOOKKEEPING and old.get(f) != v]


def version_of(service: Service) -> str:
    """The record's version, as the maintainers' API's ETag gives it: a digest of everything it holds, so any
    change (a maintainer's, a sync's) makes another. Exact, never a clock: two hosts agree on it."""
    return hashlib.blake2b(service.model_dump_json().encode(), digest_size=12).hexdigest()


def _versions(if_match: str) -> set[str]:
    """The versions an `If-Match` header names (RFC 9110: a list of quoted tags, maybe weak; `*` for any)."""
    return {tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")}


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:60] or "service"


class Editor:
    """The maintainers' writes, each audited, validated, and applied to the live index.

    `before_commit(stage)` is called inside each write's two transactions, just before they commit: stage
    'directory' (the audit and overlay rows), then 'index' (the live record). It does nothing unless set:
    the seam the crash tests use to stop a server inside a transaction (tests/maintain/pausing_server.py).
    `merged_into(service_id)`: the id of the record a synced record is shown merged into, or None (the composition
    root's, from the sync store: `indexer.sync.publish.merged_into`); without it, no record is taken as merged.
    """

    def __init__(self, directory: Directory, backend: IndexBackend, writer: RecordWriter, geography: Geography, *,
                 before_commit: Callable[[str], None] | None = None,
                 merged_into: Callable[[str], str | None] | None = None) -> None:
        self.directory = directory
        self.backend = backend
        self.writer = writer
        self.geography = geography
        self.before_commit: Callable[[str], None] = before_commit or (lambda _stage: None)
        self.merged_into: Callable[[str], str | None] = merged_into or (lambda _service_id: None)

    # --- the four writes ----------------------------------------------------------------------------

    def create(self, principal: Principal, fields: Mapping[str, Any], today: date) -> tuple[Service, list[str]]:
        """A new service, under the id given or one made from its name. Where the index refuses or fails its write,
        the error names the id it is kept under (`Remedy.SERVICE_KEPT`, its `subject`): the same create sent again
        without an id would make a second service, where a change of that id writes the one kept (`record`)."""
        CREATE.require(principal)
        check_needs(fields)
        data = dict(fields)
        service_id = data.pop("id", None) or f"{OVERLAY_SOURCE}:{_slug(data.get('name', ''))}-{uuid.uuid4().hex[:6]}"
        with self.directory.index_lock():
            if self.backend.get(service_id) is not None or self.directory.overlay.get(service_id) is not None:
                raise ServiceExists(f"There is already a service with id '{service_id}'. Leave id out to have "
                                    "a new one made, or change that one with PATCH.", field="id")
            data.setdefault("last_verified", today.isoformat())
            data = self._placed(data, data)
            data = self._capacity(data, data, today)
            data.update(id=service_id, provenance=[Provenance(
                source=OVERLAY_SOURCE, source_id=service_id.split(":", 1)[1],
                fetched_at=datetime.now(timezone.utc)).model_dump(mode="json")])
            return self._commit(principal, "create", None, validated(data))

    def update(self, principal: Principal, service_id: str, fields: Mapping[str, Any], today: date, *,
               if_match: str | None = None) -> tuple[Service, list[str]]:
        """`if_match`: the versions (`version_of`) the caller read the record at; another is a 412 and nothing is
        written (two whole needs lists sent from two readings would each undo the other's), and none with a
        `VERSIONED_FIELDS` field is a 428. A stated `gender` brings its needs (`readings.with_gender`)."""
        self.authorise_update(principal, service_id, fields)
        check_needs(fields)
        with self.directory.index_lock():
            current = self._current(principal, service_id, if_match,
                                    versioned=sorted(VERSIONED_FIELDS.intersection(fields)))
            data = current.model_dump(mode="json")
            data.update(fields)
            context = None
            if "gender" in fields:
                data = with_gender(data, fields["gender"])
            elif not fields.keys().isdisjoint(NEED_LISTS):
                _without_derived_gender_needs(data, current, fields)
                context = IMPORTED
            data = self._placed(data, fields)
            data = self._capacity(data, fields, today)
            return self._commit(principal, "update", current, validated(data, context, current))

    def authorise_update(self, principal: Principal, service_id: str, fields: Collection[str]) -> None:
        """Whether `principal` may change these fields of the service (403 if not): a provider only
        `PROVIDER_FIELDS`, of its own organisation's services. A face may ask before it checks the values, so a
        provider learns first that they may not change a field, not what is wrong with the value they gave it."""
        principal.require(*ALL_ROLES, action="change services")
        if principal.role is not Role.provider:
            return
        refused = sorted(set(fields) - PROVIDER_FIELDS)
        if refused:
            raise Forbidden(f"A provider token may change only {', '.join(sorted(PROVIDER_FIELDS))}; "
                            f"ask a maintainer to change {', '.join(refused)}.", field=refused[0])
        if self.record(service_id) is not None:  # else the write's own 404 says why there is none
            self._require_own(principal, service_id)

    def retire(self, principal: Principal, service_id: str, reason: str | None) -> tuple[Service, list[str]]:
        """The reason is the maintainer's, in their words: the service's page says it ("Taken off the list on …:
        <reason>"), as it says a source's, and the audit log keeps it beside the status (`retired_reason`)."""
        RETIRE.require(principal)
        why = given_reason(reason, where="it is shown on the service's page and kept in the audit log")
        with self.directory.index_lock():
            current = self._current(principal, service_id)
            return self._commit(principal, "retire", current,
                                validated({**current.model_dump(mode="json"), "status": "inactive"}, current=current),
                                noted=(Change("retired_reason", None, why),))

    def state_need(self, principal: Principal, service_id: str, need: str, takes: bool | None, *,
                   if_match: str | None = None) -> tuple[Service, list[str]]:
        """A maintainer's word on one need (`rehabmap.maintain.readings`): it takes people with it, it does not,
        or (None) it says nothing. Laid over the record as it is under the lock, so two maintainers confirming two
        needs at once both count, where two forms' whole lists would each undo the other's."""
        STATE.require(principal)
        try:
            need = parse_need(need)
        except DomainError as exc:
            raise InvalidEdit(exc.message, field="need") from None
        if need in GENDER_NEEDS:
            raise InvalidEdit(f"'{need}' follows from the service's gender: state the gender instead.", field="need")
        return self._state(principal, service_id, if_match, lambda current: {
            **current.model_dump(mode="json"), **stated_needs(current, {need: takes})})

    def state_gender(self, principal: Principal, service_id: str, gender: str | None, *,
                     if_match: str | None = None) -> tuple[Service, list[str]]:
        """A maintainer's word on whom the service takes: one of `readings.GENDERS`, or (None) not stated. It
        confirms or corrects a gender read from its listing, which it clears, as `state_need` does a need."""
        STATE.require(principal)
        if gender is not None and gender not in GENDERS:
            raise InvalidEdit(f"'{gender[:40]}' is not a gender a service takes: give one of {', '.join(GENDERS)}, "
                              "or none for not stated.", field="gender")
        return self._state(principal, service_id, if_match,
                           lambda current: with_gender(current.model_dump(mode="json"), gender))

    def _state(self, principal: Principal, service_id: str, if_match: str | None,
               statement: Callable[[Service], dict[str, Any]]) -> tuple[Service, list[str]]:
        """`statement` over the record as it is under the lock: the record's JSON with the maintainer's word (whose
        role its caller has checked, before the word itself)."""
        with self.directory.index_lock():
            current = self._current(principal, service_id, if_match)
            return self._save(principal, "update", current, statement(current))

    def verify(self, principal: Principal, service_id: str, today: date) -> tuple[Service, list[str]]:
        principal.require(*ALL_ROLES, action="verify services")
        with self.directory.index_lock():
            current = self._current(principal, service_id)
            return self._save(principal, "verify", current,
                              {**current.model_dump(mode="json"), "last_verified": today.isoformat()})

    def keep_edits(self, principal: Principal, service_id: str, fields: Collection[str] | None = None) -> list[str]:
        """The maintainer's answer to a source's changes of fields their edits keep (`Overlay.open_questions`):
        the edits stay, and saying so is audited (old: the source's value, new: the edit), which closes the
        questions. Nothing shown changes. Only `fields`' questions when given (one a source has not questioned
        is a 404: there is nothing to keep); returns the fields kept."""
        KEEP.require(principal)
        open_questions = [q for q in self.directory.overlay.open_questions(service_id)
                          if fields is None or q.field in fields]
        missing = sorted(set(fields or ()) - {q.field for q in open_questions})
        if missing:
            raise QuestionNotFound(f"No source has changed {', '.join(missing)} of '{service_id[:80]}' since a "
                                   "maintainer's edit, or the question was answered already: nothing to keep. "
                                   "GET /maintain/questioned lists the open ones.", field="field")
        if open_questions:
            self.directory.audit.record(principal.who, KEPT, "service", service_id,
                                        [Change(q.field, q.new, q.old) for q in open_questions])
        return [q.field for q in open_questions]

    def editable(self, principal: Principal, service_id: str) -> Service:
        """The service as the live index holds it (`record`), if `principal` may change it (a form shows it first)."""
        principal.require(*ALL_ROLES, action="change services")
        return self._current(principal, service_id)

    def record(self, service_id: str) -> Service | None:
        """The service as the live index holds it; of a service made here that the index lacks (the write that made
        it was refused or failed: `Remedy.SERVICE_KEPT`), the record the directory's edits keep, so it is read and
        changed by the id its maker was told, and its next change writes it whole (`_commit`). Before, it was a 404
        until a rebuild or the server's next start wrote it, and a maker who sent the create again made a second."""
        found = self.backend.get(service_id)
        if found is not None:
            return found
        entry = self.directory.overlay.get(service_id)
        if entry is None or not entry.created:
            return None
        try:
            return overlay_record(None, entry.fields)
        except (ValidationError, DomainError, ValueError):
            return None  # kept, and named by a rebuild's report: nothing a change of it could write

    def unlisted(self, service_id: str) -> bool:
        """Whether the service is one made here that the index lacks (`record` reads it from the directory's edits):
        in no search nor on the public pages, whatever its status says, which each face says beside it. Asks the index
        only of a service made here."""
        return self._lacked(self.directory.overlay.get(service_id))

    def _lacked(self, entry: OverlayEntry | None) -> bool:
        """`unlisted`, of the service's overlay entry as read already (`_owed`: before, it read it again)."""
        return entry is not None and entry.created and self.backend.get(entry.service_id) is None

    # --- steps ----------------------------------------------------------------------------------------

    def _current(self, principal: Principal, service_id: str, if_match: str | None = None, *,
                 versioned: Sequence[str] = ()) -> Service:
        """The service as the live index holds it (`record`), if `principal` may change it and `if_match` (required
        when the change gives `versioned` fields) names its version; never a record merged into another
        (`not_merged_away`)."""
        current = self.record(service_id)
        self.not_merged_away(service_id, current)
        if current is None:
            raise ServiceNotFound(f"No service with id '{service_id[:80]}'.", field="service_id")
        self._require_own(principal, service_id)
        if if_match is None and versioned:
            raise PreconditionRequired(
                f"A change of {' and '.join(versioned)} must say which version of '{service_id[:80]}' it was made "
                "from, or it could silently undo another maintainer's newer edit, so nothing was written. GET "
                f"/maintain/services/{service_id[:80]} for the record and its version (also its ETag), make your "
                "change to that, and send it with the header If-Match: \"<version>\". To state one need or the "
                "gender alone, PUT .../needs/{need} or .../gender: they need no version.", field="If-Match")
        if if_match is not None and not {"*", version_of(current)} & _versions(if_match):
            raise StaleEdit(f"'{service_id[:80]}' has changed since you read it (a maintainer's edit or a sync), so "
                            "this change was not made: it would undo what changed. GET /maintain/services/"
                            f"{service_id[:80]} for the record as it is now and its ETag, make your change to that, "
                            "and send it again with the new ETag in If-Match. To state one need or the gender "
                            "alone, PUT .../needs/{need} or .../gender: they change nothing else.", field="If-Match")
        return current

    def not_merged_away(self, service_id: str, current: Service | None) -> None:
        """Refuse a change of a record merged into another (`current`, the index's record by the id, inactive after
        the live write that merged it, left out by a rebuild), naming the id it is listed as: before, a change of one
        left inactive was written to it, shown nowhere, and a restore listed the service twice."""
        if current is not None and current.status != "inactive":
            return
        kept = self.merged_into(service_id)
        if kept is not None:
            raise ServiceMerged(f"'{service_id[:80]}' is merged into '{kept}', the same service from another source, "
                                f"and is listed as that, so nothing was changed: change '{kept}' instead.",
                                field="service_id", subject=kept)

    def _require_own(self, principal: Principal, service_id: str) -> None:
        """A provider may change only the services linked to its organisation (403 naming it)."""
        if principal.role is Role.provider and (
                self.directory.organisations.owner(service_id) != principal.organisation_id):
            raise Forbidden(f"Service '{service_id[:80]}' is not linked to your organisation "
                            f"({principal.organisation}); a provider may change only its own services.",
                            field="service_id")

    def _placed(self, data: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
        """A new point (lat and lon, or a full postcode alone) brings its ONS areas with it."""
        if not {"lat", "lon", "postcode"} & set(given):
            return data
        if ("lat" in given) != ("lon" in given):
            raise InvalidEdit("Give lat and lon together.", field="lat" if "lat" not in given else "lon")
        lad = None
        if "lat" not in given:
            if given.get("postcode") is None:
                return data  # the postcode was cleared; the point stays
            try:
                point = self.geography.postcodes.lookup(given["postcode"])
            except GeodataError as exc:
                raise InvalidEdit(exc.message, field="postcode") from None
            if point.precision != "postcode":
                raise InvalidEdit(f"'{given['postcode']}' is a postcode {point.precision}; a service needs its "
                                  "full postcode.", field="postcode")
            data.update(lat=point.lat, lon=point.lon, postcode=point.query.value)
            lad = point.lad_code
        try:
            areas = self.geography.locate(float(data["lat"]), float(data["lon"]), lad)
        except GeodataError as exc:
            raise InvalidEdit(exc.message, field="lat") from None
        data["areas"] = {k: v for k, v in vars(areas).items()}
        return data

    @staticmethod
    def _capacity(data: dict[str, Any], given: Mapping[str, Any], today: date) -> dict[str, Any]:
        """Capacity without a date is as of `today`, the day in England (`england_today`, as the face read it, never
        REHABMAP_TODAY); a later date is refused. Before, the face's REHABMAP_TODAY: a server given 2020-01-01
        stamped a capacity reported now as of then, and refused the real date as in the future."""
        if "capacity" in given and "capacity_as_of" not in given:
            data["capacity_as_of"] = today.isoformat() if given["capacity"] is not None else None
        as_of = data.get("capacity_as_of")
        if "capacity_as_of" in given and as_of is not None and date.fromisoformat(str(as_of)) > today:
            raise InvalidEdit("capacity_as_of cannot be in the future.", field="capacity_as_of")
        return data

    def _save(self, principal: Principal, action: str, current: Service,
              data: Mapping[str, Any]) -> tuple[Service, list[str]]:
        return self._commit(principal, action, current, validated(data, current=current))

    def _commit(self, principal: Principal, action: str, current: Service | None, service: Service, *,
                noted: Sequence[Change] = ()) -> tuple[Service, list[str]]:
        """Audit + overlay in one transaction, then the live index. Under the index lock. Returns the
        record as the index now holds it, and the fields changed. `noted`: what the change says beside them (a
        retirement's reason), audited with it, laid on nothing."""
        changes = changes_between(current, service)
        if not changes:
            return self._laid_again(current, service)
        entry = self._recorded(principal, action, current, service, changes, noted)
        written = self._written(service.id, entry.fields, made=current is None)
        return (written[0] if written else service), [c.field for c in changes]

    def _laid_again(self, current: Service | None, service: Service) -> tuple[Service, list[str]]:
        """An edit that changes nothing the record shows. Where a write of the service's edits is still owed, the index
        may not show them though it reads as holding them, so they are laid again: a service made here whose write was
        refused (`record` reads it from the directory), or a write whose refresh or mark failed (the index reads a
        record as written before any refresh). The index is then left as a first success leaves it, written, refreshed
        and marked (`settle`), or the error says again that the edit is kept. Before, a 200 that left it unshown in
        searches, and every other process's caches unaware of it, until the next edit. Where no write is owed
        (`Overlay.write_owed`; of a kept new service, the index lacking it), nothing is written: a refresh and a new
        mark at each same-value edit (a script sending the same capacity every few minutes) emptied every host's
        caches."""
        entry = self.directory.overlay.get(service.id) if current is not None else None
        if current is None or entry is None or not self._owed(entry):
            return current or service, []
        written = self._written(service.id, entry.fields, settle=True)
        return (written[0] if written else current), []

    def _owed(self, entry: OverlayEntry) -> bool:
        """Whether a write of the entry to the live index is still owed (`_laid_again`)."""
        return self.directory.overlay.write_owed(entry.service_id) or self._lacked(entry)

    def _written(self, service_id: str, fields: Mapping[str, Any], *, made: bool = False,
                 settle: bool = False) -> list[Service]:
        """The service's overlay entry laid on the live index (`RecordWriter.upsert`); `made`: a service made by
        this write. One refused or failed is owed (`Overlay.owe_write`) till one lands, this or any write that lays the
        entry as far as it fits (`reconcile`, a rebuild's `OverlayWriter`, a sync's live write:
        `Overlay.writes_paid`)."""
        try:
            written = self.writer.upsert({service_id: fields}, before_commit=lambda: self.before_commit("index"),
                                         settle=settle)
        except (IndexNotBuilt, IndexRefused, IndexUnavailable) as error:
            self._owe(service_id, error)
            # The directory's edits hold it: once the index takes it, a rebuild or the server's next start
            # (`reconcile`) lays it, and sent again (or any change of a new service) it is recorded once (`_recorded`)
            # and laid (`_laid_again`). Each face says so in its words (`Remedy.EDIT_KEPT`), and of a new service,
            # under which id (`Remedy.SERVICE_KEPT`).
            error.remedy = Remedy.SERVICE_KEPT if made else Remedy.EDIT_KEPT
            error.subject = service_id
            if made and isinstance(error, IndexUnavailable):
                error.not_to_be_sent_again()
            raise
        self.directory.overlay.writes_paid([service_id])
        return written

    def _owe(self, service_id: str, error: DomainError) -> None:
        """`Overlay.owe_write`, where the store can note it. Where it cannot (its disk full since the edit committed,
        its database gone), the person is still told the index's `error`, which is what happened to their edit: it is
        kept (its overlay row committed before the write) and a rebuild or the server's next start lays it. The store's
        failure is the operator's, in the log. Before, it replaced the index's error: a 500 saying nothing of the edit
        or the index, whose edit a person then made again."""
        try:
            self.directory.overlay.owe_write(service_id)
        except Exception as refused:  # noqa: BLE001 - the index's error is the one raised
            log_unnoted(logging.ERROR, f"The search index did not take the edit of {service_id} "
                        f"({type(error).__name__})", "that its write is owed", refused,
                        "the edit is kept, and a rebuild lays it; till then an edit of it that changes nothing may "
                        "not write it again.")

    def _recorded(self, principal: Principal, action: str, current: Service | None, service: Service,
                  changes: Sequence[Change], noted: Sequence[Change]) -> OverlayEntry:
        """The service's overlay entry with the change laid, its audit rows and overlay row in one transaction. Of a
        change the entry holds already (an edit sent again after the search index refused or failed it, which the
        live record, so `changes`, still lacks), nothing is recorded again: the audit log says each change once. What
        `noted` says (a retirement's reason, which may be new words) is recorded all the same."""
        kept = self.directory.overlay.get(service.id) if current is not None else None
        if kept is not None:
            changes = [c for c in changes if c.field not in kept.fields or kept.fields[c.field] != c.new]
            if not changes and not noted:
                return kept
        created = current is None
        fields = service.model_dump(mode="json") if created else {c.field: c.new for c in changes}
        if not created and not fields.keys().isdisjoint(NEED_LISTS):
            # The two lists are one word: both laid (and audited, the one unchanged as it stands, as the overlay
            # lays nothing the log does not say), so a source stating a need the other way later is questioned
            # (its list differs from the edit's) and never leaves the laid record saying a need both ways.
            stands = {name: value for name, value in service.model_dump(mode="json", include=set(NEED_LISTS)).items()
                      if name not in fields}
            fields.update(stands)
            noted = (*noted, *(Change(name, value, value) for name, value in stands.items()))
        return self.directory.overlay.record(principal.who, action, service.id, [*changes, *noted], fields=fields,
                                             created=created, before_commit=lambda: self.before_commit("directory"))

    # --- after a crash --------------------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Lay every overlay entry the live index does not reflect (a write cut short between the directory
        and the index, or an index restored from a backup), and once, the source's word migration 21 listed from
        the audit log for records of a file an edit reached before it was kept (`with_sources_word`). Returns the
        ids it wrote."""
        with self.directory.index_lock():
            recover = getattr(self.writer, "recover", None)
            if recover is not None:
                recover()
            entries, _ = self.directory.overlay.entries()
            due = self.directory.overlay.sources_word_due()
            stale: dict[str, Mapping[str, Any]] = {}
            for service_id, entry in entries.items():
                current = self.backend.get(service_id)
                try:
                    expected = overlay_record(current, entry.fields)
                except (ValidationError, DomainError, ValueError):
                    continue  # an edit to a service the sources no longer have: kept, laid if it returns
                if service_id in due and (keeping := with_sources_word(expected, due[service_id])) is not None:
                    stale[service_id] = keeping.model_dump(mode="json")  # whole: it carries its provenance
                elif expected != current:
                    stale[service_id] = entry.fields
            if stale:
                self.writer.upsert(stale)
                self.directory.overlay.writes_paid(stale)  # laid, as an edit's own write lays them
            if due:
                self.directory.overlay.sources_word_laid()
        if stale:
            log.warning("laid %d directory edits the live index lacked", len(stale))
        return sorted(stale)


class OverlayWriter:
    """An index writer that keeps the maintainers' edits through a rebuild (see the module docstring)."""

    def __init__(self, inner: LiveWriter, directory: Directory) -> None:
        self.inner = inner
        self.directory = directory
        self.warnings: list[str] = []

    def carried_ids(self) -> set[str]:
        """The services made in the directory: every build adds them, whatever the sources hold."""
        entries, _ = self.directory.overlay.entries()
        return {service_id for service_id, entry in entries.items() if entry.created}

    def parts(self) -> Parts | None:
        """The inner writer's: a record the maintainers edited is read back from its part to lay the edit over."""
        return self.inner.parts() if isinstance(self.inner, PartWriter) else None

    def replace_all(self, services: Iterable[Service | Stored | Revision], *,
                    before_swap: Callable[[], None] | None = None, build: str | None = None) -> int:
        """The inner writer's new index, with the directory's edits laid over the records they are about (a record
        given again, `Revision`, is laid over again: what an edit left to say about the record first given is then
        said of the record as it ends up, once) and the services made in the directory added."""
        entries, revision = self.directory.overlay.entries()
        lock = self.directory.index_lock()
        held = False
        laid: dict[str, list[str]] = {}  # what laying each record's edits had to say
        added: list[str] = []  # the services made in the directory, added whole
        warnings: list[str] = []  # the writer's once the new index is live (a refused one says nothing of edits)

        def stream() -> Iterator[Service | Stored | Revision]:
            nonlocal held
            seen: set[str] = set()
            rows: list[str] = []  # the id given at each row, in order
            for service in services:
                if isinstance(service, Revision):
                    if service.service is None:  # part of an earlier row's record: as if never given (`_taken_out`)
                        _taken_out(rows[service.row], seen, laid)
                        yield service
                        continue
                    entry = entries.get(service.service.id)
                    yield service if entry is None else Revision(service.row, self._laid(service.service, entry, laid))
                    continue
                entry = entries.get(service.id)
                yield self._laid(as_service(service), entry, laid) if entry is not None else service
                seen.add(service.id)
                rows.append(service.id)
            warnings.extend(warning for said in laid.values() for warning in said)
            # Everything imported is written: from here until the new index is live, no edit may commit.
            lock.__enter__()
            held = True
            recover = getattr(self.inner, "recover", None)
            if recover is not None:
                recover()
            for service_id, entry in sorted(entries.items()):
                if service_id in seen:
                    continue
                if not entry.created:
                    warnings.append(f"directory: {service_id} was edited but is no longer in the sources; "
                                    "its edits are kept and come back if it does")
                    continue
                try:
                    yield overlay_record(None, entry.fields)
                except (ValidationError, DomainError, ValueError) as exc:
                    warnings.append(f"directory: {service_id} could not be added: {_reason(exc)}")
                    continue
                added.append(service_id)

        try:
            inner = self.inner
            if isinstance(inner, PartWriter):
                count = inner.replace_all(stream(), before_swap=before_swap, build=build)
            else:
                count = inner.replace_all(map(as_service, stream()), build=build)  # type: ignore[arg-type]
            self.warnings += warnings
            if held:
                later, _ = self.directory.overlay.entries(since=revision)
                if later:
                    self.inner.upsert({sid: e.fields for sid, e in later.items()})
                # every edit laid afresh over its source's record, whose word it keeps: none of the audit log's due
                self.directory.overlay.sources_word_laid()
                # the new index holds each entry laid as far as it fits: no write of it is owed (before, the next
                # edit that changed nothing wrote it again), under the lock, so an edit's write refused after the swap
                # stays owed
                self.directory.overlay.writes_paid([*laid, *added, *later])
        finally:
            if held:
                lock.__exit__(None, None, None)
        return count

    def _laid(self, service: Service, entry: OverlayEntry, said: dict[str, list[str]]) -> Service:
        """The record with the entry's edits laid over it; what did not fit goes to `said`, under its id."""
        warnings = said[service.id] = []
        try:
            return overlay_record(service, entry.fields)
        except (ValidationError, DomainError, ValueError):
            pass
        # The new import and an edit disagree (say, a new max_age below an edited min_age): keep what fits.
        for field, value in entry.fields.items():
            try:
                service = overlay_record(service, {field: value})
            except (ValidationError, DomainError, ValueError) as exc:
                warnings.append(f"directory: edit of {service.id} {field} no longer fits the imported "
                                f"record and was not laid: {_reason(exc)}")
        return service


def _taken_out(service_id: str, seen: set[str], laid: dict[str, list[str]]) -> None:
    """A record given to a parallel import's writer, then found one with an earlier row's and taken out
    (`indexer.merge.Merging.stream`), is no longer in the sources, as one process never gives it: its edits are
    warned of as kept, not laid, and what laying them had to say is not said. Before, it counted as seen, and an
    edited record merged away so said nothing where one process's build warned."""
    seen.discard(service_id)
    laid.pop(service_id, None)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(e["msg"] for e in exc.errors())
    return getattr(exc, "message", None) or str(exc)
