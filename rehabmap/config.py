"""One settings object for the whole product (environment prefix `REHABMAP_`)."""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REHABMAP_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.cwd() / "var",
                       description="Where built geodata and the embedded index live.")
    data_dir: Path = Field(default_factory=_default_data_dir,
                           description="Official source files (ONSPD, boundaries, small areas).")
    backend: Backend = Backend.embedded
    elasticsearch_url: str | None = Field(default=None, validation_alias="ELASTICSEARCH_URL")
    elasticsearch_index: str = "rehabmap-services"
    capacity_max_age_days: int = 14
    sync_max_change_share: float = Field(default=0.25, ge=0, le=1, description=(
        "A sync that would change or retire more than this share of a source's records stops unless --force."))
    log_level: str = "INFO"
    verify_after_days: int = Field(default=180, ge=1, le=3650,
                                   description="A service not verified for this many days is due for verification.")
    rate_limit_per_minute: int = Field(default=600, ge=0, description=(
        "Requests per minute one client (IP address) may make to the public endpoints, with bursts of up "
        "to this many; 0 turns rate limiting off."))
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Largest request body accepted.")
    test_pause_in_write: str | None = Field(default=None, description=(
        "Tests only: 'directory' or 'index' makes a write pause inside that transaction (see tests/maintain)."))

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
