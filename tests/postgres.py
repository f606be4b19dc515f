"""A real PostgreSQL for the tests: one cluster per test session (bench/common.py's, with small settings),
in a temporary data directory on 127.0.0.1 and a free port, and a fresh database per store a test makes,
owned by an ordinary role (`APP_ROLE`: no superuser, as a deployment should run rehabmap), so the audit
log's revoked privileges are tested as they would hold in production.

Without PostgreSQL the tests that need it are skipped on a workstation and FAIL in CI (`CI` set), where
.ci/run installs it: a store that is not tested is not a store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest

from bench.common import pg_bindir, postgres

APP_ROLE = "rehabmap"
TEST_SETTINGS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB "
                 "-c max_connections=300 -c jit=off")


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int

    def superuser(self) -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user="postgres", dbname="postgres", autocommit=True)

    def new_database(self) -> str:
        """A fresh, empty database owned by `APP_ROLE`; its URL, as that role."""
        return self._create("")

    def copy_database(self, url: str) -> str:
        """A new database owned by `APP_ROLE` holding what the one at `url` (made by `new_database`) holds, copied
        by PostgreSQL as a template: a store's state made once and given to each test that writes to it, far
        cheaper than making it again. This process's pool for it is closed first (PostgreSQL copies no database
        anyone is connected to), so a store this process opened over `url` before is closed after, and says so at
        its next use (`PostgresDatabase`): open it again, over the copy if that is the one meant."""
        from rehabmap.maintain.postgres import close_pools

        close_pools(url)
        return self._create(f" TEMPLATE {url.rsplit('/', 1)[1]}")

    def _create(self, template: str) -> str:
        name = f"rehabmap_{uuid.uuid4().hex[:12]}"
        with self.superuser() as conn:
            conn.execute(f"CREATE DATABASE {name}{template} OWNER {APP_ROLE}")
        return f"postgresql://{APP_ROLE}@{self.host}:{self.port}/{name}"


def required(message: str) -> None:
    """In CI a missing PostgreSQL is a failure (.ci/run installs it); on a workstation, a skip."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    if pg_bindir() is None:
        required("PostgreSQL is not installed (apt-get install postgresql): the PostgreSQL store is not tested")
    with postgres(TEST_SETTINGS) as (host, port):
        server = PostgresServer(host, port)
        with server.superuser() as conn:
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
        try:
            yield server
        finally:
            from rehabmap.maintain.postgres import close_pools

            close_pools()
