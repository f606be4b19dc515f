"""The maintainers' store: tokens, organisations, the edits overlay and the append-only audit log.

`rehabmap index` rebuilds the whole index from its sources, so what maintainers and providers change lives
here, in its own SQLite file (`REHABMAP_HOME/directory.sqlite`, WAL, synchronous=FULL), and is laid over
every new build (`rehabmap.edits.OverlayWriter`):

* `tokens`: id, label, role, organisation, a keyed hash of the secret (never the secret itself), when it
  expires and when it was revoked.
* `organisations` and `ownership`: which organisation owns which service (one owner per service).
* `overlay`: per edited service, the fields changed here and their values (for a service made here, the
  whole record), and `revision`, the audit id of its latest change.
* `audit`: one row per changed field: when, who, what, old and new value. It records who changed a
  service, never anything about a search. It can only grow (`AUDIT_GUARDS`).

One change is one transaction: its audit rows and its overlay row commit together or not at all.

**The audit log is append-only for any connection, whatever its pragmas.** Triggers refuse UPDATE (so also
`INSERT ... ON CONFLICT DO UPDATE` and `UPDATE OR REPLACE`) and DELETE, and refuse an INSERT whose id or
uuid is taken before SQLite's REPLACE conflict resolution could delete the row holding it: REPLACE deletes
without firing DELETE triggers unless `recursive_triggers` is on. Another trigger refuses ids below 1, the
value SQLite gives `NEW.id` before it picks one. Every open checks the triggers against `AUDIT_GUARDS`
and restores any that are missing or altered, so an older store gets them too. Dropping or altering the
table or its triggers cannot be stopped by SQLite itself; rehabmap's own connections refuse it with an
authorizer. Anyone who can write the file can still rewrite it: keep it, and its backups, private.

**Token key.** Token secrets are hashed with HMAC-SHA-256 under a key kept in its own file
(`Settings.token_key_path`: `REHABMAP_HOME/token.key`, or `REHABMAP_TOKEN_KEY_FILE`), mode 0600, made the
first time a token needs it. A check value of it sits in `meta`, so a missing or wrong key file is an
error that says so, never a silent new key under which no token works. If the key is lost,
`rehabmap tokens new-key` makes a new one and revokes every token hashed with the old.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehabmap.auth import (
    KEY_BYTES,
    Principal,
    Role,
    bearer,
    is_legacy,
    keyed_hash,
    make_token,
    parse_token,
    secret_matches,
)
from rehabmap.errors import DirectoryUnavailable, InvalidValue, Unauthenticated, UnknownOrganisation, UnknownToken

if TYPE_CHECKING:
    from rehabmap.config import Settings

SCHEMA_VERSION = "2"  # 2: tokens expire; keyed token hashes; the audit log's INSERT guards
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
    expires_at TEXT,
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
"""
_APPEND_ONLY = "SELECT RAISE(ABORT, 'the audit log is append-only')"
# name -> the exact statement; an open restores any trigger whose stored SQL differs.
AUDIT_GUARDS = {
    "audit_append_only_update": f"CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit "
                                f"BEGIN {_APPEND_ONLY}; END",
    "audit_append_only_delete": f"CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit "
                                f"BEGIN {_APPEND_ONLY}; END",
    "audit_append_only_insert": f"CREATE TRIGGER audit_append_only_insert BEFORE INSERT ON audit "
                                f"WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id OR uuid = NEW.uuid) "
                                f"BEGIN {_APPEND_ONLY}; END",
    "audit_positive_ids": "CREATE TRIGGER audit_positive_ids AFTER INSERT ON audit WHEN NEW.id < 1 "
                          "BEGIN SELECT RAISE(ABORT, 'audit log ids start at 1'); END",
}
_AUDIT = "audit"
_BUSY_TIMEOUT_S = 30.0
_KEY_CHECK_MESSAGE = b"rehabmap token key check"
_UPGRADE_ACTOR = "rehabmap upgrade (tokens now expire)"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def _now() -> str:
    return _iso(_utcnow())


