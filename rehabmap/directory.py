"""The maintainers' store: tokens, organisations, the edits overlay and the append-only audit log.

`rehabmap index` rebuilds the whole index from its sources, so what maintainers and providers change lives
here, in its own SQLite file (`REHABMAP_HOME/directory.sqlite`, WAL, synchronous=FULL), and is laid over
every new build (`rehabmap.edits.OverlayWriter`):

* `tokens`: id, label, role, organisation, an Argon2id hash of the secret; never the secret itself.
* `organisations` and `ownership`: which organisation owns which service (one owner per service).
* `overlay`: per edited service, the fields changed here and their values (for a service made here, the
  whole record), and `revision`, the audit id of its latest change.
* `audit`: one row per changed field: when, who, what, old and new value. Triggers refuse UPDATE and
  DELETE, so the log can only grow. It records who changed a service, never anything about a search.

One change is one transaction: its audit rows and its overlay row commit together or not at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rehabmap.auth import Principal, Role, bearer, make_token, parse_token, secret_matches
from rehabmap.errors import InvalidValue, Unauthenticated, UnknownOrganisation, UnknownToken

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS organisations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ownership (
    service_id TEXT PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id)
);
CREATE INDEX IF NOT EXISTS ownership_by_organisation ON ownership (organisation_id);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'maintainer', 'provider')),
    organisation_id INTEGER REFERENCES organisations (id),
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    CHECK ((role = 'provider') = (organisation_id IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS overlay (
    service_id TEXT PRIMARY KEY,
    fields TEXT NOT NULL,
    created INTEGER NOT NULL CHECK (created IN (0, 1)),
    revision INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    field TEXT NOT NULL,
    old TEXT,
    new TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_resource ON audit (resource_id, id);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
_BUSY_TIMEOUT_S = 30.0
_VERIFIED_FOR_S = 300.0
_VERIFIED_MAX = 10_000


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT just made (sqlite3 types `lastrowid` as optional for other statements)."""
    if cursor.lastrowid is None:
        raise RuntimeError("an INSERT returned no row id")
    return cursor.lastrowid


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class OverlayEntry:
    service_id: str
    fields: dict[str, Any]
    created: bool
    revision: int
    updated_at: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    uuid: str
    at: str
    actor: str
    action: str
    resource_type: str
    resource_id: str
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Organisation:
    id: int
    name: str
    created_at: str
    service_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: Role
    organisation: str | None
    created_at: str
    revoked_at: str | None


