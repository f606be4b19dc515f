"""Clinicians' searches, held for a short time so the results have an address (POST, then redirect, then GET)
and Back, a reload or "show all" never asks to send the form again.

What is held is what was typed in the form, as JSON, encrypted (Fernet: AES-128-CBC with HMAC-SHA-256)
under a key that exists only in the results address, `/alternatives/results/<key>`: the server files the
ciphertext under a SHA-256 of the key and cannot read it back without the address. The address never reaches
a log (the request log keeps the route template, `api.logging`), and pages are `no-store`. A held search is
deleted `HOLD_MINUTES` after it was made: expired rows are removed whenever a search is held or read, and a
key older than that is refused by Fernet itself. No cookie is set.

The rows live in one SQLite file beside the index (`REHABMAP_HOME/held-searches.sqlite`), so every worker
process of `rehabmap serve --workers N` reads what another held: the redirect may land on any of them. With
the PostgreSQL store (`REHABMAP_DATABASE_URL`) they live in its `held` table (its migration 5), so the
redirect may land on another host too; what a row holds is the same ciphertext, unreadable without the
address, and PostgreSQL's own vacuum reclaims the deleted rows.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.fernet import Fernet, InvalidToken

from rehabmap.maintain.database import Connection

if TYPE_CHECKING:
    from rehabmap.config import Settings

HOLD_MINUTES = 30
_HOLD_SECONDS = HOLD_MINUTES * 60


class _Store(Protocol):
    def connect(self) -> AbstractContextManager[Connection]: ...


class SqliteHeld:
    """The SQLite file of held searches."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS held (digest TEXT PRIMARY KEY, expires REAL NOT NULL, "
                         "sealed BLOB NOT NULL)")

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA secure_delete=ON")  # a deleted search is overwritten, not left in free pages
            yield conn
        finally:
            conn.close()


class HeldSearches:
    """`database`: where the rows are, the SQLite file (`SqliteHeld`) or the PostgreSQL store."""

    def __init__(self, database: SqliteHeld | _Store) -> None:
        self.database = database

    def _connect(self) -> AbstractContextManager[Connection]:
        return self.database.connect()

    def hold(self, fields: dict[str, object]) -> str:
        """Hold the fields; the key to read them back, which is also the address's last part."""
        key = Fernet.generate_key()
        sealed = Fernet(key).encrypt(json.dumps(fields).encode())
        now = time.time()
        with self._connect() as conn:
            conn.execute("DELETE FROM held WHERE expires <= ?", (now,))
            conn.execute("INSERT INTO held VALUES (?, ?, ?)", (_digest(key), now + _HOLD_SECONDS, sealed))
        return key.decode()

    def read(self, key: str) -> dict[str, object] | None:
        """The fields held under `key`, or None when there are none: never held, expired, or not a key."""
        now = time.time()
        with self._connect() as conn:
            conn.execute("DELETE FROM held WHERE expires <= ?", (now,))
            row = conn.execute("SELECT sealed FROM held WHERE digest = ?", (_digest(key.encode()),)).fetchone()
        if row is None:
            return None
        try:
            fields = json.loads(Fernet(key.encode()).decrypt(row[0], ttl=_HOLD_SECONDS))
        except (InvalidToken, ValueError):
            return None
        return fields if isinstance(fields, dict) else None


def _digest(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()


_opened: dict[str, HeldSearches] = {}


def held_searches(settings: Settings) -> HeldSearches:
    """The held searches of REHABMAP_DATABASE_URL, or else of REHABMAP_HOME, opened once a process."""
    from rehabmap.maintain.store import Directory

    url = settings.database_url
    where = url.get_secret_value() if url is not None else str(settings.home / "held-searches.sqlite")
    if where not in _opened:
        # The PostgreSQL store's `held` table is one of its migrations: opening the store runs them.
        _opened[where] = HeldSearches(Directory.from_settings(settings).database if url is not None
                                      else SqliteHeld(Path(where)))
    return _opened[where]
