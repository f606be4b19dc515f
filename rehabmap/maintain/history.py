"""A service's history, as every face gives it (the keepers' history page, `GET /maintain/audit?service_id=` and
`rehabmap audit --service`): the audit rows filed under the service, and the uploads that took it out of the
directory, which the audit files under their table. One rule, so no face tells less of a service than another."""

from __future__ import annotations

from rehabmap.maintain.audit import AuditEntry, AuditLog
from rehabmap.maintain.uploads import taking_out


def service_history(audit: AuditLog, service_id: str, *, after_id: int = 0,
                    limit: int = 100) -> tuple[list[AuditEntry], int]:
    """Its rows after `after_id` (a cursor), oldest first, at most `limit`, and how many there are after it in all,
    as `AuditLog.entries` pages: the service's own rows (a service's: never another kind's that shares its id, an
    organisation's '1'), with the uploads that took it out in their place among them."""
    own, total = audit.entries(resource_id=service_id, resource_type="service", after_id=after_id, limit=limit)
    taken_out = [e for e in taking_out(audit, service_id) if e.id > after_id]
    return sorted([*own, *taken_out], key=lambda e: e.id)[:limit], total + len(taken_out)


def audit_page(audit: AuditLog, service_id: str | None, *, after_id: int, limit: int,
               services_only: bool) -> tuple[list[AuditEntry], int]:
    """A page of the audit log as the API and the command line give it: one service's history when one is named,
    else every row (`services_only`: the rows of services, which the HSDS rendering reads)."""
    if service_id is not None:
        return service_history(audit, service_id, after_id=after_id, limit=limit)
    return audit.entries(resource_type="service" if services_only else None, after_id=after_id, limit=limit)