class Directory:
    """The store. Each call opens its own short connection, so it is safe from any thread or process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()
        self._verified: dict[str, tuple[bytes, float]] = {}
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    @classmethod
    def existing(cls, path: Path) -> Directory | None:
        return cls(path) if Path(path).is_file() else None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def index_lock(self) -> Iterator[None]:
        """Held by every write that goes on to the live index, and by a rebuild around its swap, so an edit
        is never lost between a rebuild's reading of the overlay and its new index going live. A file
        lock, so it holds across processes (the API and `rehabmap index`); the kernel drops it if the
        holder dies."""
        with self._thread_lock, open(self.path.with_name(self.path.name + ".lock"), "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # --- audit --------------------------------------------------------------------------------------

    @staticmethod
    def _audit(conn: sqlite3.Connection, actor: str, action: str, resource_type: str, resource_id: str,
               changes: Sequence[Change], at: str) -> int:
        last = 0
        for change in changes:
            cursor = conn.execute(
                "INSERT INTO audit (uuid, at, actor, action, resource_type, resource_id, field, old, new) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (str(uuid.uuid4()), at, actor, action, resource_type, resource_id, change.field,
                 json.dumps(change.old), json.dumps(change.new)))
            last = _inserted_id(cursor)
        return last

    def audit(self, *, resource_id: str | None = None, resource_type: str | None = None,
              after_id: int = 0, limit: int = 100) -> tuple[list[AuditEntry], int]:
        """Entries oldest first, after `after_id` (a cursor), and how many match in all."""
        where: list[str] = ["id > ?"]
        params: list[int | str] = [after_id]
        if resource_id is not None:
            where.append("resource_id = ?")
            params.append(resource_id)
        if resource_type is not None:
            where.append("resource_type = ?")
            params.append(resource_type)
        clause = " AND ".join(where)
        with self._connect() as conn:
            total = conn.execute(f"SELECT count(*) FROM audit WHERE {clause}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT id, uuid, at, actor, action, resource_type, resource_id, field, old, new FROM audit "
                f"WHERE {clause} ORDER BY id LIMIT ?", [*params, limit]).fetchall()
        entries = [AuditEntry(entry_id, entry_uuid, at, actor, action, rtype, rid, fname,
                              json.loads(old) if old is not None else None,
                              json.loads(new) if new is not None else None)
                   for entry_id, entry_uuid, at, actor, action, rtype, rid, fname, old, new in rows]
        return entries, int(total)

    # --- for the stores that keep tables of their own in this file (the sync store, coverage claims) ---------

    def connection(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connect()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction on the file: another store's writes and the audit rows it appends
        (`append_audit`) commit together or not at all."""
        return self._transaction()

    @staticmethod
    def append_audit(conn: sqlite3.Connection, actor: str, action: str, resource_type: str, resource_id: str,
                     changes: Sequence[Change], at: str) -> int:
        """Audit rows appended inside a transaction on this file (a retirement by a sync, a review decision)."""
        return Directory._audit(conn, actor, action, resource_type, resource_id, changes, at)

    # --- overlay ------------------------------------------------------------------------------------

    def record(self, actor: str, action: str, service_id: str, changes: Sequence[Change], *,
               fields: dict[str, Any], created: bool = False,
               before_commit: Callable[[], None] | None = None) -> OverlayEntry:
        """One change to one service: its audit rows, and `fields` laid into its overlay row, in one
        transaction. For a service made here, `fields` is the whole record."""
        if not changes:
            raise ValueError("a change with no changed fields is not recorded")
        at = _now()
        with self._transaction() as conn:
            revision = self._audit(conn, actor, action, "service", service_id, changes, at)
            row = conn.execute("SELECT fields, created FROM overlay WHERE service_id = ?", (service_id,)).fetchone()
            laid = json.loads(row[0]) if row else {}
            laid.update(fields)
            fields = laid
            is_created = bool(row[1]) if row else created
            conn.execute("INSERT OR REPLACE INTO overlay VALUES (?, ?, ?, ?, ?)",
                         (service_id, json.dumps(fields, sort_keys=True), int(is_created), revision, at))
            if before_commit is not None:
                before_commit()
        return OverlayEntry(service_id, fields, is_created, revision, at)

    def overlay(self, *, since: int = 0) -> tuple[dict[str, OverlayEntry], int]:
        """Every overlay entry changed after revision `since`, and the latest revision, read together."""
        with self._connect() as conn:
            conn.execute("BEGIN")
            rows = conn.execute("SELECT service_id, fields, created, revision, updated_at FROM overlay "
                                "WHERE revision > ?", (since,)).fetchall()
            latest = conn.execute("SELECT coalesce(max(revision), 0) FROM overlay").fetchone()[0]
            conn.execute("COMMIT")
        return {r[0]: OverlayEntry(r[0], json.loads(r[1]), bool(r[2]), r[3], r[4]) for r in rows}, int(latest)

    def overlay_entry(self, service_id: str) -> OverlayEntry | None:
        with self._connect() as conn:
            row = conn.execute("SELECT service_id, fields, created, revision, updated_at FROM overlay "
                               "WHERE service_id = ?", (service_id,)).fetchone()
        return OverlayEntry(row[0], json.loads(row[1]), bool(row[2]), row[3], row[4]) if row else None

    # --- organisations ------------------------------------------------------------------------------

    def add_organisation(self, name: str, *, actor: str) -> Organisation:
        name = " ".join(name.split())
        if not 2 <= len(name) <= 200:
            raise InvalidValue("An organisation's name must be 2 to 200 characters.", field="name")
        at = _now()
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM organisations WHERE name = ?", (name,)).fetchone():
                raise InvalidValue(f"There is already an organisation called '{name}'.", field="name")
            org_id = _inserted_id(conn.execute("INSERT INTO organisations (name, created_at) VALUES (?, ?)",
                                               (name, at)))
            self._audit(conn, actor, "create", "organization", str(org_id), [Change("name", None, name)], at)
        return Organisation(org_id, name, at)

    def organisation(self, key: str | int) -> Organisation:
        """By id or (case-insensitive) name, with the services it owns."""
        with self._connect() as conn:
            row = None
            if isinstance(key, int) or str(key).isdigit():
                row = conn.execute("SELECT id, name, created_at FROM organisations WHERE id = ?",
                                   (int(key),)).fetchone()
            if row is None:
                row = conn.execute("SELECT id, name, created_at FROM organisations WHERE name = ?",
                                   (" ".join(str(key).split()),)).fetchone()
            if row is None:
                raise UnknownOrganisation(f"No organisation '{str(key)[:80]}'. Add it with "
                                          "'rehabmap orgs add NAME' or POST /maintain/organisations.",
                                          field="organisation")
            services = [s for (s,) in conn.execute(
                "SELECT service_id FROM ownership WHERE organisation_id = ? ORDER BY service_id", (row[0],))]
        return Organisation(row[0], row[1], row[2], services)

    def organisations(self) -> list[Organisation]:
        with self._connect() as conn:
            rows = conn.execute("SELECT id, name, created_at FROM organisations ORDER BY name").fetchall()
            owned: dict[int, list[str]] = {}
            for service_id, org_id in conn.execute("SELECT service_id, organisation_id FROM ownership "
                                                   "ORDER BY service_id"):
                owned.setdefault(org_id, []).append(service_id)
        return [Organisation(r[0], r[1], r[2], owned.get(r[0], [])) for r in rows]

    def link(self, organisation: str | int, service_ids: Sequence[str], *, actor: str) -> Organisation:
        """Make the organisation the owner of these services (taking them from any other owner)."""
        org = self.organisation(organisation)
        at = _now()
        with self._transaction() as conn:
            for service_id in dict.fromkeys(service_ids):
                row = conn.execute("SELECT organisation_id FROM ownership WHERE service_id = ?",
                                   (service_id,)).fetchone()
                if row and row[0] == org.id:
                    continue
                conn.execute("INSERT OR REPLACE INTO ownership VALUES (?, ?)", (service_id, org.id))
                self._audit(conn, actor, "link", "service", service_id,
                            [Change("owner_organisation", self._org_name(conn, row[0]) if row else None, org.name)],
                            at)
        return self.organisation(org.id)

    def unlink(self, organisation: str | int, service_ids: Sequence[str], *, actor: str) -> Organisation:
        org = self.organisation(organisation)
        at = _now()
        with self._transaction() as conn:
            for service_id in dict.fromkeys(service_ids):
                gone = conn.execute("DELETE FROM ownership WHERE service_id = ? AND organisation_id = ?",
                                    (service_id, org.id)).rowcount
                if gone:
                    self._audit(conn, actor, "unlink", "service", service_id,
                                [Change("owner_organisation", org.name, None)], at)
        return self.organisation(org.id)

    @staticmethod
    def _org_name(conn: sqlite3.Connection, org_id: int) -> str | None:
        row = conn.execute("SELECT name FROM organisations WHERE id = ?", (org_id,)).fetchone()
        return row[0] if row else None

    def owner(self, service_id: str) -> int | None:
        with self._connect() as conn:
            row = conn.execute("SELECT organisation_id FROM ownership WHERE service_id = ?", (service_id,)).fetchone()
        return row[0] if row else None

    def owned_by(self, organisation_id: int) -> list[str]:
        with self._connect() as conn:
            return [s for (s,) in conn.execute("SELECT service_id FROM ownership WHERE organisation_id = ? "
                                               "ORDER BY service_id", (organisation_id,))]

    # --- tokens -------------------------------------------------------------------------------------

    def create_token(self, role: Role | str, name: str, *, organisation: str | int | None = None,
                     actor: str) -> tuple[TokenInfo, str]:
        """A new token; the returned string is the only copy of its secret."""
        role = Role(role)
        name = " ".join(name.split())
        if not 1 <= len(name) <= 100:
            raise InvalidValue("A token's label must be 1 to 100 characters.", field="name")
        if (role is Role.provider) != (organisation is not None):
            raise InvalidValue("A provider token needs --organisation, and only a provider token takes one.",
                               field="organisation")
        org = self.organisation(organisation) if organisation is not None else None
        new = make_token()
        at = _now()
        with self._transaction() as conn:
            conn.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                         (new.id, name, role.value, org.id if org else None, new.salted_hash, at))
            self._audit(conn, actor, "create", "token", new.id,
                        [Change("role", None, role.value), Change("name", None, name)]
                        + ([Change("organisation", None, org.name)] if org else []), at)
        return TokenInfo(new.id, name, role, org.name if org else None, at, None), new.token

    def tokens(self) -> list[TokenInfo]:
        with self._connect() as conn:
            rows = conn.execute("SELECT t.id, t.name, t.role, o.name, t.created_at, t.revoked_at FROM tokens t "
                                "LEFT JOIN organisations o ON o.id = t.organisation_id ORDER BY t.created_at, t.id"
                                ).fetchall()
        return [TokenInfo(r[0], r[1], Role(r[2]), r[3], r[4], r[5]) for r in rows]

    def revoke_token(self, token_id: str, *, actor: str) -> TokenInfo:
        at = _now()
        with self._transaction() as conn:
            row = conn.execute("SELECT revoked_at FROM tokens WHERE id = ?", (token_id,)).fetchone()
            if row is None:
                raise UnknownToken(f"No token with id '{token_id[:40]}'. 'rehabmap tokens list' shows them.",
                                   field="token_id")
            if row[0] is None:
                conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (at, token_id))
                self._audit(conn, actor, "revoke", "token", token_id, [Change("revoked_at", None, at)], at)
        return next(t for t in self.tokens() if t.id == token_id)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an `Authorization: Bearer` header, or 401 saying why not."""
        token_id, secret = parse_token(bearer(authorization))
        with self._connect() as conn:
            row = conn.execute("SELECT t.name, t.role, t.organisation_id, o.name, t.hash, t.revoked_at FROM tokens t "
                               "LEFT JOIN organisations o ON o.id = t.organisation_id WHERE t.id = ?",
                               (token_id,)).fetchone()
        if row is None or not self._secret_matches(token_id, secret, row[4]):
            raise Unauthenticated("The token is not valid. Check it was copied whole; an admin can make a new one.")
        if row[5] is not None:
            raise Unauthenticated(f"The token was revoked on {row[5]}. Ask an admin for a new one.")
        return Principal(token_id, row[0], Role(row[1]), row[2], row[3])

    def _secret_matches(self, token_id: str, secret: str, salted_hash: str) -> bool:
        """The Argon2 check, remembered for a few minutes as a SHA-256 of the secret (never the secret), so a
        busy token costs one slow hash now and then, not one a request. Revocation is read every time."""
        digest = hashlib.sha256(f"{salted_hash}|{secret}".encode()).digest()
        now = time.monotonic()
        known = self._verified.get(token_id)
        if known is not None and known[1] > now and hmac.compare_digest(known[0], digest):
            return True
        if not secret_matches(secret, salted_hash):
            return False
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token_id] = (digest, now + _VERIFIED_FOR_S)
        return True


def hsds_metadata(entry: AuditEntry) -> dict[str, Any] | None:
    """The entry as an HSDS 3.0 `metadata` row, for changes to services (the HSDS resources rehabmap
    publishes); `resource_id` is the service's id in the Open Referral feed. None for other entries."""
    from rehabmap.oruk import service_uuid

    if entry.resource_type != "service":
        return None
    return {
        "id": entry.uuid, "resource_id": service_uuid(entry.resource_id), "resource_type": "service",
        "last_action_date": entry.at[:10], "last_action_type": entry.action, "field_name": entry.field,
        "previous_value": _hsds_value(entry.old), "replacement_value": _hsds_value(entry.new),
        "updated_by": entry.actor,
    }


def _hsds_value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
