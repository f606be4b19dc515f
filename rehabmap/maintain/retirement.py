"""When and why a retired service was retired. The index keeps only a record's `status`; the audit log keeps
the change that made it inactive: a sync retiring a record its source deregistered or no longer lists (with
the source's reason, e.g. "deregistered by CQC on 2021-03-01"), or a maintainer retiring it by hand (no reason
given). A person reading a retired service's page, and an API user, are told both, so a service no longer
listed is not taken for one whose details merely lapsed (nor said to have closed: no source tells a closure
from a change of provider or of what it offers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rehabmap.maintain.store import Directory
    from rehabmap.record import Service


@dataclass(frozen=True)
class Retirement:
    on: date  # the day rehabmap retired it
    reason: str | None  # None: a maintainer retired it without saying why


def retirement(directory: Directory | None, service: Service) -> Retirement | None:
    """The latest change that made an inactive service inactive; None for an active one, or where no store is
    open (the server then still answers, without the reason) or the log holds no such change."""
    if service.status == "active" or directory is None:
        return None
    rows = directory.audit.last_change_setting("service", service.id, "status", "inactive")
    if not rows:
        return None
    reason = next((row.new for row in rows if row.field == "retired_reason"), None)
    return Retirement(date.fromisoformat(rows[0].at[:10]), reason)
