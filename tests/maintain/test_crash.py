"""Killing the process (SIGKILL: nothing cleans up) during a write or a rebuild loses no acknowledged write
and leaves nothing half-written: after a restart the directory store, its audit log and the live index
agree.

The server is `rehabmap serve` in a subprocess. REHABMAP_TEST_PAUSE_IN_WRITE=directory|index makes a write
stop inside that transaction (and say so in a file), so the kill lands exactly there; the last test kills
a server at a random moment in a stream of writes instead.

No test waits a length of time for something to happen: each waits for the event itself (a file, a line,
a number of acknowledged writes), so a slow or loaded machine makes them slower, never wrong. The time
limits below only stop a test that would otherwise hang.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from search.embedded import index_file
from tests.listening import ANSWER_TIMEOUT_S
from tests.maintain.consistency import assert_consistent, index_records
from tests.maintain.conftest import ROOT, SAMPLE, Server, Site, start_server

pytestmark = pytest.mark.slow
EDITED = "sample:truro-level-2-rehabilitation-unit"
HANG_S = 300  # only a test that would hang waits this long


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait until `condition` holds, asking every 20 ms (what it watches says nothing when it changes);
    HANG_S only ends a wait that would never end."""
    deadline = time.monotonic() + HANG_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {HANG_S} s")
        time.sleep(0.02)


def wait_for(path: Path) -> None:
    wait_until(path.exists, f"{path.name} did not appear")


