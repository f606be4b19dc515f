"""rehabmap as the Docker image installs it: the files the Dockerfile copies, built into a wheel and installed
into a folder of their own (`pip install .`, where the tests otherwise run the checkout's editable install), its
`rehabmap` command run from outside the checkout, as docker-compose.yml's replicas and jobs run it.

Before, the wheel held no `mappings/`, which the CSV importer and the ORUK feeds read from beside the packages:
installed so, `rehabmap index` refused the NHS website's real hospitals file ("no mapping for this CSV"), and
`rehabmap sync oruk` synced no feed at all and exited 0, so the compose file's scheduled job did nothing, and
said nothing. No index is reached: the wheel is built by the environment's own setuptools (`--no-index`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import make_home, serving

ROOT = Path(__file__).resolve().parents[1]
HOSPITALS = "nhs_website_hospitals_2018.csv"  # real: the NHS website's hospitals, read through mappings/


def image_files() -> list[str]:
    """What the Dockerfile copies into the image for `pip install .` (its lock of requirements aside)."""
    copied = []
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY "):
            copied += [name for name in line.split()[1:-1] if not name.startswith("requirements")]
    return copied


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the package is installed into; its `bin/rehabmap` is the image's command."""
    app = tmp_path_factory.mktemp("app")  # the image's /app, with no build left in the checkout
    for name in image_files():
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, app / name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        else:
            shutil.copy2(ROOT / name, app / name)
    wheels, site = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(app)],
                   check=True, capture_output=True, timeout=600)
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), *map(str, wheels.glob("*.whl"))],
                   check=True, capture_output=True, timeout=600)
    return site


def installed_env(site: Path, home: Path, data_dir: Path, **env: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site), "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir),
            **env}


def run_installed(site: Path, home: Path, data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(site / "bin" / "rehabmap"), *args], cwd=home, env=installed_env(site, home, data_dir,
                          **env), capture_output=True, text=True, timeout=900)


@pytest.fixture
def replay(data_dir: Path) -> Iterator[Replay]:
    yield from running(data_dir / "feeds")


def test_the_installed_command_runs_the_installed_code(installed, tmp_path, data_dir):
    """(What the tests below run is the wheel's code and the files it ships, not the checkout's.)"""
    home = tmp_path
    where = subprocess.run([sys.executable, "-c", "import indexer; from rehabmap.config import Settings; "
                            "from indexer.sources.csv_mapping import MAPPINGS_DIR; "
                            "print(indexer.__file__, MAPPINGS_DIR, Settings().oruk_feeds_dir)"],
                           cwd=home, env=installed_env(installed, home, data_dir), capture_output=True, text=True,
                           check=True).stdout.split()
    assert where == [str(installed / "indexer" / "__init__.py"), str(installed / "mappings"),
                     str(installed / "mappings" / "feeds")]


def test_the_installed_import_reads_the_nhs_websites_hospitals_by_the_mapping_it_ships(installed, tmp_path,
                                                                                       geodata_dir, data_dir):
    home = make_home(tmp_path / "home", geodata_dir)
    done = run_installed(installed, home, data_dir, "index", "--no-progress", str(ROOT / "sample"),
                         str(data_dir / "services" / HOSPITALS))
    assert done.returncode == 0, done.stderr
    assert "no mapping" not in done.stdout + done.stderr
    # its 1,231 rows read by the mapping: the mental health hospitals held for review (their type inferred, never
    # shown as rehab units until a maintainer confirms one), the rest filtered out by the mapping, each with its line
    assert done.stdout.startswith("read 1291, indexed 60, merged 0, rejected 942, held for review 289\n")
    assert f"rejected {HOSPITALS}:1231: filtered out by mapping nhs_website_hospitals_2018.toml" in done.stdout
    assert ("held nhs-hospitals-2018:NMV01 Kneesworth House: inferred: Level 1 inpatient rehabilitation unit"
            in done.stdout)
    queued = run_installed(installed, home, data_dir, "review", "list", "--source", "nhs-hospitals-2018")
    assert queued.stdout.startswith("289 records (pending)"), queued.stdout[:200]


def test_the_installed_sync_reads_the_oruk_feed_it_ships(installed, tmp_path, geodata_dir, data_dir, replay):
    """The compose file's `sync oruk` job: Bristol's feed file (its paging and its taxonomy's mapping) comes with
    the package; the feed's address is the recorded feed's."""
    home = make_home(tmp_path / "home", geodata_dir)
    bristol = json.loads((data_dir / "feeds" / "oruk" / "bristol_council_services_2024-12.json").read_text())
    done = run_installed(installed, home, data_dir, "sync", "oruk", "--dry-run", REHABMAP_ORUK_RATE="10000",
                         REHABMAP_ORUK_FEED_URLS=json.dumps({"bristol": replay.oruk_url("bristol")}))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"oruk-bristol (dry run: nothing written): fetched {len(bristol)}, "), done.stdout
    assert "not on the rehab pathway: no term the feed file maps" in done.stdout  # read by the file's mapping


def test_the_installed_server_serves_its_pages_and_their_assets(installed, tmp_path, geodata_dir, data_dir):
    home = make_home(tmp_path / "home", geodata_dir)
    assert run_installed(installed, home, data_dir, "index", "--no-progress", str(ROOT / "sample")).returncode == 0
    with serving(home, data_dir, command=[str(installed / "bin" / "rehabmap")], cwd=home,
                 PYTHONPATH=str(installed)) as url:
        for path in ("/find", "/static/rehabmap.css", "/static/nhsuk/nhsuk-frontend.min.js"):
            assert httpx.get(url + path, timeout=60).status_code == 200, path
        found = httpx.post(url + "/match", json={"home": {"postcode": "LS9 7TF"}}, timeout=60)
        assert found.status_code == 200 and found.json()["results"], found.text[:300]
