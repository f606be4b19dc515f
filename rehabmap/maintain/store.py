"""The maintainers' store: what maintainers and providers change, kept apart from the index.

`rehabmap index` rebuilds the whole index from its sources, so the edits live here, in their own SQLite
file (`REHABMAP_HOME/directory.sqlite`, see `database`) or, when `REHABMAP_DATABASE_URL` is set, in
PostgreSQL (`postgres`), shared by every API host; and are laid over every new build
(`rehabmap.maintain.edits.OverlayWriter`). The store has six parts, each a module of its own:

* `tokens` — the API tokens (hashes only), made, listed, revoked and checked;
* `organisations` — provider organisations and which of them owns which service;
* `overlay` — per edited service, the fields changed here;
* `audit` — the append-only log of every change, one row per field;
* `sessions` — the keepers' pages' signed-in sessions and one-time sign-in links (hashes only);
* `reports` — problems the public reports with a service's page, the maintainers' queue of them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rehabmap.maintain.audit import AuditLog
from rehabmap.maintain.database import Database, SqliteDatabase
from rehabmap.maintain.migrations import opened
from rehabmap.maintain.organisations import Organisations
from rehabmap.maintain.overlay import Overlay
from rehabmap.maintain.reports import ProblemReports, ReportPolicy
from rehabmap.maintain.sessions import SessionPolicy, Sessions
from rehabmap.maintain.tokens import TokenPolicy, Tokens

if TYPE_CHECKING:
    from rehabmap.config import Settings


# One rebuild of the live index at a time, across processes and hosts: `rehabmap index` and a maintainers' upload
# (`app.rebuild`), and a first build (`indexer.sync.live.LiveIndex`), a named lock of the store (`Database.named_lock`).
REBUILD_LOCK = "rebuild"


class Directory:
    """The store: one database, six parts, brought up to the latest migration when opened. Safe from any
    thread or process. `store` is the SQLite file's path, or an open database (PostgreSQL, see
    `open_database`); the token key file defaults to `token.key` beside an SQLite file."""

    def __init__(self, store: str | Path | Database, *, key_file: Path | None = None,
                 tokens: TokenPolicy = TokenPolicy(), sessions: SessionPolicy = SessionPolicy(),
                 reports: ReportPolicy = ReportPolicy()) -> None:
        self.database: Database = opened(Path(store) if isinstance(store, str) else store, tokens)
        if key_file is None:
            if not isinstance(self.database, SqliteDatabase):
                raise ValueError("a PostgreSQL store needs its token key file")
            key_file = self.database.path.with_name("token.key")
        self.audit = AuditLog(self.database)
        self.overlay = Overlay(self.database, self.audit)
        self.organisations = Organisations(self.database, self.audit)
        self.tokens = Tokens(self.database, self.audit, self.organisations, key_file=Path(key_file), policy=tokens)
        self.sessions = Sessions(self.database, policy=sessions)
        self.reports = ProblemReports(self.database, self.audit, policy=reports)

    @classmethod
    def from_settings(cls, settings: Settings) -> Directory:
        return cls(open_database(settings), key_file=settings.token_key_path,
                   tokens=TokenPolicy(settings.token_expiry_days, settings.token_max_expiry_days),
                   sessions=SessionPolicy(timedelta(minutes=settings.keepers_idle_minutes),
                                          timedelta(hours=settings.keepers_session_hours),
                                          timedelta(minutes=settings.keepers_link_minutes)),
                   reports=ReportPolicy(settings.problem_reports_per_hour,
                                        settings.problem_reports_per_service_per_hour))

    @classmethod
    def existing(cls, settings: Settings) -> Directory | None:
        """The store, if there is one: always on PostgreSQL; on SQLite, once its file exists."""
        if settings.database_url is None and not settings.directory_path.is_file():
            return None
        return cls.from_settings(settings)

    def index_lock(self) -> AbstractContextManager[None]:
        """Held by every write that goes on to the live index, and by a rebuild around its swap (see
        `Database.index_lock`)."""
        return self.database.index_lock()

    def rebuild_lock(self) -> AbstractContextManager[bool]:
        """Held by a rebuild of the live index (`REBUILD_LOCK`), taken without waiting: False while another has it."""
        return self.database.named_lock(REBUILD_LOCK)


def open_database(settings: Settings) -> Database:
    """PostgreSQL when REHABMAP_DATABASE_URL is set, else the SQLite file in REHABMAP_HOME."""
    if settings.database_url is not None:
        from rehabmap.maintain.postgres import PostgresDatabase

        return PostgresDatabase(settings.database_url.get_secret_value())
    return SqliteDatabase(settings.directory_path)


def store_of(settings: Settings) -> Path | Database:
    """The store as the sync store and the coverage claims take it: PostgreSQL when REHABMAP_DATABASE_URL is
    set, else the SQLite file's path (opened only by a write, so reading a home without one makes none)."""
    return settings.directory_path if settings.database_url is None else open_database(settings)
