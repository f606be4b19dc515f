"""One settings object for the whole product (environment prefix `REHABMAP_`)."""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rehabmap.errors import DomainError


def _default_data_dir() -> Path:
    """The workplace keeps the real ONS/NHS files in ../shared/data beside the checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path.cwd() / "data"


class Backend(str, Enum):
    embedded = "embedded"
    elasticsearch = "elasticsearch"


class InvalidSettings(DomainError):
    """A REHABMAP_ variable holds a value the product cannot run with."""

    code = "invalid_settings"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REHABMAP_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.cwd() / "var",
                       description="Where built geodata and the embedded index live.")
    data_dir: Path = Field(default_factory=_default_data_dir,
                           description="Official source files (ONSPD, boundaries, small areas).")
    backend: Backend = Backend.embedded
    elasticsearch_url: str | None = Field(default=None, validation_alias="ELASTICSEARCH_URL")
    elasticsearch_index: str = "rehabmap-services"
    elasticsearch_grace_seconds: int = Field(default=900, ge=0, description=(
        "How long a replaced Elasticsearch index generation is kept for readers still scanning it (exports, "
        "the gap analysis); a later build deletes it once this has passed."))
    capacity_max_age_days: int = Field(default=14, ge=1, le=365, description=(
        "A capacity report older than this many days reads as unknown in every answer and export."))
    log_level: str = "INFO"
    index_max_drop_share: float = Field(default=0.2, ge=0.0, le=1.0, description=(
        "The largest share (0 to 1) of the live index's services a rebuild may drop; `rehabmap index` "
        "refuses to swap in one that drops more, unless --force."))
    verify_after_days: int = Field(default=180, ge=1, le=3650,
                                   description="A service not verified for this many days is due for verification.")
    rate_limit_per_minute: int = Field(default=600, ge=0, description=(
        "Requests per minute one client (IP address) may make to the public endpoints, with bursts of up "
        "to this many; 0 turns rate limiting off."))
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Largest request body accepted.")
    public_base_url: str | None = Field(default=None, description=(
        "The site's address as the public reaches it (e.g. https://rehabmap.example.org), used for the "
        "absolute links rehabmap hands out; unset, those links are relative. Never taken from a request's "
        "Host header, which the caller controls."))
    token_expiry_days: int = Field(default=90, ge=1, le=3650,
                                   description="How long a new API token lasts unless its maker says otherwise.")
    token_max_expiry_days: int = Field(default=365, ge=1, le=3650,
                                       description="The longest an API token may be made to last.")
    token_key_file: Path | None = Field(default=None, description=(
        "The secret key API tokens are hashed with (default: REHABMAP_HOME/token.key, made on first use). "
        "Keep it out of the directory's backups, and back it up apart from them."))
    test_pause_in_write: str | None = Field(default=None, description=(
        "Tests only: 'directory' or 'index' makes a write pause inside that transaction (see tests/maintain)."))

    @field_validator("public_base_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be an absolute http(s) URL with no query or fragment, "
                             "e.g. https://rehabmap.example.org")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _expiry_within_maximum(self) -> Settings:
        if self.token_expiry_days > self.token_max_expiry_days:
            raise ValueError(f"REHABMAP_TOKEN_EXPIRY_DAYS ({self.token_expiry_days}) is more than "
                             f"REHABMAP_TOKEN_MAX_EXPIRY_DAYS ({self.token_max_expiry_days})")
        return self

    @property
    def geodata_dir(self) -> Path:
        return self.home / "geodata"

    @property
    def index_path(self) -> Path:
        return self.home / "index.sqlite"

    @property
    def directory_path(self) -> Path:
        """The maintainers' store: tokens, organisations, edits overlay, audit log (survives re-imports)."""
        return self.home / "directory.sqlite"

    @property
    def token_key_path(self) -> Path:
        return self.token_key_file or self.home / "token.key"

    def public_url(self, path: str, *, prefix: str = "") -> str:
        """A link to `path` (from the site's root, starting with '/') for people and programs to follow
        later: absolute on the configured public base URL (which includes any proxy prefix), else relative
        to the host the reader found it on, under `prefix` (the proxy prefix the server was told about)."""
        return f"{self.public_base_url}{path}" if self.public_base_url else f"{prefix}{path}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment; a bad value is an `InvalidSettings` naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidSettings("Invalid settings: " + "; ".join(_problem(e) for e in exc.errors()) + ".") from None


def _problem(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    name = str(error["loc"][0])
    return f"{name if name.isupper() else 'REHABMAP_' + name.upper()}: {message}"