def waits_for_the_index_lock(site: Site, server: Server) -> bool:
    """Whether a request of `server` is blocked on the index lock, as the kernel or PostgreSQL shows it: a
    blocked flock() on the lock file in /proc/locks ("->" marks a waiter), or an advisory lock not granted."""
    url = site.settings.database_url
    if url is not None:
        with psycopg.connect(url.get_secret_value(), autocommit=True) as conn:
            return bool(conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                     "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                                     ).fetchone()[0])
    inode = (site.home / "directory.sqlite.lock").stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "->" and fields[2] == "FLOCK" and fields[5] == str(server.process.pid) \
                and int(fields[6].rsplit(":", 1)[1]) == inode:
            return True
    return False


def in_background(fn) -> Future:
    """Run fn in a thread of its own; the future holds its result, or the error it raised."""
    executor = ThreadPoolExecutor(max_workers=1)
    future = executor.submit(fn)
    executor.shutdown(wait=False)
    return future


def served(server: Server, service_id: str) -> dict:
    return httpx.get(f"{server.url}/services/{service_id}", timeout=ANSWER_TIMEOUT_S).json()


def patch(server, site: Site, service_id: str, body: dict, who: str = "maintainer") -> httpx.Response:
    return httpx.patch(f"{server.url}/maintain/services/{service_id}", json=body, headers=site.auth(who), timeout=60)


def test_killed_inside_the_directory_transaction_nothing_is_written(fresh_site, servers):
    site = fresh_site
    before = index_records(site)[EDITED]
    audit_before = site.directory.audit.entries(limit=1_000_000)[1]
    servers.append(server := start_server(site, REHABMAP_TEST_PAUSE_IN_WRITE="directory"))
    request = in_background(lambda: patch(server, site, EDITED, {"beds": 99, "phone": "01872 000000"}))
    wait_for(site.home / "paused-directory")
    server.kill()
    assert isinstance(request.exception(timeout=HANG_S), httpx.TransportError)  # never acknowledged

    servers.append(server := start_server(site))
    assert site.directory.audit.entries(limit=1_000_000)[1] == audit_before
    assert site.directory.overlay.get(EDITED) is None
    assert served(server, EDITED)["beds"] == before.beds
    assert index_records(site)[EDITED] == before
    assert_consistent(site)
    assert patch(server, site, EDITED, {"beds": 99}).json()["service"]["beds"] == 99
    assert_consistent(site)


def test_killed_inside_the_index_transaction_the_edit_is_completed_on_restart(fresh_site, servers):
    site = fresh_site
    servers.append(server := start_server(site, REHABMAP_TEST_PAUSE_IN_WRITE="index"))
    request = in_background(lambda: patch(server, site, EDITED, {"beds": 42, "description": "Half way."}))
    wait_for(site.home / "paused-index")
    server.kill()
    assert isinstance(request.exception(timeout=HANG_S), httpx.TransportError)
    # The directory committed (audit + overlay); the index write was cut short and left its journal.
    assert {e.field for e in site.directory.audit.entries(resource_id=EDITED)[0]} == {"beds", "description"}
    assert (site.home / f"{index_file(site.home).name}-journal").exists()

    servers.append(server := start_server(site))
    assert not (site.home / f"{index_file(site.home).name}-journal").exists()
    record = served(server, EDITED)
    assert (record["beds"], record["description"]) == (42, "Half way.")
    assert len(site.directory.audit.entries(resource_id=EDITED)[0]) == 2
    assert_consistent(site)


def test_every_acknowledged_write_survives_a_kill_at_a_random_moment(fresh_site, servers):
    site = fresh_site
    targets = ["sample:bodmin-rehabilitation-unit", "sample:cornwall-ips-service", "sample:leeds-imha-service"]
    servers.append(server := start_server(site))
    acknowledged: dict[str, int] = {}
    attempted: dict[str, int] = {}
    stop = threading.Event()
    # The moment is counted in acknowledged writes, not seconds: the kill comes once every service has at
    # least one and `kill_after` have been acknowledged in all, while the other writers are part way
    # through theirs, however fast or loaded the machine is.
    seed = random.randrange(1_000_000)
    kill_after = random.Random(seed).randint(len(targets), 40)
    enough = threading.Event()
    counted = threading.Lock()
    total = 0

    def writer(service_id: str, start: int) -> None:
        nonlocal total
        value = start
        with httpx.Client(timeout=HANG_S) as client:
            while not stop.is_set():
                value += 1
                attempted[service_id] = value
                try:
                    reply = client.patch(f"{server.url}/maintain/services/{service_id}", json={"beds": value},
                                         headers=site.auth("maintainer"))
                except httpx.TransportError:
                    return
                assert reply.status_code == 200, reply.text
                assert reply.json()["service"]["beds"] == value
                acknowledged[service_id] = value
                with counted:
                    total += 1
                    if total >= kill_after and len(acknowledged) == len(targets):
                        enough.set()

    writers = [in_background(lambda t=t, i=i: writer(t, 1000 * i)) for i, t in enumerate(targets)]
    assert enough.wait(HANG_S), f"the writes stopped before {kill_after} were acknowledged (seed {seed})"
    server.kill()
    stop.set()
    for done in writers:
        assert done.exception(timeout=HANG_S) is None, f"seed {seed}"
    print(f"seed {seed}: killed after {kill_after}; acknowledged {acknowledged}, attempted {attempted}")

    servers.append(server := start_server(site))
    for service_id in targets:
        beds = served(server, service_id)["beds"]
        # What was acknowledged is there; the one write in flight at the kill may or may not be.
        assert beds in (acknowledged[service_id], attempted[service_id]), (service_id, seed)
        entries = site.directory.audit.entries(resource_id=service_id, limit=1_000_000)[0]
        values = [e.new for e in entries if e.field == "beds"]
        start = targets.index(service_id) * 1000
        assert values == list(range(start + 1, beds + 1)), f"every acknowledged value audited in order (seed {seed})"
    assert_consistent(site)


# A rebuild (`rehabmap index` with the directory's overlay) in its own process. `halfway`: it stops half
# way through the import; `locked`: it stops after the whole import, holding the index lock, before the swap.
# Either waits there until the test kills it, however long the test takes (a pause of fixed length would let
# a slow test's rebuild go on and finish).
REBUILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from geodata.geography import Geography
    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.sources import load_source
    from rehabmap.config import Settings
    from rehabmap.maintain.store import Directory
    from rehabmap.maintain.edits import OverlayWriter
    from search.embedded import EmbeddedWriter, index_file

    home, sample, stop_at = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def wait_to_be_killed():
        sys.stdin.read()  # ends only if the test went away without killing this process: then go too
        sys.exit("the test went away")

    def rows():
        for i, row in enumerate(load_source(sample)):
            if i == 30 and stop_at == "halfway":
                print("halfway", flush=True)
                wait_to_be_killed()
            yield row

    class Slow(EmbeddedWriter):
        def replace_all(self, services, **options):
            services = list(services)  # the whole import and the overlay, under the index lock
            if stop_at == "locked":
                print("locked", flush=True)
                wait_to_be_killed()
            return super().replace_all(services, **options)

    geography = Geography.open(home / "geodata")
    writer = OverlayWriter(Slow(index_file(home)), Directory.from_settings(Settings(home=home)))
    report = build_index(rows(), GeographyPlacer(geography), writer, progress=False)
    print("done", report.indexed, flush=True)
""")


def start_rebuild(site: Site, stop_at: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", REBUILD, str(site.home), str(SAMPLE), stop_at], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, **site.env(), "PYTHONPATH": str(ROOT)})
    assert process.stdout.readline().strip() == stop_at
    return process


@pytest.mark.parametrize("stop_at", ["halfway", "locked"])
def test_a_rebuild_killed_part_way_keeps_the_index_and_every_edit(fresh_site, servers, stop_at):
    site = fresh_site
    servers.append(server := start_server(site))
    assert patch(server, site, EDITED, {"beds": 7}).status_code == 200
    made = httpx.post(f"{server.url}/maintain/services", headers=site.auth("maintainer"), timeout=30, json={
        "name": "Crash Test House", "service_type": "vcfse", "postcode": "TR1 3BT"}).json()["service"]["id"]
    before = index_records(site)

    rebuild = start_rebuild(site, stop_at)
    try:
        # A write while the rebuild runs: at once while it imports; once it is killed, if it holds the lock.
        during = in_background(lambda: patch(server, site, "sample:bodmin-rehabilitation-unit", {"beds": 11}))
        if stop_at == "halfway":
            during.result(timeout=HANG_S)
        else:
            # The edit is seen blocked on the index lock the rebuild holds (not merely not done yet).
            wait_until(lambda: waits_for_the_index_lock(site, server) or during.done(),
                       "the edit neither waited for the index lock nor finished")
            assert not during.done(), "an edit must wait while a rebuild swaps its index in"
    finally:
        rebuild.send_signal(signal.SIGKILL)
        rebuild.wait()
    assert during.result(timeout=HANG_S).status_code == 200

    # The old index still serves, with every edit; the dead build's file is left for the next build.
    assert index_records(site).keys() == before.keys()
    assert served(server, EDITED)["beds"] == 7
    assert served(server, "sample:bodmin-rehabilitation-unit")["beds"] == 11
    assert served(server, made)["name"] == "Crash Test House"
    assert_consistent(site)

    # The next rebuild, the real command, completes and keeps them all.
    env = {**os.environ, **site.env(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "cli", "index", str(SAMPLE), "--no-progress"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"read 60, indexed {len(before)}")
    assert not list(site.home.glob(f"{index_file(site.home).name}.building-*"))
    assert served(server, EDITED)["beds"] == 7
    assert served(server, "sample:bodmin-rehabilitation-unit")["beds"] == 11
    assert served(server, made)["name"] == "Crash Test House"
    assert_consistent(site)
