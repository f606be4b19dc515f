"""Clinicians' searches, held for a short time so the results have an address (POST, then redirect, then GET)
and Back, a reload or "show all" never asks to send the form again.

What is held is what was typed in the form, as JSON, encrypted (Fernet: AES-128-CBC with HMAC-SHA-256)
under a key that exists only in the results address, `/alternatives/results/<key>`: the server files the
ciphertext under a SHA-256 of the key and cannot read it back without the address. The address never reaches
a log (the request log keeps the route template, `api.logging`), and pages are `no-store`. A held search is
deleted `HOLD_MINUTES` after it was made: expired rows are removed whenever a search is held or read, and a
key older than that is refused by Fernet itself. No cookie is set.

The rows live in one SQLite file beside the index (`REHABMAP_HOME/held-searches.sqlite`), so every worker
process of `rehabmap serve --workers N` reads what another held: the redirect may land on any of them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

HOLD_MINUTES = 30
_HOLD_SECONDS = HOLD_MINUTES * 60


class HeldSearches:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS held (digest TEXT PRIMARY KEY, expires REAL NOT NULL, "
                         "sealed BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA secure_delete=ON")  # a deleted search is overwritten, not left in free pages
        return conn

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


_opened: dict[Path, HeldSearches] = {}


def held_searches(home: Path) -> HeldSearches:
    """The store under REHABMAP_HOME, opened once a process."""
    path = home / "held-searches.sqlite"
    if path not in _opened:
        _opened[path] = HeldSearches(path)
    return _opened[path]
