"""The API tokens in the store: made (the secret shown once), listed, revoked, expired, and checked on every
request. Only a keyed hash of each secret is kept; what a token looks like and what each role may do is
`rehabmap.maintain.auth`.

**Token key.** Token secrets are hashed with HMAC-SHA-256 under a key kept in its own file
(`Settings.token_key_path`: `REHABMAP_HOME/token.key`, or `REHABMAP_TOKEN_KEY_FILE`), mode 0600, made the
first time a token needs it. A check value of it sits in `meta`, so a missing or wrong key file is an
error that says so, never a silent new key under which no token works. If the key is lost,
`rehabmap tokens new-key` makes a new one and revokes every token hashed with the old.
"""

from __future__ import annotations

import hmac
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rehabmap.errors import (DirectoryUnavailable, InvalidValue, Remedy, TokenAlreadyMade, Unauthenticated,
                             UnknownToken)
from rehabmap.maintain.audit import AuditLog, Change, add_change_ids, tidied_text
from rehabmap.maintain.auth import (
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
from rehabmap.maintain.database import Connection, Database, iso, now, utcnow
from rehabmap.maintain.organisations import Organisations
from rehabmap.record import TOKEN_LABEL_LENGTH

_KEY_CHECK_MESSAGE = b"rehabmap token key check"
_UPGRADE_ACTOR = "rehabmap upgrade (tokens now expire)"


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


def upgrade_expiry(conn: Connection, policy: TokenPolicy) -> None:
    """Migration 2 of an SQLite store: tokens get an expiry. Live tokens made before expiry existed get the
    default term from now, audited, so none lasts for ever and their holders have time to take new ones."""
    if "expires_at" in {row[1] for row in conn.execute("PRAGMA table_info(tokens)")}:
        return
    conn.execute("ALTER TABLE tokens ADD COLUMN expires_at TEXT")
    add_change_ids(conn)
    moment = utcnow()
    expires = iso(moment + timedelta(days=policy.expiry_days))
    for (token_id,) in conn.execute("SELECT id FROM tokens WHERE revoked_at IS NULL ORDER BY id").fetchall():
        conn.execute("UPDATE tokens SET expires_at = ? WHERE id = ?", (expires, token_id))
        AuditLog.append(conn, _UPGRADE_ACTOR, "update", "token", token_id, [Change("expires_at", None, expires)],
                        iso(moment))


class Tokens:
    def __init__(self, database: Database, audit: AuditLog, organisations: Organisations, *, key_file: Path,
                 policy: TokenPolicy) -> None:
        self.database = database
        self.audit = audit
        self.organisations = organisations
        self.key_file = key_file
        self.policy = policy
        self._key: tuple[bytes, str] | None = None  # the token key and its check value, once read

    def create(self, role: Role | str, name: str, *, organisation: str | int | None = None,
               expires_at: datetime | None = None, actor: str, form_key: str | None = None) -> tuple[TokenInfo, str]:
        """A new token; the returned string is the only copy of its secret. It expires at `expires_at`
        (timezone-aware), by default `policy.expiry_days` from now, at most `max_expiry_days`.

        `form_key` is the one-time key of the form that asked for it (the keepers' tokens page): a form sent
        again (a reload of its reply, a double submit) raises `TokenAlreadyMade` naming the token it made, and
        makes none. The key is unique in the store, so two sends at once make one token between them."""
        role = Role(role)
        name = tidied_text(name)
        fewest, most = TOKEN_LABEL_LENGTH
        if not fewest <= len(name) <= most:
            raise InvalidValue(f"A token's label must be {fewest} to {most} characters.", field="name")
        if (role is Role.provider) != (organisation is not None):
            raise InvalidValue("A provider token needs an organisation, and only a provider token takes one.",
                               field="organisation", remedy=Remedy.TOKEN_ORGANISATION)
        moment = utcnow()
        expires = self._expiry(moment, expires_at)
        org = self.organisations.get(organisation) if organisation is not None else None
        new = make_token(self._token_key())
        at = iso(moment)
        with self.database.transaction() as conn:
            made = conn.execute("INSERT INTO tokens (id, name, role, organisation_id, hash, created_at, expires_at, "
                                "form_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (form_key) DO NOTHING "
                                "RETURNING id", (new.id, name, role.value, org.id if org else None, new.hash, at,
                                                 expires, form_key)).fetchone()
            if made is None:
                earlier = conn.execute("SELECT id, name FROM tokens WHERE form_key = ?", (form_key,)).fetchone()
                raise TokenAlreadyMade(f"This form made the token {earlier[1]} (id {earlier[0]}) when it was first "
                                       "sent. Its secret was shown once, then, and cannot be shown again.",
                                       token_id=earlier[0])
            self.audit.append(conn, actor, "create", "token", new.id,
                              [Change("role", None, role.value), Change("name", None, name)]
                              + ([Change("organisation", None, org.name)] if org else [])
                              + [Change("expires_at", None, expires)], at)
        return TokenInfo(new.id, name, role, org.name if org else None, at, None, expires), new.token

    def _expiry(self, moment: datetime, expires_at: datetime | None) -> str:
        longest = moment + timedelta(days=self.policy.max_expiry_days)
        if expires_at is None:
            return iso(moment + timedelta(days=self.policy.expiry_days))
        if expires_at.tzinfo is None:
            raise ValueError("a token's expiry must carry its time zone")
        if expires_at <= moment:
            raise InvalidValue(f"A token's expiry must be in the future, not {iso(expires_at)}.", field="expires")
        if expires_at > longest:
            raise InvalidValue(f"A token may last at most {self.policy.max_expiry_days} days "
                               f"(REHABMAP_TOKEN_MAX_EXPIRY_DAYS), so it must expire by {iso(longest)}.",
                               field="expires")
        return iso(expires_at.astimezone(timezone.utc).replace(microsecond=0))

    def all(self) -> list[TokenInfo]:
        with self.database.connect() as conn:
            rows = conn.execute("SELECT t.id, t.name, t.role, o.name, t.created_at, t.revoked_at, t.expires_at "
                                "FROM tokens t LEFT JOIN organisations o ON o.id = t.organisation_id "
                                "ORDER BY t.created_at, t.id").fetchall()
        return [TokenInfo(r[0], r[1], Role(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

    def revoke(self, token_id: str, *, actor: str) -> TokenInfo:
        at = now()
        with self.database.transaction() as conn:
            row = conn.execute("SELECT revoked_at FROM tokens WHERE id = ?", (token_id,)).fetchone()
            if row is None:
                raise UnknownToken(f"No token has the id '{token_id[:40]}'.", field="token_id", remedy=Remedy.TOKENS)
            if row[0] is None:
                self._revoke(conn, token_id, actor, at)
        return next(t for t in self.all() if t.id == token_id)

    def _revoke(self, conn: Connection, token_id: str, actor: str, at: str) -> None:
        conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (at, token_id))
        self.audit.append(conn, actor, "revoke", "token", token_id, [Change("revoked_at", None, at)], at)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an `Authorization: Bearer` header, or 401 saying why not. The secret is
        checked first, so only its holder learns that a token was revoked or has expired."""
        token_id, secret = parse_token(bearer(authorization))
        with self.database.connect() as conn:
            row = conn.execute("SELECT t.name, t.role, t.organisation_id, o.name, t.hash, t.revoked_at, "
                               "t.expires_at, (SELECT value FROM meta WHERE key = 'token_key_check') FROM tokens t "
                               "LEFT JOIN organisations o ON o.id = t.organisation_id WHERE t.id = ?",
                               (token_id,)).fetchone()
        if row is None or not self._secret_matches(token_id, secret, row[4], row[7]):
            raise Unauthenticated("The token is not valid. Check it was copied whole; an admin can make a new one.")
        if row[5] is not None:
            raise Unauthenticated(f"The token was revoked on {row[5]}. Ask an admin for a new one.")
        if row[6] is not None and datetime.fromisoformat(row[6]) <= utcnow():
            raise Unauthenticated(f"The token expired on {row[6]}. Ask an admin for a new one.")
        if is_legacy(row[4]):
            self._rehash(token_id, secret, row[4])
        return Principal(token_id, row[0], Role(row[1]), row[2], row[3], row[6])

    def _secret_matches(self, token_id: str, secret: str, stored: str, key_check: str | None) -> bool:
        """`key_check`: the store's key check value as read with the token, so a key replaced by another
        process (`rehabmap tokens new-key`) is read again, not the one this process remembers."""
        return secret_matches(b"" if is_legacy(stored) else self._token_key(key_check), token_id, secret, stored)

    def _rehash(self, token_id: str, secret: str, legacy: str) -> None:
        """A legacy (Argon2) token shown with its right secret is stored keyed from now on, so its next
        check is fast and a wrong secret against it no longer costs an Argon2 hash."""
        with self.database.connect() as conn:
            conn.execute("UPDATE tokens SET hash = ? WHERE id = ? AND hash = ?",
                         (keyed_hash(self._token_key(), token_id, secret), token_id, legacy))

    # --- the token key ------------------------------------------------------------------------------

    def derived_key(self, purpose: str) -> bytes:
        """A key for another keyed hash, named by `purpose`, derived from the token key: the same on every
        host sharing the store and the key file, and nothing a copy of the store alone reveals."""
        return hmac.new(self._token_key(), purpose.encode(), "sha256").digest()

    def _token_key(self, current_check: str | None = None) -> bytes:
        """The key token secrets are hashed under, from its file; made the first time it is needed. Read
        again when `current_check` (the store's check value, if the caller has it) is not the remembered one."""
        if self._key is not None and current_check in (None, self._key[1]):
            return self._key[0]
        with self.database.connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'token_key_check'").fetchone()
        key = self._read_key() if row is not None or self.key_file.exists() else self._make_key()
        check = _key_check(key)
        if row is None:
            with self.database.connect() as conn:
                conn.execute("INSERT INTO meta VALUES ('token_key_check', ?) ON CONFLICT (key) DO NOTHING", (check,))
                row = conn.execute("SELECT value FROM meta WHERE key = 'token_key_check'").fetchone()
        if not hmac.compare_digest(row[0], check):
            raise DirectoryUnavailable(
                f"The token key file {self.key_file.name} is not the key this directory's tokens were made with, so "
                "no token can be checked.", where=str(self.key_file), remedy=Remedy.TOKEN_KEY)
        self._key = (key, check)
        return key

    def _read_key(self) -> bytes:
        try:
            key = bytes.fromhex(self.key_file.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            raise DirectoryUnavailable(
                f"The token key file {self.key_file.name} is missing, so no token made with it can be checked.",
                where=str(self.key_file), remedy=Remedy.TOKEN_KEY) from None
        except (OSError, ValueError) as exc:
            raise DirectoryUnavailable(f"The token key file {self.key_file.name} cannot be read as a key "
                                       f"({type(exc).__name__}).", where=str(self.key_file)) from None
        if len(key) != KEY_BYTES:
            raise DirectoryUnavailable(f"The token key file {self.key_file.name} does not hold a {KEY_BYTES}-byte "
                                       "key.", where=str(self.key_file))
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

    def new_key(self, *, actor: str) -> list[str]:
        """Replace the token key (lost, or leaked): every live token hashed with the old key is revoked,
        audited, and their ids returned. Legacy (Argon2) tokens do not use the key and keep working."""
        key = os.urandom(KEY_BYTES)
        draft = self._key_draft(key)
        at = now()
        try:
            with self.database.transaction() as conn:
                revoked = [token_id for token_id, stored in conn.execute(
                    "SELECT id, hash FROM tokens WHERE revoked_at IS NULL ORDER BY id").fetchall()
                    if not is_legacy(stored)]
                for token_id in revoked:
                    self._revoke(conn, token_id, actor, at)
                conn.execute("INSERT INTO meta VALUES ('token_key_check', ?) ON CONFLICT (key) DO UPDATE "
                             "SET value = excluded.value", (_key_check(key),))
                os.replace(draft, self.key_file)
        finally:
            draft.unlink(missing_ok=True)
        self._key = (key, _key_check(key))
        return revoked


def _key_check(key: bytes) -> str:
    """A value that tells whether a key file holds this directory's key, without revealing the key."""
    return hmac.new(key, _KEY_CHECK_MESSAGE, "sha256").hexdigest()
