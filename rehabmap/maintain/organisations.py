"""Provider organisations and which organisation owns which service (one owner per service): what a
provider token may change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rehabmap.errors import InvalidValue, NotLinked, Remedy, UnknownOrganisation
from rehabmap.maintain.audit import AuditLog, Change, tidied_text
from rehabmap.maintain.database import Connection, Database, now
from rehabmap.record import ORGANISATION_NAME_LENGTH


@dataclass(frozen=True)
class Organisation:
    id: int
    name: str
    created_at: str
    service_ids: list[str] = field(default_factory=list)


class Organisations:
    def __init__(self, database: Database, audit: AuditLog) -> None:
        self.database = database
        self.audit = audit

    def add(self, name: str, *, actor: str) -> Organisation:
        name = tidied_text(name)
        fewest, most = ORGANISATION_NAME_LENGTH
        if not fewest <= len(name) <= most:
            raise InvalidValue(f"An organisation's name must be {fewest} to {most} characters.", field="name")
        at = now()
        with self.database.transaction() as conn:
            if conn.execute("SELECT 1 FROM organisations WHERE lower(name) = lower(?)", (name,)).fetchone():
                raise InvalidValue(f"There is already an organisation called '{name}'.", field="name")
            org_id = int(conn.execute("INSERT INTO organisations (name, created_at) VALUES (?, ?) RETURNING id",
                                      (name, at)).fetchone()[0])
            self.audit.append(conn, actor, "create", "organization", str(org_id), [Change("name", None, name)], at)
        return Organisation(org_id, name, at)

    def get(self, key: str | int) -> Organisation:
        """By id or (case-insensitive) name, with the services it owns."""
        with self.database.connect() as conn:
            row = None
            if isinstance(key, int) or str(key).isdigit():
                row = conn.execute("SELECT id, name, created_at FROM organisations WHERE id = ?",
                                   (int(key),)).fetchone()
            if row is None:
                row = conn.execute("SELECT id, name, created_at FROM organisations WHERE lower(name) = lower(?)",
                                   (tidied_text(str(key)),)).fetchone()
            if row is None:
                raise UnknownOrganisation(f"No organisation '{str(key)[:80]}'.", field="organisation",
                                          remedy=Remedy.ORGANISATIONS)
            services = [s for (s,) in conn.execute(
                "SELECT service_id FROM ownership WHERE organisation_id = ? ORDER BY service_id", (row[0],))]
        return Organisation(row[0], row[1], row[2], services)

    def all(self) -> list[Organisation]:
        with self.database.connect() as conn:
            rows = conn.execute("SELECT id, name, created_at FROM organisations ORDER BY lower(name), id").fetchall()
            owned: dict[int, list[str]] = {}
            for service_id, org_id in conn.execute("SELECT service_id, organisation_id FROM ownership "
                                                   "ORDER BY service_id"):
                owned.setdefault(org_id, []).append(service_id)
        return [Organisation(r[0], r[1], r[2], owned.get(r[0], [])) for r in rows]

    def link(self, organisation: Organisation | str | int, service_ids: Sequence[str], *, actor: str) -> Organisation:
        """Make the organisation the owner of these services (taking them from any other owner)."""
        org = self._read(organisation)
        at = now()
        with self.database.transaction() as conn:
            for service_id in dict.fromkeys(service_ids):
                row = conn.execute("SELECT organisation_id FROM ownership WHERE service_id = ?",
                                   (service_id,)).fetchone()
                if row and row[0] == org.id:
                    continue
                conn.execute("INSERT INTO ownership VALUES (?, ?) ON CONFLICT (service_id) DO UPDATE "
                             "SET organisation_id = excluded.organisation_id", (service_id, org.id))
                self.audit.append(conn, actor, "link", "service", service_id,
                                  [Change("owner_organisation", self._name(conn, row[0]) if row else None, org.name)],
                                  at)
        return self.get(org.id)

    def unlink(self, organisation: Organisation | str | int, service_ids: Sequence[str], *,
               actor: str) -> Organisation:
        """The organisation no longer owns these services. One it does not own is a NotLinked naming its owner,
        and then none is unlinked (the transaction is left), so a mistyped organisation or id changes nothing."""
        org = self._read(organisation)
        at = now()
        with self.database.transaction() as conn:
            for service_id in dict.fromkeys(service_ids):
                gone = conn.execute("DELETE FROM ownership WHERE service_id = ? AND organisation_id = ?",
                                    (service_id, org.id)).rowcount
                if not gone:
                    row = conn.execute("SELECT organisation_id FROM ownership WHERE service_id = ?",
                                       (service_id,)).fetchone()
                    owner = f"{self._name(conn, row[0])} owns it" if row else "no organisation owns it"
                    raise NotLinked(f"'{service_id[:80]}' is not linked to {org.name}: {owner}. Nothing was unlinked.",
                                    field="service_id")
                self.audit.append(conn, actor, "unlink", "service", service_id,
                                  [Change("owner_organisation", org.name, None)], at)
        return self.get(org.id)

    def _read(self, organisation: Organisation | str | int) -> Organisation:
        """The organisation named (`get`), or one its caller has read already (a face that checked the name or id it
        was given, or made it): taken as it is, not read again. Organisations are never removed, nor renamed."""
        return organisation if isinstance(organisation, Organisation) else self.get(organisation)

    @staticmethod
    def _name(conn: Connection, org_id: int) -> str | None:
        row = conn.execute("SELECT name FROM organisations WHERE id = ?", (org_id,)).fetchone()
        return row[0] if row else None

    def owner(self, service_id: str) -> int | None:
        with self.database.connect() as conn:
            row = conn.execute("SELECT organisation_id FROM ownership WHERE service_id = ?", (service_id,)).fetchone()
        return row[0] if row else None

    def owned_by(self, organisation_id: int) -> list[str]:
        with self.database.connect() as conn:
            return [s for (s,) in conn.execute("SELECT service_id FROM ownership WHERE organisation_id = ? "
                                               "ORDER BY service_id", (organisation_id,))]
