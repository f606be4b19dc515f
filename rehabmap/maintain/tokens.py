"""The API tokens in the store: made (the secret shown once), listed, revoked, and checked on every
request. Only a hash of each secret is kept; what a token looks like and what each role may do is
`rehabmap.maintain.auth`."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from rehabmap.errors import InvalidValue, Unauthenticated, UnknownToken
from rehabmap.maintain.audit import AuditLog, Change
from rehabmap.maintain.auth import Principal, Role, bearer, make_token, parse_token, secret_matches
from rehabmap.maintain.database import Database, now
from rehabmap.maintain.organisations import Organisations

_VERIFIED_FOR_S = 300.0
_VERIFIED_MAX = 10_000


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: Role
    organisation: str | None
    created_at: str
    revoked_at: str | None


class Tokens:
    def __init__(self, database: Database, audit: AuditLog, organisations: Organisations) -> None:
        self.database = database
        self.audit = audit
        self.organisations = organisations
        self._verified: dict[str, tuple[bytes, float]] = {}

    def create(self, role: Role | str, name: str, *, organisation: str | int | None = None,
               actor: str) -> tuple[TokenInfo, str]:
        """A new token; the returned string is the only copy of its secret."""
        role = Role(role)
        name = " ".join(name.split())
        if not 1 <= len(name) <= 100:
            raise InvalidValue("A token's label must be 1 to 100 characters.", field="name")
        if (role is Role.provider) != (organisation is not None):
            raise InvalidValue("A provider token needs --organisation, and only a provider token takes one.",
                               field="organisation")
        org = self.organisations.get(organisation) if organisation is not None else None
        new = make_token()
        at = now()
        with self.database.transaction() as conn:
            conn.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                         (new.id, name, role.value, org.id if org else None, new.salted_hash, at))
            self.audit.append(conn, actor, "create", "token", new.id,
                              [Change("role", None, role.value), Change("name", None, name)]
                              + ([Change("organisation", None, org.name)] if org else []), at)
        return TokenInfo(new.id, name, role, org.name if org else None, at, None), new.token

    def all(self) -> list[TokenInfo]:
        with self.database.connect() as conn:
            rows = conn.execute("SELECT t.id, t.name, t.role, o.name, t.created_at, t.revoked_at FROM tokens t "
                                "LEFT JOIN organisations o ON o.id = t.organisation_id ORDER BY t.created_at, t.id"
                                ).fetchall()
        return [TokenInfo(r[0], r[1], Role(r[2]), r[3], r[4], r[5]) for r in rows]

    def revoke(self, token_id: str, *, actor: str) -> TokenInfo:
        at = now()
        with self.database.transaction() as conn:
            row = conn.execute("SELECT revoked_at FROM tokens WHERE id = ?", (token_id,)).fetchone()
            if row is None:
                raise UnknownToken(f"No token with id '{token_id[:40]}'. 'rehabmap tokens list' shows them.",
                                   field="token_id")
            if row[0] is None:
                conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (at, token_id))
                self.audit.append(conn, actor, "revoke", "token", token_id, [Change("revoked_at", None, at)], at)
        return next(t for t in self.all() if t.id == token_id)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an `Authorization: Bearer` header, or 401 saying why not."""
        token_id, secret = parse_token(bearer(authorization))
        with self.database.connect() as conn:
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
        moment = time.monotonic()
        known = self._verified.get(token_id)
        if known is not None and known[1] > moment and hmac.compare_digest(known[0], digest):
            return True
        if not secret_matches(secret, salted_hash):
            return False
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token_id] = (digest, moment + _VERIFIED_FOR_S)
        return True
