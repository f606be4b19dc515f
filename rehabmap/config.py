"""One settings object for the whole product (environment prefix `REHABMAP_`)."""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rehabmap.england_day import england_today
from rehabmap.errors import DomainError


def _default_data_dir() -> Path:
    """The workplace keeps the real ONS/NHS files in ../shared/data beside the checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path.cwd() / "data"


def _default_cache_dir() -> Path | None:
    """The user's cache folder (XDG): files derived from the installed code, shared by every server and command
    the user runs, whatever their home; None when the user has no home folder."""
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "rehabmap"
    try:
        return Path.home() / ".cache" / "rehabmap"
    except RuntimeError:
        return None


class Backend(str, Enum):
    embedded = "embedded"
    elasticsearch = "elasticsearch"


class SearchEngine(str, Enum):
    """Which cluster the search engine backend talks to, each with its own official client."""

    elasticsearch = "elasticsearch"  # Elasticsearch 8, the `elasticsearch` client
    opensearch = "opensearch"  # OpenSearch 2, the `opensearch-py` client


class InvalidSettings(DomainError):
    """A REHABMAP_ variable holds a value the product cannot run with."""

    code = "invalid_settings"


# The system's roots, where a server's secrets, certificates and other files lie ('/etc/rehabmap/es-ca.pem',
# '/run/secrets/db_password'): an error people read names no path under them, whatever the settings point at (an
# API's path, '/api/v1/…', starts with none of them).
SYSTEM_FOLDERS = tuple(Path(folder) for folder in ("/etc", "/srv", "/opt", "/var", "/mnt", "/run", "/home", "/root",
                                                   "/usr", "/tmp"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REHABMAP_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.cwd() / "var",
                       description="Where built geodata and the embedded index live.")
    data_dir: Path = Field(default_factory=_default_data_dir,
                           description="Official source files (ONSPD, boundaries, small areas).")
    cache_dir: Path | None = Field(default_factory=_default_cache_dir, description=(
        "Where the pages' compiled templates are kept between starts ($XDG_CACHE_HOME/rehabmap, else "
        "~/.cache/rehabmap). It holds code the server runs: only the server's user may write it. Unwritable: "
        "the pages are compiled at each start."))
    backend: Backend = Backend.embedded
    search_engine: SearchEngine = Field(default=SearchEngine.elasticsearch, description=(
        "With REHABMAP_BACKEND=elasticsearch: the kind of cluster at ELASTICSEARCH_URL, 'elasticsearch' (8) "
        "or 'opensearch' (2); each is spoken to with its own client."))
    elasticsearch_url: str | None = Field(default=None, validation_alias="ELASTICSEARCH_URL", description=(
        "The cluster's nodes, comma-separated (https://es1:9200,https://es2:9200): the client spreads requests "
        "over them and moves past one that does not answer."))
    elasticsearch_api_key: SecretStr | None = Field(default=None, description=(
        "An Elasticsearch/OpenSearch API key (the base64 'encoded' value the cluster gives), sent as "
        "'Authorization: ApiKey'."))
    elasticsearch_ca_file: Path | None = Field(default=None, description=(
        "A PEM bundle of the certificate authorities the cluster's TLS certificate is checked against."))
    database_url: SecretStr | None = Field(default=None, description=(
        "A PostgreSQL database (postgresql://user:password@host:5432/name) to keep the maintainers' store in, "
        "shared by every API host, instead of the SQLite file in REHABMAP_HOME."))
    elasticsearch_index: str = "rehabmap-services"
    elasticsearch_grace_seconds: int = Field(default=900, ge=0, description=(
        "How long a replaced Elasticsearch index generation is kept for readers still scanning it (exports, "
        "the gap analysis); a later build deletes it once this has passed."))
    today: date | None = Field(default=None, description=(
        "The date answers are given as of (the age of capacity reports and verifications), instead of the "
        "machine's: to reproduce an answer as it stood on a day, or to keep a test and the server it started "
        "on one date across midnight."))
    capacity_max_age_days: int = Field(default=14, ge=1, le=365, description=(
        "A capacity report older than this many days reads as unknown in every answer and export."))
    listing_max_age_days: int = Field(default=14, ge=1, le=365, description=(
        "A match says of a result whose every live source (CQC, NHS Service Search, an ORUK feed, CQC's monthly "
        "files) last confirmed it more than this many days ago that it is not confirmed since (its sync stopped or "
        "fails)."))
    sync_max_change_share: float = Field(default=0.25, ge=0, le=1, description=(
        "A sync that would change or retire more than this share of a source's records stops unless --force."))
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
    warm_up: bool = Field(default=True, description=(
        "Load the index, the geography and the pages' templates and map boundaries when the server starts, "
        "so that the first request is as quick as the rest (bench/bench_first_request.py)."))
    converge_every_s: float = Field(default=30.0, ge=0, description=(
        "How often a running server looks (three indexed reads) for applied sync changes its live index has not "
        "followed (a sync or review decision killed in between), and writes them; 0: only at its start."))
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
    keepers_idle_minutes: int = Field(default=30, ge=1, le=24 * 60, description=(
        "A keepers' pages session ends after this many minutes without a request."))
    keepers_session_hours: int = Field(default=8, ge=1, le=7 * 24, description=(
        "A keepers' pages session ends this many hours after sign-in, however much it is used."))
    keepers_link_minutes: int = Field(default=15, ge=1, le=7 * 24 * 60, description=(
        "How long a one-time sign-in link from 'rehabmap tokens sign-in-link' works."))
    problem_reports_per_hour: int = Field(default=60, ge=1, description=(
        "The most problem reports the public may send in an hour, for the whole site."))
    problem_reports_per_service_per_hour: int = Field(default=5, ge=1, description=(
        "The most problem reports the public may send in an hour about one service."))

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

    # Sources a sync reads (indexer/sync/connectors/__init__.py says what each is; keys are SecretStr, so they
    # never appear in a repr, a log line or an error). Rates are requests per second, per source.
    cqc_api_url: str = "https://api.service.cqc.org.uk/public/v1"
    cqc_api_key: SecretStr | None = Field(default=None, description="CQC API 'Syndication' subscription key.")
    cqc_rate: float = Field(default=5.0, gt=0)
    cqc_page_size: int = Field(default=1000, ge=1, le=1000)
    cqc_ratings_url: str | None = Field(default=None, description=(
        "This month's CQC 'Latest ratings' file (.ods or .csv); CQC renames it monthly."))
    cqc_directory_url: str | None = Field(default=None, description="This month's CQC care directory CSV.")
    cqc_hsca_url: str | None = Field(default=None, description="This month's CQC 'HSCA Active Locations' .ods.")
    cqc_files_rate: float = Field(default=1.0, gt=0)
    ods_url: str = "https://files.digital.nhs.uk/assets/ods/current"
    ods_reports: list[str] = Field(default_factory=lambda: ["ets", "ephpsite"])
    ods_rate: float = Field(default=1.0, gt=0)
    nhs_service_search_url: str = "https://api.service.nhs.uk/service-search-api"
    nhs_service_search_key: SecretStr | None = Field(default=None, description="NHS website Service Search key.")
    nhs_service_search_rate: float = Field(default=10.0, gt=0)
    charity_url: str = "https://ccewuksprdoneregsadata1.blob.core.windows.net/data/json"
    charity_rate: float = Field(default=1.0, gt=0)
    oruk_feeds_dir: Path = Field(default_factory=lambda: Path(__file__).resolve().parents[1] / "mappings" / "feeds",
                                 description="One <feed>.toml per ORUK feed: its URL, paging and taxonomy mapping.")
    oruk_feed_urls: dict[str, str] = Field(default_factory=dict, description=(
        'Feed URLs by feed name, overriding the feed files, as JSON: {"bristol": "https://..."}.'))
    oruk_rate: float = Field(default=2.0, gt=0)
    sync_timeout: float = Field(default=30.0, gt=0, description="Seconds to connect, and between bytes read.")
    sync_retries: int = Field(default=5, ge=0)
    sync_backoff_max: float = Field(default=60.0, gt=0)
    sync_retry_after_max: float = Field(default=120.0, ge=0, description=(
        "A source asking (Retry-After) to wait longer than this many seconds is treated as down for this run."))

    @field_validator("elasticsearch_ca_file")
    @classmethod
    def _readable_ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    def current_date(self, england: date | None = None) -> date:
        """REHABMAP_TODAY when set, else the day in England (`england_today`): the one clock every face answers as
        of; never the day a write stamps (`AppState.days`, which gives `england` as it read it). Matching,
        the API's and pages' answers (capacity and verification ages, the commissioners' pages and their
        out-of-area placements' age), `rehabmap match`, `verify-due` and `gaps` all ask it, so an answer can be
        reproduced as it stood on a day."""
        return self.today or england or england_today()

    @property
    def elasticsearch_hosts(self) -> list[str]:
        return [host.strip() for host in (self.elasticsearch_url or "").split(",") if host.strip()]

    @property
    def geodata_dir(self) -> Path:
        return self.home / "geodata"

    @property
    def own_folders(self) -> tuple[Path, ...]:
        """The server's own folders, which an error people read must not name (`said_without_folders`): its home,
        data, cache and feed folders, those of the files it is given (the token key's, the cluster's CA bundle's),
        the temp folder, its code and Python's, the user's home and the working folder, and the system's roots
        (`SYSTEM_FOLDERS`: before, '/etc/rehabmap/es-ca.pem' was said whole); the filesystem's root never (every path
        is in it). Each also as its links resolve, as an exception may quote either."""
        try:
            user = [Path.home()]
        except RuntimeError:  # a user with no home folder
            user = []
        files = [self.token_key_path, self.elasticsearch_ca_file]
        given = [self.home, self.data_dir, self.cache_dir, self.oruk_feeds_dir,
                 *(file.parent for file in files if file is not None), Path(tempfile.gettempdir()),
                 Path(__file__).resolve().parents[1], Path(sys.prefix), Path(sys.base_prefix), *user, Path.cwd(),
                 *SYSTEM_FOLDERS]
        folders = [folder.absolute() for folder in given if folder is not None]
        return tuple(dict.fromkeys(f for folder in folders for f in (folder, folder.resolve()) if f != f.parent))

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
