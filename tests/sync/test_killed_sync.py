"""A `python -m cli sync cqc` killed (SIGKILL: nothing cleans up) at each step of its run, against the replay of
the CQC API (the 103 real recorded locations): what is on disk then, and what `serve`, `/health`, `sync-status`
and the next run make of it. REHABMAP_TEST_PAUSE_AT=<step> (`indexer.sync.steps`) stops the run at the step
and says so on stderr; the test waits for that line, then kills it. Nothing here waits a length of time."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from app.converge import CONVERGE_LOCK
from rehabmap.config import Settings
from rehabmap.maintain.database import named_lock_of
from rehabmap.maintain.store import REBUILD_LOCK
from search.embedded import index_file
from tests.cqc_records import ASHTON, ASHTON_ID
from tests.maintain.conftest import make_app
from tests.sync.replay import Replay
from tests.sync.store_fixtures import (
    first_line,
    in_process,
    index_record,
    make_home,
    mistyped_supersedes,
    rehabmap,
    serving,
    start_rehabmap,
    table_rows,
)

HANG_S = 300  # only a run that would hang waits this long


def killed_at(step: str, home: Path, data_dir: Path, replay: Replay, *args: str) -> str:
    """Run `sync cqc ARGS` until it says it paused at `step`, then SIGKILL it; returns what it wrote."""
    return command_killed_at(step, home, data_dir, replay, "sync", "cqc", *args)


def command_killed_at(step: str, home: Path, data_dir: Path, replay: Replay, *command: str) -> str:
    """Run the `rehabmap` command until it says it paused at `step`, then SIGKILL it; returns what it wrote."""
    with paused_at(step, home, data_dir, replay, *command) as log:
        pass
    return log.read_text()


@contextmanager
def paused_at(step: str, home: Path, data_dir: Path, replay: Replay, *command: str) -> Iterator[Path]:
    """The `rehabmap` command running, paused at `step` (it said so in its log, yielded), until SIGKILLed as the
    block ends."""
    log = home / f"killed-at-{step}.log"
    process = start_rehabmap(home, data_dir, replay, log, *command, REHABMAP_TEST_PAUSE_AT=step)
    try:
        deadline = time.monotonic() + HANG_S
        while f"paused at {step}" not in log.read_text():
            assert process.poll() is None, f"the command ended before {step}: {log.read_text()}"
            assert time.monotonic() < deadline, f"the command never reached {step}"
            time.sleep(0.05)
        yield log
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def status(home: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return rehabmap(home, data_dir, None, "sync-status")


def beds(url: str) -> int:
    return int(httpx.get(f"{url}/services/{ASHTON_ID}", timeout=60).json()["beds"])


@pytest.mark.parametrize("step", ["fetched", "applied", "index-written", "live"])
def test_a_run_killed_at_each_step_converges(step, cqc_synced_home, tmp_path, data_dir, replay):
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    assert index_record(home, ASHTON_ID)["beds"] == 27
    replay.cqc.alter(ASHTON, numberOfBeds=31)

    killed_at(step, home, data_dir, replay)

    in_index = index_record(home, ASHTON_ID)["beds"]
    assert in_index == (27 if step in ("fetched", "applied") else 31), "the index is the previous one, or the new"
    said = status(home, data_dir)
    assert said.returncode == 0, "nothing waits for a person"
    behind = "applied changes are not yet in the live index" in said.stdout
    assert behind == (step in ("applied", "index-written", "live")), said.stdout
    if step == "fetched":
        assert "unfinished run since " in said.stdout and "the next run goes on from it" in said.stdout

    with serving(home, data_dir) as url:  # the server's start finishes an applied run
        assert httpx.get(f"{url}/health", timeout=60).json()["status"] == "ok"
        assert beds(url) == (27 if step == "fetched" else 31)
    after_start = status(home, data_dir)
    assert "not yet in the live index" not in after_start.stdout, after_start.stdout

    again = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert again.returncode == 0, again.stderr
    assert first_line(again)["changed"] == (1 if step == "fetched" else 0), "applied once, never twice"
    assert index_record(home, ASHTON_ID)["beds"] == 31


def test_coverage_claims_alone_due_are_not_said_held_back_by_a_mapping_put_wrong(cqc_synced_home, tmp_path, data_dir,
                                                                                  replay, monkeypatch):
    """A run that changed no record, killed once it applied: only CQC's coverage claims (that they hold as of today)
    wait to be made, and then a mapping's `supersedes` is put wrong. Making the claims reads no mapping (only writing
    records does, `LiveIndex.catch_up`), so nothing refuses them. Before, sync-status said "HELD BACK: 1 applied
    change is stored, but not yet shown in searches: mapping …" with exit status 3, /health gave those words as
    `held_back` (and so did not wake the server's look) and the server's look remembered a refusal, until the first
    try made them. Now they are said to wait for the next sync, review decision or server start, which makes them,
    the mapping still wrong. In this process: the mapping is put wrong where this process reads it."""
    from api.application import create_api
    from app.parts import open_state
    from starlette.testclient import TestClient

    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    killed_at("applied", home, data_dir, replay)
    mistyped_supersedes(tmp_path, monkeypatch)
    monkeypatch.setenv("REHABMAP_HOME", str(home))
    monkeypatch.setenv("REHABMAP_DATA_DIR", str(data_dir))
    settings = Settings(home=home, data_dir=data_dir)

    said = in_process("sync-status")
    [cqc] = json.loads(in_process("sync-status", "--json").stdout)
    with TestClient(create_api(open_state(settings))) as api:  # the API alone: no catch-up at its start
        health = api.get("/health").json()

    assert said.exit_code == 0, said.output
    assert "  1 applied changes are not yet in the live index or its coverage (a run or review decision was cut " \
           "short): the next sync, review decision or server start writes them" in said.stdout.splitlines(), said.stdout
    assert "HELD BACK" not in said.stdout
    assert (cqc["not_live"], cqc["held_back"], cqc["remedy"]) == (1, None, None)
    assert (health["status"], health["not_live"], health["held_back"]) == ("degraded", 1, None)
    with TestClient(make_app(settings)) as server:  # its start makes the claims, the mapping still wrong
        assert server.get("/health").json()["not_live"] == 0


def test_a_running_server_catches_up_with_a_killed_run_on_its_own(cqc_synced_home, tmp_path, data_dir, replay):
    """A sync killed after applying, while a server of two workers runs. Before, the server served the previous
    data until the next sync, review decision or restart, and /health said "degraded" meanwhile. Now it says so
    only while a converge cannot run (the test holds the converge lock, as a worker converging would), and then
    the server's own look, on its timer, writes the change: once, by one worker, with every answer in between
    from a complete index."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    with serving(home, data_dir, "--workers", "2", REHABMAP_CONVERGE_EVERY_S="1") as url:
        before = httpx.get(f"{url}/health", timeout=60).json()
        assert before["not_live"] == 0
        replay.cqc.alter(ASHTON, numberOfBeds=31)

        with named_lock_of(home / "directory.sqlite", CONVERGE_LOCK) as taken:
            assert taken
            killed_at("applied", home, data_dir, replay)
            behind = httpx.get(f"{url}/health", timeout=60)
            assert behind.status_code == 200 and beds(url) == 27
            # Ashton Lodge's record and CQC's coverage claims, as sync-status counts them.
            assert (behind.json()["status"], behind.json()["not_live"]) == ("degraded", 2)
            assert "2 applied changes are not yet in the live index" in status(home, data_dir).stdout

        deadline = time.monotonic() + HANG_S
        while (answer := httpx.get(f"{url}/services/{ASHTON_ID}", timeout=60)).json()["beds"] != 31:
            assert answer.status_code == 200 and answer.json()["beds"] == 27
            listed = httpx.get(f"{url}/services", params={"per_page": 1}, timeout=60)
            assert listed.status_code == 200 and listed.json()["total"] == before["services"]
            assert time.monotonic() < deadline, "the server never caught up"
            time.sleep(0.05)

        caught_up = httpx.get(f"{url}/health", timeout=60).json()
        assert (caught_up["status"], caught_up["not_live"]) == ("ok", 0)
        assert caught_up["services"] == before["services"]
    logs = "".join(path.read_text() for path in home.glob("server-*.log"))
    assert logs.count("wrote 1 synced record the live index lacked") == 1, "one worker wrote it, once"
    again = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert again.returncode == 0 and first_line(again)["changed"] == 0, "applied once, never twice"


def test_a_first_run_killed_after_it_applied_claims_no_coverage_until_its_records_are_live(
        tmp_path, geodata_dir, data_dir, replay):
    """The first run of a complete listing makes CQC's coverage claims ("CQC lists every care home here"). Killed
    after its commit and before the index was built, no claim may stand: "none found, and the source covers this
    area" beside an index that lacks what the source listed would be a false answer. The next run builds the index
    from the store, then makes the claims."""
    home = make_home(tmp_path / "home", geodata_dir)

    killed_at("applied", home, data_dir, replay)

    assert not index_file(home).exists()
    assert table_rows(home / "directory.sqlite", "SELECT count(*) FROM coverage_claims") == [(0,)]
    assert table_rows(home / "directory.sqlite", "SELECT count(*) FROM sync_records WHERE status = 'active'")[0][0] > 0
    said = status(home, data_dir)
    assert said.returncode == 0 and "applied changes are not yet in the live index" in said.stdout

    again = rehabmap(home, data_dir, replay, "sync", "cqc")

    assert again.returncode == 0, again.stderr
    assert first_line(again)["added"] == 0, "what the killed run applied is not applied again"
    assert index_record(home, ASHTON_ID)["beds"] == 27
    claims = table_rows(home / "directory.sqlite", "SELECT DISTINCT basis FROM coverage_claims")
    assert claims == [("sync:cqc",)]
    assert "not yet in the live index" not in status(home, data_dir).stdout
    with serving(home, data_dir) as url:
        assert httpx.get(f"{url}/health", timeout=60).json()["services"] >= 6
        assert beds(url) == 27


IPS_TABLE = """icb_code,serves,service_name,organisation,address,postcode,phone,email,website,referral_route,\
description,verified_by,verified_on,notes
E54000054,,Leeds IPS Employment Service (invented),Invented Trust,1 Test Street,LS9 7TF,0113 000 0000,,\
www.example.org,self-referral,Work support for people with autism,Ann Curator,2026-10-01,
"""
WEST_YORKSHIRE = "E54000054"


def curated_claims(home: Path) -> list[str]:
    """The areas the curated tables' coverage claims name (none while there is no store)."""
    if not (home / "directory.sqlite").exists():
        return []
    rows = table_rows(home / "directory.sqlite", "SELECT area_code FROM coverage_claims WHERE basis LIKE 'curated:%'")
    return [code for (code,) in rows]


@pytest.mark.parametrize("then", ["serve", "sync"])
def test_a_rebuild_killed_after_its_index_went_live_is_finished_by_the_next_start_or_sync(
        then, tmp_path, geodata_dir, data_dir, replay):
    """`rehabmap index sample/ ips_services.csv` killed once its new index is live, before it remembered its
    sources and made its curated table's coverage claims: before, the next maintainers' upload rebuilt from the
    previous rebuild's sources (without the IPS table the index serves) and West Yorkshire's IPS coverage was
    never claimed. The server's next start finishes it; so, with no server started, does the next command that
    writes to the live index (the nightly `rehabmap sync cqc`), where before it left them to a start or rebuild."""
    home = make_home(tmp_path / "home", geodata_dir)
    assert rehabmap(home, data_dir, None, "index", "sample/", "--no-progress").returncode == 0
    before = (home / "index-sources.json").read_text()
    table = tmp_path / "ips_services.csv"
    table.write_text(IPS_TABLE)

    command_killed_at("swapped", home, data_dir, replay, "index", "sample/", str(table), "--no-progress")

    docs = table_rows(index_file(home), "SELECT doc FROM services")
    assert any(b"Leeds IPS Employment Service" in doc for (doc,) in docs), "the new index is live"
    assert (home / "index-sources.json").read_text() == before, "what follows the swap has not happened"
    assert curated_claims(home) == []
    if then == "serve":
        with serving(home, data_dir) as url:
            assert httpx.get(f"{url}/health", timeout=60).json()["status"] == "ok"
    else:
        again = rehabmap(home, data_dir, replay, "sync", "cqc")
        assert again.returncode == 0, again.stderr
    assert str(table.resolve()) in (home / "index-sources.json").read_text()
    assert WEST_YORKSHIRE in curated_claims(home)
    assert not (home / "rebuild-pending.json").exists()


def test_a_rebuild_running_is_said_under_way_by_sync_status_not_as_a_warning(tmp_path, geodata_dir, data_dir, replay):
    """`rehabmap index sample/` paused once its new index is live, still running: its pending file names its process
    and this machine, so sync-status says it is under way, and no `warning:`. Before, every rebuild simply running
    was said 'unfinished rebuild: … has not finished', as one cut short is."""
    home = make_home(tmp_path / "home", geodata_dir)
    with paused_at("swapped", home, data_dir, replay, "index", "sample/", "--no-progress"):
        pending = json.loads((home / "rebuild-pending.json").read_text())
        said = status(home, data_dir)

    assert said.returncode == 0 and said.stdout.endswith(
        f"rebuild under way: a rebuild began at {pending['at']} (process {pending['pid']} on {socket.gethostname()}) "
        "and is running; it finishes itself\n") and "warning:" not in said.stdout, said.stdout


def test_a_rebuild_killed_after_its_swap_is_said_by_sync_status_and_finished_by_a_running_servers_look(
        tmp_path, geodata_dir, data_dir, replay):
    """`rehabmap index sample/ ips_services.csv` killed once its new index is live. Before, `sync-status` said
    nothing of it, and a running server never finished it (only its next start did): its sources stayed the
    previous rebuild's and West Yorkshire's IPS coverage unclaimed. Now `sync-status`, which only reads, says a
    rebuild is unfinished and what finishes it, and leaves it so; and a server that started while it could not
    finish it (the test holds the rebuild's lock, as a rebuild under way would) finishes it on its own look, on its
    timer, once the lock is let go."""
    home = make_home(tmp_path / "home", geodata_dir)
    assert rehabmap(home, data_dir, None, "index", "sample/", "--no-progress").returncode == 0
    table = tmp_path / "ips_services.csv"
    table.write_text(IPS_TABLE)
    command_killed_at("swapped", home, data_dir, replay, "index", "sample/", str(table), "--no-progress")

    pending = json.loads((home / "rebuild-pending.json").read_text())
    said = status(home, data_dir)
    assert said.returncode == 0 and said.stdout.endswith(
        f"warning: unfinished rebuild: a rebuild began at {pending['at']} (process {pending['pid']} on "
        f"{socket.gethostname()}) and was cut short: it is finished by the next rebuild, server start, sync or "
        "review decision, or a running server's next look (every REHABMAP_CONVERGE_EVERY_S seconds): its sources "
        "remembered, its uploaded table kept and its curated tables' coverage claims made where its index went "
        "live, or forgotten with its table where not\n"), said.stdout
    as_json = rehabmap(home, data_dir, None, "sync-status", "--json")
    assert json.loads(as_json.stdout) == [] and as_json.stderr.startswith("warning: unfinished rebuild: a rebuild")
    assert (home / "rebuild-pending.json").exists() and curated_claims(home) == [], "sync-status changes nothing"

    with ExitStack() as server:
        with named_lock_of(home / "directory.sqlite", REBUILD_LOCK) as taken:
            assert taken
            url = server.enter_context(serving(home, data_dir, REHABMAP_CONVERGE_EVERY_S="1"))
        deadline = time.monotonic() + HANG_S
        while (home / "rebuild-pending.json").exists():
            assert time.monotonic() < deadline, "the running server never finished the rebuild"
            time.sleep(0.05)
        assert httpx.get(f"{url}/health", timeout=60).json()["status"] == "ok"
    assert str(table.resolve()) in (home / "index-sources.json").read_text()
    assert WEST_YORKSHIRE in curated_claims(home)
    assert "unfinished rebuild" not in status(home, data_dir).stdout
