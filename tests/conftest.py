"""Shared fixtures: the real ONS/NHS files in ../shared/data, and geodata built from them once; the session's
search server and PostgreSQL cluster (one of each per xdist worker)."""

from __future__ import annotations

import csv
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from geodata.geography import Geography
from rehabmap.config import Settings
from search.engine import SearchClient
from tests.built_geodata import built_geodata, cache_root
from tests.collection import (  # noqa: F401 (hooks: pytest finds them here by their names)
    pytest_collect_directory, pytest_collection_modifyitems)
from tests.es_server import SearchServer, drop_indices, osmem_binary, search_server
from tests.postgres import PostgresServer, postgres_server


def _keep_bytecode() -> None:
    """Let this run's Python processes keep their compiled bytecode, out of the checkout, in the test cache.

    A run starts ~200 Python processes (two pytest workers, each `rehabmap` command and server a test runs):
    with PYTHONDONTWRITEBYTECODE set (the Dockerfile's and this machine's environment), each compiled the
    project's modules from source again, and each worker parsed and assertion-rewrote every test module and
    the pytest plugins' packages (schemathesis, hypothesis: ~11 s of a worker's 16 s of collection CPU).
    The cache lives beside the built geodata (tests/built_geodata.py `cache_root`), so the tree stays as the
    setting keeps it; the workers and every process a test starts inherit this environment (this conftest is
    read before xdist starts its workers). Python checks each file's size and time, so an edit is compiled
    again, and a fresh clone's files once."""
    prefix = str(cache_root() / "bytecode")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", prefix)
    sys.dont_write_bytecode = False
    sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]


_keep_bytecode()


@pytest.fixture(autouse=True)
def fresh_operator_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own `tell_operator` memory: the process's remembers a problem's line for a minute
    (`rehabmap.errors.OperatorLog`), so a test expecting the operator to be told of a file another test in the
    same worker met would find its line swallowed, by the order the tests ran in."""
    from rehabmap import errors

    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog())


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Settings().data_dir
    if not (path / "smallareas").is_dir():
        pytest.fail(f"real data not found at {path}: put ../shared beside the checkout or set REHABMAP_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def leeds_triangle(data_dir: Path) -> dict[str, dict]:
    """A catchment of three Leeds small areas' centroids, as ONS gives them (`smallareas/`): in longitude and
    latitude ("degrees") and in British National Grid eastings and northings ("bng"), the mistake English
    geodata invites."""
    wanted = ("E01011610", "E01011524", "E01011489")
    with (data_dir / "smallareas" / "england_lsoa21_pwc_population_icb_lad.csv").open(newline="") as f:
        found = {r["lsoa21_code"]: r for r in csv.DictReader(f) if r["lsoa21_code"] in wanted}
    corners = [found[code] for code in (*wanted, wanted[0])]

    def ring(x: str, y: str) -> dict:
        return {"type": "Polygon", "coordinates": [[[float(c[x]), float(c[y])] for c in corners]]}
    return {"degrees": ring("lon", "lat"), "bng": ring("bng_e", "bng_n")}


@pytest.fixture(scope="session")
def west_yorkshire_icb(data_dir: Path) -> dict[str, dict]:
    """NHS West Yorkshire ICB's boundary as ONS gives it (`boundaries/icb_2023_bsc.geojson`), a real catchment: in
    longitude and latitude ("degrees"), and with each position written latitude first ("swapped"), in range for
    degrees."""
    with (data_dir / "boundaries" / "icb_2023_bsc.geojson").open() as f:
        (found,) = [f["geometry"] for f in json.load(f)["features"] if f["properties"]["ICB23CD"] == "E54000054"]
    assert found["type"] == "Polygon"
    swapped = [[[y, x] for x, y in ring] for ring in found["coordinates"]]
    return {"degrees": found, "swapped": {"type": "Polygon", "coordinates": swapped}}


@pytest.fixture(scope="session")
def geodata_dir(data_dir: Path) -> Path:
    """The real postcodes, places and boundaries, built once for the state of the source files and the
    geodata code (~20 s of CPU; tests/built_geodata.py), shared read-only by every test and xdist worker."""
    return built_geodata(data_dir)


@pytest.fixture(scope="session")
def geography(geodata_dir: Path) -> Iterator[Geography]:
    geo = Geography.open(geodata_dir)
    yield geo
    geo.close()


@pytest.fixture(scope="session")
def sample_index(geography: Geography, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample directory through the real import pipeline, once per session (here, not in tests/maintain,
    because tests/keepers' sites are made from it too: imported there, it was built a second time); tests
    copy the file."""
    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.sources import load_source
    from search.embedded import EmbeddedWriter

    path = tmp_path_factory.mktemp("maintain-sample") / "index.sqlite"
    sample = Path(__file__).resolve().parents[1] / "sample"
    report = build_index(load_source(sample), GeographyPlacer(geography), EmbeddedWriter(path), progress=False)
    assert not report.rejected and report.indexed == 60
    return path


@pytest.fixture(scope="session")
def cqc_synced_home(tmp_path_factory: pytest.TempPathFactory, geodata_dir: Path, data_dir: Path) -> Path:
    """A home that `rehabmap sync cqc` (a real process) filled from the recorded CQC API (tests/sync/replay.py),
    once per session. Never served or written: a module that reads a synced directory (`synced_home` in
    tests/web/real_feeds_home.py) and a test that syncs on from one each take a copy, so what one writes or
    logs no other sees. It stands for the first sync that nine files made per module or per test (19 in all,
    each a `rehabmap` process placing the 103 recorded locations on the real geodata); the tests that check a
    first sync's own report still make theirs."""
    from tests.sync.replay import running
    from tests.sync.store_fixtures import make_home, rehabmap

    home = make_home(tmp_path_factory.mktemp("cqc-synced") / "home", geodata_dir)
    for replay in running(data_dir / "feeds"):
        done = rehabmap(home, data_dir, replay, "sync", "cqc")
        assert done.returncode == 0, done.stderr
        assert "held cqc:1-112845365 Field House: inferred: Level 1 inpatient rehabilitation unit" in done.stdout
    return home


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session (tests/postgres.py); skipped without one, failing in CI."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def es_server() -> Iterator[SearchServer]:
    """The session's search server (tests/es_server.py), here rather than in tests/index so that every module
    that searches one shares it: a fixture imported into a module is a definition of its own, and each of the
    five that imported it started an osmem of its own. Each test writes under an index name of its own."""
    if "ELASTICSEARCH_URL" not in os.environ and osmem_binary() is None:
        pytest.skip("no search server: install osmem-server or set ELASTICSEARCH_URL")
    with search_server() as server:
        yield server


@pytest.fixture(scope="session")
def es_client(es_server: SearchServer) -> Iterator[SearchClient]:
    client = es_server.client()
    yield client
    client.close()


@pytest.fixture
def es_settings(es_server: SearchServer, es_client: SearchClient) -> Iterator[Settings]:
    """Settings naming a fresh index alias; every index made under it is deleted afterwards."""
    base = f"rehabmap-test-{uuid.uuid4().hex[:10]}"
    yield Settings(ELASTICSEARCH_URL=es_server.url, elasticsearch_index=base)
    drop_indices(es_client, base)


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Run a test against each kind of maintainers' store: the SQLite file, and PostgreSQL."""
    return request.param


def database_url(request: pytest.FixtureRequest, kind: str) -> str | None:
    """A fresh PostgreSQL database's URL for `kind` 'postgres' (starting the session's server), else None."""
    return request.getfixturevalue("postgres").new_database() if kind == "postgres" else None

