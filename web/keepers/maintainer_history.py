"""Each service's history, for maintainers: every change the audit log holds for it (edits, retiring and
restoring, verification, review decisions, links to an organisation, and an upload that took it out of the
directory, which the audit files under the table), oldest first, one row a field, with who made it and the value
before and after (`rehabmap.maintain.history`, as the audit API and command give it). The audit log is
append-only; this page only reads it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from rehabmap.errors import shorten
from rehabmap.maintain.audit import TIDIED, AuditEntry
from rehabmap.maintain.history import service_history
from rehabmap.maintain.overlay import RESTORE_SUPERSEDED, Restore
from rehabmap.maintain.uploads import REMOVED_SERVICES
from web.keepers.maintainer_review import MAINTAINERS
from web.keepers.maintainer_services import editor_of
from web.keepers.maintainer_upload import UPLOAD
from web.keepers.paths import HISTORY, SERVICES, service_path
from web.keepers.session import Keeper, KeepersRoute, directory_of, message_page, render, requires
from web.keepers.words import field_name, field_value, teams_gender
from web.present import long_date

router = APIRouter(route_class=KeepersRoute)
LIMIT = 1000


def cells(entry: AuditEntry) -> tuple[str, str, str]:
    """Its field, before and after as a maintainer reads them. The row a source's retirement logs beside its
    status row, naming the maintainer's restore it took back, is said in words: its value is a record of who
    restored it and when, not a field's value; a row that changes nothing says so, as does an upgrade's taking
    what rehabmap read out of the edits, and an upload's list of the services it took out (its field the table's,
    not the service's) is said as what it did to this one."""
    if entry.field == RESTORE_SUPERSEDED:
        restore = Restore.logged(entry.old)
        return ("a maintainer's restore", f"{restore.by} had restored it on {long_date(restore.on)}",
                "taken over by its source's later retirement")
    if entry.field == REMOVED_SERVICES:
        return ("curated table", f"{entry.resource_id} lists it",
                f"taken out: the {entry.resource_id} added in its place does not list it")
    if entry.action == TIDIED:  # migration 16: what an older rehabmap's edit laid of what it read
        return (field_name(entry.field), f"{field_value(entry.field, entry.old)}, kept by an edit",
                "read from its listing's words again: never a maintainer's word")
    after = field_value(entry.field, entry.new)
    if entry.old == entry.new:  # a need list laid as it stands beside an edit of the other (`readings.NEED_LISTS`)
        after = f"{after} (as it was: stated with the other list)"
    return field_name(entry.field), field_value(entry.field, entry.old), after


@router.get(HISTORY + "/{service_id:path}")
def history(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> HTMLResponse:
    entries, total = service_history(directory_of(request).audit, service_id, limit=LIMIT)
    taken_out = any(e.field == REMOVED_SERVICES for e in entries)
    _, editor = editor_of(request)
    service = editor.record(service_id)  # a service made here and kept, which the index lacks, has its page too
    if not entries and service is None:  # before, "No change has been made to it here", as if it were listed
        return message_page(request, keeper, 404, "No such service",
                            f"No service has the id '{shorten(service_id)}', and the audit log names none: check "
                            "the link, or find the service under Services.")
    return render(request, keeper, "keepers/maintainer/history.html",
                  {"service_id": service_id, "entries": entries, "total": total, "cells": cells,
                   "teams_gender": teams_gender(service),
                   "limit": LIMIT, "uploads": UPLOAD if taken_out else "",
                   # a service no longer in the index (an upload took it out) has no page of its own to go back to
                   "back": (service_path(service_id), "Back to the service") if service else (SERVICES, "Services")})