def _keep_audit_log(action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None) -> int:
    """SQLite authorizer on rehabmap's own connections: no statement may drop or alter the audit log or
    its triggers, or make the schema writable, none of which any trigger could see."""
    names = {(arg1 or "").lower(), (arg2 or "").lower()}
    if action in (sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_ALTER_TABLE, sqlite3.SQLITE_DROP_TRIGGER,
                  sqlite3.SQLITE_DROP_TEMP_TRIGGER) and _AUDIT in names:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() == "writable_schema":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


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
    expires_at: str | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at) <= now


@dataclass(frozen=True)
class TokenPolicy:
    """How long tokens last: `expiry_days` unless their maker says, never more than `max_expiry_days`."""

    expiry_days: int = 90
    max_expiry_days: int = 365


class Directory:
    """The store. Each call opens its own short connection, so it is safe from any thread or process."""

    def __init__(self, path: Path, *, key_file: Path | None = None, tokens: TokenPolicy = TokenPolicy()) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key_file = Path(key_file) if key_file is not None else self.path.with_name("token.key")
        self.token_policy = tokens
        self._thread_lock = threading.Lock()
        self._key: tuple[bytes, str] | None = None  # the token key and its check value, once read
        self._open()

    @classmethod
    def from_settings(cls, settings: Settings) -> Directory:
        return cls(settings.directory_path, key_file=settings.token_key_path,
                   tokens=TokenPolicy(settings.token_expiry_days, settings.token_max_expiry_days))

    @classmethod
    def existing(cls, path: Path) -> Directory | None:
        return cls(path) if Path(path).is_file() else None

    def _open(self) -> None:
        """Make the tables; bring an older store up to this version; check the audit log's guards."""
        with self._connect(schema=True) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        with self._transaction(schema=True) as conn:
            self._upgrade(conn)
            for name, statement in AUDIT_GUARDS.items():
                found = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                                     (name,)).fetchone()
                if found is None or found[0] != statement:
                    conn.execute(f"DROP TRIGGER IF EXISTS {name}")
                    conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        """Schema 1 → 2: tokens get an expiry. Live tokens made before expiry existed get the default term
        from now, audited, so none lasts for ever and their holders have time to take new ones."""
        if "expires_at" in {row[1] for row in conn.execute("PRAGMA table_info(tokens)")}:
            return
        conn.execute("ALTER TABLE tokens ADD COLUMN expires_at TEXT")
        now = _utcnow()
        expires = _iso(now + timedelta(days=self.token_policy.expiry_days))
        for (token_id,) in conn.execute("SELECT id FROM tokens WHERE revoked_at IS NULL ORDER BY id").fetchall():
            conn.execute("UPDATE tokens SET expires_at = ? WHERE id = ?", (expires, token_id))
            self._audit(conn, _UPGRADE_ACTOR, "update", "token", token_id, [Change("expires_at", None, expires)],
                        _iso(now))

    @contextmanager
    def _connect(self, *, schema: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection that may not drop or alter the audit log; only `schema` ones (opening the store)
        may restore its triggers."""
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            if not schema:
                conn.set_authorizer(_keep_audit_log)
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self, *, schema: bool = False) -> Iterator[sqlite3.Connection]:
        with self._connect(schema=schema) as conn:
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
                     expires_at: datetime | None = None, actor: str) -> tuple[TokenInfo, str]:
        """A new token; the returned string is the only copy of its secret. It expires at `expires_at`
        (timezone-aware), by default `token_policy.expiry_days` from now, at most `max_expiry_days`."""
        role = Role(role)
        name = " ".join(name.split())
        if not 1 <= len(name) <= 100:
            raise InvalidValue("A token's label must be 1 to 100 characters.", field="name")
        if (role is Role.provider) != (organisation is not None):
            raise InvalidValue("A provider token needs --organisation, and only a provider token takes one.",
                               field="organisation")
        now = _utcnow()
        expires = self._expiry(now, expires_at)
        org = self.organisation(organisation) if organisation is not None else None
        new = make_token(self._token_key())
        at = _iso(now)
        with self._transaction() as conn:
            conn.execute("INSERT INTO tokens (id, name, role, organisation_id, hash, created_at, expires_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (new.id, name, role.value, org.id if org else None, new.hash, at, expires))
            self._audit(conn, actor, "create", "token", new.id,
                        [Change("role", None, role.value), Change("name", None, name)]
                        + ([Change("organisation", None, org.name)] if org else [])
                        + [Change("expires_at", None, expires)], at)
        return TokenInfo(new.id, name, role, org.name if org else None, at, None, expires), new.token

    def _expiry(self, now: datetime, expires_at: datetime | None) -> str:
        longest = now + timedelta(days=self.token_policy.max_expiry_days)
        if expires_at is None:
            return _iso(now + timedelta(days=self.token_policy.expiry_days))
        if expires_at.tzinfo is None:
            raise ValueError("a token's expiry must carry its time zone")
        if expires_at <= now:
            raise InvalidValue(f"A token's expiry must be in the future, not {_iso(expires_at)}.", field="expires")
        if expires_at > longest:
            raise InvalidValue(f"A token may last at most {self.token_policy.max_expiry_days} days "
                               f"(REHABMAP_TOKEN_MAX_EXPIRY_DAYS), so it must expire by {_iso(longest)}.",
                               field="expires")
        return _iso(expires_at.astimezone(timezone.utc).replace(microsecond=0))

    def tokens(self) -> list[TokenInfo]:
        with self._connect() as conn:
            rows = conn.execute("SELECT t.id, t.name, t.role, o.name, t.created_at, t.revoked_at, t.expires_at "
                                "FROM tokens t LEFT JOIN organisations o ON o.id = t.organisation_id "
                                "ORDER BY t.created_at, t.id").fetchall()
        return [TokenInfo(r[0], r[1], Role(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

    def revoke_token(self, token_id: str, *, actor: str) -> TokenInfo:
        at = _now()
        with self._transaction() as conn:
            row = conn.execute("SELECT revoked_at FROM tokens WHERE id = ?", (token_id,)).fetchone()
            if row is None:
                raise UnknownToken(f"No token with id '{token_id[:40]}'. 'rehabmap tokens list' shows them.",
                                   field="token_id")
            if row[0] is None:
                self._revoke(conn, token_id, actor, at)
        return next(t for t in self.tokens() if t.id == token_id)

    def _revoke(self, conn: sqlite3.Connection, token_id: str, actor: str, at: str) -> None:
        conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (at, token_id))
        self._audit(conn, actor, "revoke", "token", token_id, [Change("revoked_at", None, at)], at)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an `Authorization: Bearer` header, or 401 saying why not. The secret is
        checked first, so only its holder learns that a token was revoked or has expired."""
        token_id, secret = parse_token(bearer(authorization))
        with self._connect() as conn:
            row = conn.execute("SELECT t.name, t.role, t.organisation_id, o.name, t.hash, t.revoked_at, "
                               "t.expires_at, (SELECT value FROM meta WHERE key = 'token_key_check') FROM tokens t "
                               "LEFT JOIN organisations o ON o.id = t.organisation_id WHERE t.id = ?",
                               (token_id,)).fetchone()
        if row is None or not self._secret_matches(token_id, secret, row[4], row[7]):
            raise Unauthenticated("The token is not valid. Check it was copied whole; an admin can make a new one.")
        if row[5] is not None:
            raise Unauthenticated(f"The token was revoked on {row[5]}. Ask an admin for a new one.")
        if row[6] is not None and datetime.fromisoformat(row[6]) <= _utcnow():
            raise Unauthenticated(f"The token expired on {row[6]}. Ask an admin for a new one.")
        if is_legacy(row[4]):
            self._rehash(token_id, secret, row[4])
        return Principal(token_id, row[0], Role(row[1]), row[2], row[3])

    def _secret_matches(self, token_id: str, secret: str, stored: str, key_check: str | None) -> bool:
        """`key_check`: the store's key check value as read with the token, so a key replaced by another
        process (`rehabmap tokens new-key`) is read again, not the one this process remembers."""
        return secret_matches(b"" if is_legacy(stored) else self._token_key(key_check), token_id, secret, stored)

    def _rehash(self, token_id: str, secret: str, legacy: str) -> None:
        """A legacy (Argon2) token shown with its right secret is stored keyed from now on, so its next
        check is fast and a wrong secret against it no longer costs an Argon2 hash."""
        with self._connect() as conn:
            conn.execute("UPDATE tokens SET hash = ? WHERE id = ? AND hash = ?",
                         (keyed_hash(self._token_key(), token_id, secret), token_id, legacy))

    # --- the token key ------------------------------------------------------------------------------

    def _token_key(self, current_check: str | None = None) -> bytes:
        """The key token secrets are hashed under, from its file; made the first time it is needed. Read
        again when `current_check` (the store's check value, if the caller has it) is not the remembered one."""
        if self._key is not None and current_check in (None, self._key[1]):
            return self._key[0]
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'token_key_check'").fetchone()
        key = self._read_key() if row is not None or self.key_file.exists() else self._make_key()
        check = _key_check(key)
        if row is None:
            with self._connect() as conn:
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('token_key_check', ?)", (check,))
                row = conn.execute("SELECT value FROM meta WHERE key = 'token_key_check'").fetchone()
        if not hmac.compare_digest(row[0], check):
            raise DirectoryUnavailable(
                f"The token key file {self.key_file} is not the key this directory's tokens were made with. "
                "Restore the right one from its backup, or run 'rehabmap tokens new-key' to make a new key "
                "(every token made with the old one is then revoked).")
        self._key = (key, check)
        return key

    def _read_key(self) -> bytes:
        try:
            key = bytes.fromhex(self.key_file.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            raise DirectoryUnavailable(
                f"The token key file {self.key_file} is missing, so no token made with it can be checked. "
                "Restore it from its backup, or run 'rehabmap tokens new-key' to make a new key (every token "
                "made with the old one is then revoked).") from None
        except (OSError, ValueError) as exc:
            raise DirectoryUnavailable(f"The token key file {self.key_file} cannot be read as a key "
                                       f"({type(exc).__name__}).") from None
        if len(key) != KEY_BYTES:
            raise DirectoryUnavailable(f"The token key file {self.key_file} does not hold a {KEY_BYTES}-byte key.")
        return key

    def _make_key(self) -> bytes:
        """A new random key, in place whole or not at all. Another process may be making one too: the
        first file in place wins, and both use it."""
        key = os.urandom(KEY_BYTES)
        draft = self._key_draft(key)
        try:
            os.link(draft, self.key_file)
        except FileExistsError:
            return self._read_key()
        finally:
            draft.unlink(missing_ok=True)
        return key

    def _key_draft(self, key: bytes) -> Path:
        """The key written and synced to a new private file (0600) beside its place."""
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        draft = self.key_file.with_name(f".{self.key_file.name}.{uuid.uuid4().hex}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="ascii") as out:
            out.write(key.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        return draft

    def new_token_key(self, *, actor: str) -> list[str]:
        """Replace the token key (lost, or leaked): every live token hashed with the old key is revoked,
        audited, and their ids returned. Legacy (Argon2) tokens do not use the key and keep working."""
        key = os.urandom(KEY_BYTES)
        draft = self._key_draft(key)
        at = _now()
        try:
            with self._transaction() as conn:
                revoked = [token_id for token_id, stored in conn.execute(
                    "SELECT id, hash FROM tokens WHERE revoked_at IS NULL ORDER BY id").fetchall()
                    if not is_legacy(stored)]
                for token_id in revoked:
                    self._revoke(conn, token_id, actor, at)
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('token_key_check', ?)", (_key_check(key),))
                os.replace(draft, self.key_file)
        finally:
            draft.unlink(missing_ok=True)
        self._key = (key, _key_check(key))
        return revoked


def _key_check(key: bytes) -> str:
    """A value that tells whether a key file holds this directory's key, without revealing the key."""
    return hmac.new(key, _KEY_CHECK_MESSAGE, "sha256").hexdigest()


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
