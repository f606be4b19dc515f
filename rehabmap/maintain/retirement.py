"""When and why a retired service was retired. The index keeps only a record's `status`; the audit log keeps
the change that made it inactive: a sync retiring a record its source deregistered or no longer lists (with
the source's reason, e.g. "deregistered by CQC on 2021-03-01"), or a maintainer retiring it by hand (no reason
given). A person reading a retired service's page, and an API user, are told both, so a service no longer
listed is not taken for one whose details merely lapsed (nor said to have closed: no source tells a closure
from a change of provider or of what it offers). A maintainer is told more: who retired it and, when a source's
retirement took back a maintainer's restore (`rehabmap.maintain.overlay`), whose, so that they restore it again
only knowingly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from rehabmap.maintain.overlay import RESTORE_SUPERSEDED, Restore

if TYPE_CHECKING:
    from rehabmap.maintain.store import Directory
    from rehabmap.record import Service


# The audit row beside `retired_reason` where an operator's why is other than what the public reads: a removed ORUK
# feed's ("its feed file, bristol.toml, has left rehabmap's feed folder"), beside "rehabmap no longer reads …".
RETIRED_DETAIL = "retired_detail"


@dataclass(frozen=True)
class Retirement:
    on: date  # the day rehabmap retired it
    reason: str | None  # None: a maintainer retired it without saying why
    by: str = ""  # the audit log's actor: a sync (`rehabmap sync cqc, …`) or a maintainer's token label
    superseded: Restore | None = None  # the maintainer's restore that this retirement by a source took back


def retirement(directory: Directory | None, service: Service) -> Retirement | None:
    """The latest change that made an inactive service inactive; None for an active one, or where no store is
    open (the server then still answers, without the reason) or the log holds no such change."""
    if service.status == "active" or directory is None:
        return None
    rows = directory.audit.last_change_setting("service", service.id, "status", "inactive")
    if not rows:
        return None
    reason = next((row.new for row in rows if row.field == "retired_reason"), None)
    restore = next((Restore.logged(row.old) for row in rows if row.field == RESTORE_SUPERSEDED), None)
    return Retirement(date.fromisoformat(rows[0].at[:10]), reason, rows[0].actor, restore)


@dataclass(frozen=True)
class TakenBack:
    """A service a source retired after a maintainer had restored it, not restored again since."""

    service_id: str
    on: date  # the day the source's retirement came
    restore: Restore


def restores_taken_back(directory: Directory, *, limit: int) -> list[TakenBack]:
    """The latest `limit` of them, newest first: what a maintainer should look at again (the source's news was
    newer than their restore, but they may know better). One a maintainer has restored or retired since drops
    out, as its status has a newer word."""
    with directory.database.connect() as conn:
        rows = conn.execute(
            "SELECT a.resource_id, a.at, a.old FROM audit a WHERE a.field = ? AND a.resource_type = 'service' "
            "AND NOT EXISTS (SELECT 1 FROM audit b WHERE b.resource_id = a.resource_id AND b.id > a.id "
            "AND b.resource_type = 'service' AND b.field = 'status') ORDER BY a.id DESC LIMIT ?",
            (RESTORE_SUPERSEDED, limit)).fetchall()
    return [TakenBack(service_id, date.fromisoformat(at[:10]), Restore.logged(json.loads(old)))
            for service_id, at, old in rows]
