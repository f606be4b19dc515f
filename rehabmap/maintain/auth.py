"""API tokens and roles for the people who keep the directory true.

A token reads `rmk_<id>_<secret>`. The id is public: it finds the token's row, so checking a token costs
one hash. Only an Argon2id hash of the secret is stored; the whole token is shown once, when it is made.

Roles:

* `admin`: everything a maintainer can do, plus the audit log and organisations.
* `maintainer`: create, edit, retire and verify any service; list what needs verifying.
* `provider`: for the services linked to its own organisation only: capacity, accepting referrals,
  contact details (`PROVIDER_FIELDS`), and verifying them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import Enum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rehabmap.errors import Forbidden, Unauthenticated

TOKEN_PREFIX = "rmk"
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
# OWASP's recommended Argon2id settings (19 MiB, 2 passes): about 20 ms a check on one core. The secret
# is 256 random bits, so the hash only has to make a leaked database useless, not resist guessing.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

# What a provider may change on its own services.
PROVIDER_FIELDS = frozenset({"capacity", "capacity_as_of", "accepting_referrals", "phone", "email", "website",
                             "referral_route"})


class Role(str, Enum):
    admin = "admin"
    maintainer = "maintainer"
    provider = "provider"


@dataclass(frozen=True)
class NewToken:
    """A freshly made token: `token` is the only time the secret exists outside the caller's hands."""

    id: str
    token: str
    salted_hash: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id and label, its role and (for providers) its organisation."""

    token_id: str
    name: str
    role: Role
    organisation_id: int | None = None
    organisation: str | None = None

    @property
    def who(self) -> str:
        """How the audit log names the caller: the token's label and id, nothing about a person's search."""
        return f"{self.name} (token {self.token_id})"

    def require(self, *roles: Role, action: str) -> None:
        if self.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise Forbidden(f"Only {allowed} tokens may {action}; this token's role is {self.role.value}.")


def make_token() -> NewToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}", _HASHER.hash(secret))


def parse_token(token: str) -> tuple[str, str]:
    """(id, secret) of a well-formed token, else 401."""
    match = _TOKEN.match(token.strip())
    if match is None:
        raise Unauthenticated("The bearer token is not a rehabmap token (they look like 'rmk_<id>_<secret>').")
    return match.group(1), match.group(2)


def secret_matches(secret: str, salted_hash: str) -> bool:
    try:
        return _HASHER.verify(salted_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def bearer(authorization: str | None) -> str:
    """The token from an `Authorization: Bearer <token>` header, else 401 saying what was wrong."""
    if not authorization:
        raise Unauthenticated("This needs an API token: send 'Authorization: Bearer <token>'. "
                              "An admin makes tokens with 'rehabmap tokens create'.", error="invalid_request")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("Send the token as 'Authorization: Bearer <token>'.", error="invalid_request")
    return value.strip()
