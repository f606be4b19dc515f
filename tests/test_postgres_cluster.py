"""The tests' PostgreSQL cluster starts even when its port is taken between choosing it and binding it.

PostgreSQL cannot take an inherited socket, so a port is chosen free and then bound by the server; a second
test worker can take it in between. Here the first port offered is held open on purpose."""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import bench.common
from bench.common import free_port, pg_bindir, postgres
from tests.postgres import TEST_SETTINGS, required


def test_a_cluster_whose_first_port_is_taken_starts_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    if pg_bindir() is None:
        required("PostgreSQL is not installed (apt-get install postgresql)")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        offered: Iterator[int] = iter([taken, free_port(), free_port()])
        monkeypatch.setattr(bench.common, "free_port", lambda: next(offered))
        with postgres(TEST_SETTINGS) as (host, port):
            assert port != taken
            with socket.create_connection((host, port), timeout=120):
                pass
