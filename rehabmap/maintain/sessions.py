"""Signed-in sessions for the keepers' pages, and the one-time sign-in links `rehabmap tokens sign-in-link`
prints: two tables in the maintainers' store (made by `rehabmap.maintain.migrations`), in plain SQL kept in
this one module.

A session is what a person gets for showing a token once (or a sign-in link made for that token): a random
256-bit secret in a cookie, of which the store keeps only the SHA-256 (the secret is random, not a
password, so its hash need not be slow or keyed). Every check joins the session to its token, so a token
revoked or expired ends its sessions at that moment, with nothing to clean up first. A session also ends
after `SessionPolicy.idle` without a request and `SessionPolicy.absolute` after it began, whatever its use.

A sign-in link is single use and lives `SessionPolicy.link`; redeeming it is one UPDATE that only an unused,
unexpired link for a live token satisfies, so two tabs racing with one link get one session between them.

The clock is injected (`clock`), so tests drive expiry without waiting.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rehabmap.errors import Remedy, UnknownToken
from rehabmap.maintain.auth import Principal, Role
from rehabmap.maintain.database import Connection, Database, iso, utcnow

# The token behind a session or link, and whether it still works at `?` (now).
_LIVE_TOKEN = "t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)"
_PRINCIPAL = ("SELECT t.id, t.name, t.role, t.organisation_id, o.name, t.expires_at FROM tokens t "
              "LEFT JOIN organisations o ON o.id = t.organisation_id")


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lasts without use (`idle`) and at most (`absolute`); how long a link lives."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=8)
    link: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Session:
    """A live session: who it is for, and the secret its cookie holds (only `start` knows it)."""

    principal: Principal
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _principal(row: tuple) -> Principal:
    return Principal(row[0], row[1], Role(row[2]), row[3], row[4], row[5])


class Sessions:
    def __init__(self, database: Database, *, policy: SessionPolicy = SessionPolicy(),
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.policy = policy
        self.clock = clock

    def start(self, principal: Principal) -> Session:
        """A new session for a token just checked (`Tokens.authenticate`); expired sessions are swept here."""
        secret = secrets.token_urlsafe(32)
        moment = self.clock()
        with self.database.transaction() as conn:
            self._sweep(conn, moment)
            conn.execute("INSERT INTO keeper_sessions VALUES (?, ?, ?, ?)",
                         (_digest(secret), principal.token_id, iso(moment), iso(moment)))
        return Session(principal, secret)

    def check(self, secret: str) -> Session | None:
        """The live session a cookie holds, its idle time restarted; None if there is none (unknown, ended,
        idle too long, too old, or its token revoked or expired)."""
        if not secret:
            return None
        moment = self.clock()
        with self.database.transaction() as conn:
            row = conn.execute(
                f"{_PRINCIPAL} JOIN keeper_sessions s ON s.token_id = t.id "
                f"WHERE s.hash = ? AND s.last_seen_at > ? AND s.created_at > ? AND {_LIVE_TOKEN}",
                (_digest(secret), iso(moment - self.policy.idle), iso(moment - self.policy.absolute),
                 iso(moment))).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE keeper_sessions SET last_seen_at = ? WHERE hash = ?", (iso(moment), _digest(secret)))
        return Session(_principal(row), secret)

    def end(self, secret: str) -> None:
        """Sign out: the session is gone from the store, so its cookie is worth nothing even if kept."""
        with self.database.connect() as conn:
            conn.execute("DELETE FROM keeper_sessions WHERE hash = ?", (_digest(secret),))

    def live_for(self, token_id: str) -> int:
        """How many sessions of a token are live now (admin pages and tests)."""
        moment = self.clock()
        with self.database.connect() as conn:
            return conn.execute(
                f"SELECT count(*) FROM keeper_sessions s JOIN tokens t ON t.id = s.token_id WHERE s.token_id = ? "
                f"AND s.last_seen_at > ? AND s.created_at > ? AND {_LIVE_TOKEN}",
                (token_id, iso(moment - self.policy.idle), iso(moment - self.policy.absolute),
                 iso(moment))).fetchone()[0]

    def _sweep(self, conn: Connection, moment: datetime) -> None:
        """Ended sessions and expired links go; so do the one-time keys of token forms (`Tokens.create`) that
        no session left could send again. A form is sent with its session's CSRF value, so only a session
        that showed it, begun before its token was made, can send it: once every such session has ended, the
        key stops nothing and is cleared."""
        conn.execute("DELETE FROM keeper_sessions WHERE last_seen_at <= ? OR created_at <= ? OR token_id IN "
                     "(SELECT id FROM tokens t WHERE NOT (" + _LIVE_TOKEN + "))",
                     (iso(moment - self.policy.idle), iso(moment - self.policy.absolute), iso(moment)))
        conn.execute("DELETE FROM sign_in_links WHERE expires_at <= ?", (iso(moment),))
        conn.execute("UPDATE tokens SET form_key = NULL WHERE form_key IS NOT NULL AND created_at < "
                     "coalesce((SELECT min(created_at) FROM keeper_sessions), ?)", (iso(moment),))

    # --- one-time sign-in links ---------------------------------------------------------------------

    def issue_link(self, token_id: str) -> tuple[str, datetime]:
        """A one-time code for a live token, and when it stops working; only its hash is kept."""
        moment = self.clock()
        code = secrets.token_urlsafe(32)
        expires = moment + self.policy.link
        with self.database.transaction() as conn:
            if conn.execute(f"SELECT 1 FROM tokens t WHERE t.id = ? AND {_LIVE_TOKEN}",
                            (token_id, iso(moment))).fetchone() is None:
                raise UnknownToken(f"No live token has the id '{token_id[:40]}': a revoked or expired token gets no "
                                   "sign-in link.", field="token_id", remedy=Remedy.TOKENS)
            self._sweep(conn, moment)
            conn.execute("INSERT INTO sign_in_links VALUES (?, ?, ?, ?, NULL)",
                         (_digest(code), token_id, iso(moment), iso(expires)))
        return code, expires

    def redeem_link(self, code: str) -> Session | None:
        """A session for an unused, unexpired link whose token still works; the link is used up. None if not."""
        moment = self.clock()
        with self.database.transaction() as conn:
            used = conn.execute(
                "UPDATE sign_in_links SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ? "
                f"AND token_id IN (SELECT id FROM tokens t WHERE {_LIVE_TOKEN}) RETURNING token_id",
                (iso(moment), _digest(code), iso(moment), iso(moment))).fetchone()
            if used is None:
                return None
            row = conn.execute(f"{_PRINCIPAL} WHERE t.id = ?", (used[0],)).fetchone()
        return self.start(_principal(row))
