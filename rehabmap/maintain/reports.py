"""Problems the public reports with a service's page ("report a problem with this page"), and the
maintainers' queue of them: one table in the maintainers' store (its migration is
`rehabmap.maintain.migrations`), plain SQL kept in this module.

A report holds the service, what is wrong and, only if its writer chose to give one, a way to reach them.
Nothing else: no IP address, no search (the form's address carries the service id alone), no cookie. So
that nobody can flood the queue, a report is refused once `ReportPolicy.per_service_per_hour` reports for
that service, or `per_hour` for the whole site, arrived in the last hour; counted from the stored reports,
so the limit holds across every worker, and needs nothing about who sent them.

Resolving a report is audited (who, when, the note), like every change a keeper makes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rehabmap.errors import DomainError, InvalidValue, Remedy
from rehabmap.maintain.audit import AuditLog, Change
from rehabmap.maintain.database import Database, iso, utcnow

_COLUMNS = "id, service_id, what, contact, created_at, resolved_at, resolved_by, note"
MAX_WHAT = 1000
MAX_CONTACT = 200
MAX_NOTE = 200


class TooManyReports(DomainError):
    status = 429


class UnknownReport(DomainError):
    status = 404


@dataclass(frozen=True)
class ReportPolicy:
    per_hour: int = 60
    per_service_per_hour: int = 5


@dataclass(frozen=True)
class ProblemReport:
    id: int
    service_id: str
    what: str
    contact: str | None
    created_at: str
    resolved_at: str | None
    resolved_by: str | None
    note: str | None


class ProblemReports:
    def __init__(self, database: Database, audit: AuditLog, *, policy: ReportPolicy = ReportPolicy(),
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.audit = audit
        self.policy = policy
        self.clock = clock

    def add(self, service_id: str, what: str, contact: str | None) -> ProblemReport:
        """Keep a report, unless the last hour has had its fill (`TooManyReports`)."""
        what, contact = what.strip(), (contact or "").strip() or None
        if not what:
            raise InvalidValue("Say what is wrong with the page", field="what")
        if len(what) > MAX_WHAT:
            raise InvalidValue(f"Say what is wrong in {MAX_WHAT:,} characters or fewer: it has {len(what):,}",
                               field="what")
        if contact is not None and len(contact) > MAX_CONTACT:
            raise InvalidValue(f"Contact details must be {MAX_CONTACT:,} characters or fewer: it has {len(contact):,}",
                               field="contact")
        moment = self.clock()
        hour_ago = iso(moment - timedelta(hours=1))
        with self.database.transaction() as conn:
            site, service = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE service_id = ?) FROM problem_reports WHERE created_at > ?",
                (service_id, hour_ago)).fetchone()
            if site >= self.policy.per_hour or service >= self.policy.per_service_per_hour:
                raise TooManyReports("Too many problems have been reported in the last hour. Please try again "
                                     "later.")
            report_id = int(conn.execute("INSERT INTO problem_reports (service_id, what, contact, created_at) "
                                         "VALUES (?, ?, ?, ?) RETURNING id",
                                         (service_id, what, contact, iso(moment))).fetchone()[0])
        return self.get(report_id)

    def get(self, report_id: int) -> ProblemReport:
        with self.database.connect() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM problem_reports WHERE id = ?", (report_id,)).fetchone()
        if row is None:
            raise UnknownReport(f"No problem report {report_id}.", field="report", remedy=Remedy.PROBLEM_REPORTS)
        return ProblemReport(*row)

    def open(self) -> list[ProblemReport]:
        """The queue: unresolved reports, the oldest first."""
        with self.database.connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM problem_reports WHERE resolved_at IS NULL "
                                "ORDER BY created_at, id").fetchall()
        return [ProblemReport(*row) for row in rows]

    def resolve(self, report_id: int, note: str, *, actor: str) -> ProblemReport:
        """Take a report off the queue, with what was done about it; audited. Resolving it again changes
        nothing."""
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise InvalidValue(f"The note must be {MAX_NOTE} characters or fewer", field="note")
        at = iso(self.clock())
        with self.database.transaction() as conn:
            row = conn.execute("SELECT resolved_at FROM problem_reports WHERE id = ?", (report_id,)).fetchone()
            if row is None:
                raise UnknownReport(f"No problem report {report_id}.", field="report", remedy=Remedy.PROBLEM_REPORTS)
            if row[0] is None:
                conn.execute("UPDATE problem_reports SET resolved_at = ?, resolved_by = ?, note = ? WHERE id = ?",
                             (at, actor, note or None, report_id))
                self.audit.append(conn, actor, "resolve", "problem_report", str(report_id),
                                  [Change("resolved_at", None, at), Change("note", None, note or None)], at)
        return self.get(report_id)
