"""Each service's history, for maintainers: every change the audit log holds for it (edits, retiring and
restoring, verification, review decisions, links to an organisation), oldest first, one row a field, with
who made it and the value before and after. The audit log is append-only; this page only reads it."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from web.keepers.maintainer_review import MAINTAINERS
from web.keepers.maintainer_services import HISTORY, service_path
from web.keepers.session import Keeper, KeepersRoute, directory_of, render, requires

router = APIRouter(route_class=KeepersRoute)
LIMIT = 1000


def shown(value: Any) -> str:
    """A logged value as a maintainer reads it: text as it is, nothing as a dash, the rest as JSON."""
    if value is None or value == "":
        return "–"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


@router.get(HISTORY + "/{service_id:path}")
def history(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> HTMLResponse:
    entries, total = directory_of(request).audit.entries(resource_id=service_id, limit=LIMIT)
    return render(request, keeper, "keepers/maintainer/history.html",
                  {"service_id": service_id, "entries": entries, "total": total, "shown": shown,
                   "service_path": service_path, "limit": LIMIT})
