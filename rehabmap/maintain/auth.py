"""API tokens and roles for the people who keep the directory true.

A token reads `rmk_<id>_<secret>`. The id is public: it finds the token's row, so checking a token costs
one hash. The whole token is shown once, when it is made; the store keeps only a hash of the secret.

The secret is 256 random bits, not a password: nobody can guess it, so its hash need not be slow. It is
an HMAC-SHA-256 under the installation's token key (`keyed_hash`), which costs microseconds and no
memory, whether the secret is right or wrong. The key lives in its own file, not in the store, so a
leaked copy of the store alone does not even allow checking a guess (see `rehabmap.maintain.store`).

Tokens made before that were hashed with Argon2id (`LEGACY_PREFIX`). They still work: the first time one
is shown with its right secret it is rehashed with the key. Until then a wrong secret against one costs an
Argon2 check, ~20 ms of one core and 19 MiB; such checks run one at a time on a single thread of their
own, so a flood of wrong secrets queues there and never holds more than that one check's memory.

Roles:

* `admin`: everything a maintainer can do, plus the audit log and organisations.
* `maintainer`: create, edit, retire and verify any service; list what needs verifying.
* `provider`: for the services linked to its own organisation only: capacity, accepting referrals,
  contact details (`PROVIDER_FIELDS`), and verifying them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rehabmap.errors import Forbidden, Unauthenticated

TOKEN_PREFIX = "rmk"
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
KEYED_PREFIX = "hmac-sha256$"
LEGACY_PREFIX = "$argon2"
KEY_BYTES = 32
# Verifies legacy hashes only: the parameters are read from each hash.
_LEGACY_HASHER = PasswordHasher()
# One thread for every legacy check: they queue rather than run side by side, and the 19 MiB each one
# allocates is reused by the next instead of being kept by one allocator arena per thread.
_LEGACY_CHECKS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rehabmap-argon2")

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
    hash: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id and label, its role and (for providers) its organisation."""

    token_id: str
    name: str
    role: Role
    organisation_id: int | None = None
    organisation: str | None = None
    expires_at: str | None = None  # when the token stops working, so its holder can get a new one in time

    @property
    def who(self) -> str:
        """How the audit log names the caller: the token's label and id, nothing about a person's search."""
        return f"{self.name} (token {self.token_id})"

    def require(self, *roles: Role, action: str) -> None:
        if self.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise Forbidden(f"Only {allowed} tokens may {action}; this token's role is {self.role.value}.")


@dataclass(frozen=True)
class Rule:
    """Which roles may do an action, and how a refusal names it, held once: the write that enforces it and a face
    that asks first say the same (the API asks before it reads a request's values, so a caller learns that it may
    not do the thing before what is wrong with what it sent)."""

    action: str
    roles: tuple[Role, ...]

    def require(self, principal: Principal) -> None:
        """403 naming the roles that may, unless `principal` has one of them."""
        principal.require(*self.roles, action=self.action)


def make_token(key: bytes) -> NewToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}", keyed_hash(key, token_id, secret))


def parse_token(token: str) -> tuple[str, str]:
    """(id, secret) of a well-formed token, else 401."""
    match = _TOKEN.match(token.strip())
    if match is None:
        raise Unauthenticated("The bearer token is not a rehabmap token (they look like 'rmk_<id>_<secret>').")
    return match.group(1), match.group(2)


def keyed_hash(key: bytes, token_id: str, secret: str) -> str:
    """What the store keeps of a secret: HMAC-SHA-256 under the token key, bound to the token's id."""
    return KEYED_PREFIX + hmac.new(key, f"{token_id}:{secret}".encode(), hashlib.sha256).hexdigest()


def is_legacy(stored: str) -> bool:
    return stored.startswith(LEGACY_PREFIX)


def secret_matches(key: bytes, token_id: str, secret: str, stored: str) -> bool:
    """Whether the secret is the one `stored` was made from, in constant time for a keyed hash."""
    if is_legacy(stored):
        return _LEGACY_CHECKS.submit(_argon2_matches, secret, stored).result()
    return hmac.compare_digest(keyed_hash(key, token_id, secret), stored)


def _argon2_matches(secret: str, stored: str) -> bool:
    try:
        return _LEGACY_HASHER.verify(stored, secret)
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
