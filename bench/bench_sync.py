"""Where a whole `rehabmap sync` and `rehabmap index` run's seconds go (issue 18, brief W8, session 18).

Real data kept true means syncs run often (cron, every source), and the suite runs ~55 `rehabmap sync` and
~60 `rehabmap index` processes. This runs each command as the tests and a deployment do, a fresh
`python -m cli ...` process over a fresh REHABMAP_HOME on the real geodata, against the replay of the recorded
sources on 127.0.0.1 (tests/sync/replay.py): the first `sync cqc` (103 recorded locations), the same sync when it
finds nothing new, `sync nhs-service-search`, `sync oruk` (Bristol's 818 services), `index sample/`, and
`index` of it with the NHS website's 2018 hospital list (289 rows held for review, so a review-queue run follows). Each
child process is timed by phase: a probe wraps the functions that begin each phase (by name, so another
checkout's code is measured the same way; a name it lacks is skipped) and charges each second of wall and CPU
to the innermost phase running, imports included (every module loaded, at whatever point it is first
imported). "start" is the interpreter's own start before the probe runs; "exit" what follows the command.
Checkouts alternate run by run, so a busy moment of the shared machine falls on both; medians of `--rounds`.

    python -m bench.bench_sync [--rounds 3] [--checkout DIR] [--only sync-cqc,index-sample]

DIR is e.g. `git -C /work/main archive <commit> | tar -x -C DIR`. The geodata is the tests' built folder
(tests/built_geodata.py: REHABMAP_TEST_CACHE, built once), the recorded feeds REHABMAP_DATA_DIR's. Wall time
on a shared machine is noisy: compare CPU, and for a decision the instructions (valgrind --tool=callgrind on
the child) rather than one run's seconds. "imports" includes compiling the checkout's modules wherever no bytecode
is cached for them (PYTHONDONTWRITEBYTECODE=1 and no __pycache__, as in this workplace: ~1.0G instructions, a
fifth to a quarter of a sync's).

`--status N` (brief W3, session 25) measures instead what the keepers' Sources page and `rehabmap sync-status`
read at a real directory's size: per checkout, a child process over a home whose store holds the real CQC
connector's first run over the replay (Ashton Lodge's phone given as words, so one record keeps a left-out detail)
copied out to N records through the store's own API (`SyncStore.write`): 1% held for review, 5% retired, and a
share (`--left-out`, 1%: the 6 of 819 services of Bristol's real ORUK feed whose email or website a record refuses)
keeping Ashton Lodge's left-out detail, a quarter of those since given a phone by a maintainer (the overlay and
its audit rows, `Overlay.record`). It times `sync_status(store)`, `GET /keepers/sources` and the second page of
CQC's list on it (`?source=cqc&page=2`, brief w5; in process, signed in as a maintainer), `--rounds` times after one
untimed call, and prints the medians of wall and CPU milliseconds and each page's size in bytes (the checkouts one
after the other, each its own store):

    python -m bench.bench_sync --status 100000 [--left-out 0.01] [--rounds 5] [--checkout DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import data_dir
from tests.built_geodata import built_geodata
from tests.sync.replay import Replay
from tests.sync.store_fixtures import FAST, REPLAY_CQC_KEY, make_home

ROOT = Path(__file__).resolve().parents[1]
ASHTON = "1-112816741"  # Ashton Lodge Residential Home, among the 103 recorded CQC locations
# Phase: the functions that begin it, as "module:qualified name". The innermost running phase is charged.
PHASES = {
    "settings": ["rehabmap.config:get_settings"],
    "store open (migrations)": ["rehabmap.maintain.migrations:migrate"],
    "geodata: boundaries": ["geodata.areas:AreaIndex.load"],
    "geodata: postcodes": ["geodata.postcodes:PostcodeDirectory.__init__"],
    "sources: clients": ["indexer.sync.connectors:connectors_for"],
    "fetch (sync)": ["indexer.sync.runner:SyncRunner._fetch"],
    "read source files (index)": ["indexer.sources:load_source"],
    "synced records read": ["indexer.sync.rebuild:synced_rows"],
    "store: stage pages": ["indexer.sync.store:SyncStore.stage_page"],
    "prepare (pipeline)": ["indexer.pipeline:prepare_all"],
    "plan (compare with store)": ["indexer.sync.runner:_Plan.make"],
    "store: apply run": ["indexer.sync.store:SyncStore.apply_run"],
    "index: open": ["app.parts:open_backend", "app.parts:open_writer"],
    "index: load the live one (embedded)": ["search.embedded:_Generation.__init__"],
    "index: merge, check, write, swap": ["indexer.pipeline:_build_index"],
    "live index: catch up": ["indexer.sync.live:LiveIndex.catch_up"],
    "coverage": ["indexer.sync.publish:publish_coverage", "indexer.sync.publish:record_pending",
                 "indexer.sync.rebuild:record_curated_coverage"],
    "review queue (index)": ["app.sync:hold_for_review"],
}
# Run in the child before `python -m cli`: wraps each phase's functions as their modules are imported.
PROBE = r'''
import importlib._bootstrap as _bootstrap, inspect, json, os, resource, runpy, sys, time
_clock = lambda: (time.perf_counter(), time.process_time())
_born = resource.getrusage(resource.RUSAGE_SELF)
_began = (time.time(), _born.ru_utime + _born.ru_stime)
_phases = json.loads(sys.argv.pop(1))
_wanted = {}
for _phase, _names in _phases.items():
    for _name in _names:
        _module, _qualname = _name.split(":")
        _wanted.setdefault(_module, []).append((_qualname, _phase))
_spent = {}
_stack = []  # [phase, wall at start, cpu at start, wall of inner phases, cpu of inner phases]

def _enter(phase):
    _stack.append([phase, *_clock(), 0.0, 0.0])

def _leave():
    phase, wall0, cpu0, inner_wall, inner_cpu = _stack.pop()
    wall1, cpu1 = _clock()
    wall, cpu = wall1 - wall0, cpu1 - cpu0
    got = _spent.setdefault(phase, [0.0, 0.0, 0])
    got[0] += wall - inner_wall; got[1] += cpu - inner_cpu; got[2] += 1
    if _stack:
        _stack[-1][3] += wall; _stack[-1][4] += cpu

def _timed(phase, function):
    if inspect.isgeneratorfunction(function):  # charged while it makes each item, not while its caller works
        def generator(*args, **kwargs):
            items = function(*args, **kwargs)
            while True:
                _enter(phase)
                try:
                    item = next(items)
                except StopIteration:
                    return
                finally:
                    _leave()
                yield item
        return generator
    def timed(*args, **kwargs):
        _enter(phase)
        try:
            return function(*args, **kwargs)
        finally:
            _leave()
    return timed

def _wrap(module):
    for qualname, phase in _wanted.pop(module.__name__, ()):
        owner, _, attribute = qualname.rpartition(".")
        holder = getattr(module, owner, None) if owner else module
        raw = holder.__dict__.get(attribute) if holder is not None else None
        if raw is None:
            continue
        if isinstance(raw, classmethod):
            setattr(holder, attribute, classmethod(_timed(phase, raw.__func__)))
        elif callable(raw):
            setattr(holder, attribute, _timed(phase, raw))

_find_and_load = _bootstrap._find_and_load
def _loading(name, import_):
    if name in sys.modules:
        return _find_and_load(name, import_)
    _enter("imports")
    try:
        module = _find_and_load(name, import_)
    finally:
        _leave()
    if name in _wanted:
        _wrap(module)
    return module
_bootstrap._find_and_load = _loading

def _report():
    now = time.time()
    used = resource.getrusage(resource.RUSAGE_SELF)
    print("PHASES " + json.dumps({"began": _began, "ended": [now, used.ru_utime + used.ru_stime],
                                  "spent": _spent}), file=sys.stderr)

sys.argv[0] = "rehabmap"
_enter("other")
try:
    runpy.run_module("cli", run_name="__main__", alter_sys=True)
finally:
    _leave()
    _report()
'''


# Run in a child in the checkout (argv: N records, left-out share, rounds) over REHABMAP_HOME, whose store holds one
# real CQC run: copies it out to N records through the store's API, then times what reads them; prints one JSON line.
STATUS = r"""
import json, re, statistics, sys, time
from dataclasses import replace
from starlette.testclient import TestClient
from app.main import create_app
from indexer.sync.status import sync_status
from indexer.sync.store import SyncStore
from rehabmap.config import Settings
from rehabmap.maintain.audit import AuditLog, Change
from rehabmap.maintain.overlay import Overlay
from rehabmap.maintain.store import Directory, store_of

n, share, rounds = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
settings = Settings(warm_up=False, rate_limit_per_minute=0)
store = SyncStore(store_of(settings))
records = store.records()
shown = [r for r in records if r.status == "active" and r.service and r.type_status == "confirmed" and not r.left_out]
held = next(r for r in records if r.service and r.type_status != "confirmed")
left = next(r for r in records if r.left_out)
every = round(1 / share)
batch, overlaid = [], []
for i in range(n - len(records)):
    template = held if i % 100 == 1 else shown[i % len(shown)]
    service_id = f"{template.service_id}-{i}"
    service = {**template.service, "id": service_id, "name": f"{template.service['name']} {i}"}
    record = replace(template, source_id=f"{template.source_id}-{i}", service_id=service_id, service=service,
                     left_out=left.left_out if i % every == 0 else ())
    if i % 20 == 3:
        record = replace(record, status="retired", retired_at=record.last_seen, retired_reason="bench")
    batch.append(record)
    if record.left_out and i % (4 * every) == 0:
        overlaid.append(service_id)
    if len(batch) == 5000:
        store.write(batch, (), (), live_changed=set())
        batch = []
store.write(batch, (), (), live_changed=set())
overlay = Overlay(store.database, AuditLog(store.database))
for service_id in overlaid:
    overlay.record("bench", "update", service_id, [Change("phone", None, "0117 496 0001")],
                   fields={"phone": "0117 496 0001"})
_, token = Directory.from_settings(settings).tokens.create("maintainer", "bench", actor="bench")

def timed(call):
    call()
    wall, cpu = [], []
    for _ in range(rounds):
        started = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - started[0]) * 1000)
        cpu.append((time.process_time() - started[1]) * 1000)
    return statistics.median(wall), statistics.median(cpu)

reports = sync_status(store)
with TestClient(create_app(settings), follow_redirects=False) as client:
    form = client.get("/keepers/sign-in").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', form).group(1)
    assert client.post("/keepers/sign-in", data={"csrf": csrf, "token": token}).status_code == 303

    def page(url="/keepers/sources"):
        answer = client.get(url)
        assert answer.status_code == 200, answer.status_code
        return len(answer.content)

    second = "/keepers/sources?source=cqc&page=2"  # a checkout without paging answers the whole page again
    result = {"left_out": sum(len(r.left_out) + len(r.left_out_added) for r in reports),
              "added": sum(len(r.left_out_added) for r in reports),
              "status": timed(lambda: sync_status(store)), "page": timed(page), "bytes": page(),
              "second": timed(lambda: page(second)), "second_bytes": page(second)}
print("STATUS " + json.dumps(result))
"""


def status_run(checkout: Path, records: int, share: float, rounds: int, replay: Replay, geodata: Path,
               scratch: Path) -> dict[str, Any]:
    """One child of `checkout` over a fresh home: the real CQC run (its own code), the copies, the timings."""
    home = make_home(Path(tempfile.mkdtemp(dir=scratch)) / "home", geodata)
    env = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir()),
           "PYTHONPATH": str(checkout), **FAST, "REHABMAP_CQC_API_URL": replay.cqc_url,
           "REHABMAP_CQC_API_KEY": REPLAY_CQC_KEY}
    try:
        subprocess.run([sys.executable, "-m", "cli", "sync", "cqc", "--no-progress"], cwd=checkout, env=env,
                       capture_output=True, check=True)
        done = subprocess.run([sys.executable, "-c", STATUS, str(records), str(share), str(rounds)], cwd=checkout,
                              env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(home.parent)
    if done.returncode != 0:
        raise RuntimeError(f"--status in {checkout} exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.rsplit("STATUS ", 1)[1])


def status_table(records: int, share: float, rounds: int, checkouts: list[Path], geodata: Path,
                 scratch: Path) -> list[str]:
    """`sync_status` and the Sources page at `records` records, a row per checkout."""
    lines = [f"### sync-status and GET /keepers/sources at {records:,} records ({share:.0%} with a left-out "
             f"detail; median of {rounds}, ms)",
             "| checkout | records with a left-out detail | of them added by a maintainer | `sync_status` wall | CPU | "
             "page wall | CPU | page bytes | second page wall | CPU | its bytes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for checkout in checkouts:
        replay = Replay(data_dir() / "feeds").start()
        try:
            replay.cqc.alter(ASHTON, mainPhoneNumber="Ask for the manager")
            got = status_run(checkout, records, share, rounds, replay, geodata, scratch)
        finally:
            replay.stop()
        lines.append(f"| {checkout.name or checkout} | {got['left_out']:,} | {got['added']:,} | "
                     + " | ".join(f"{ms:,.0f}" for ms in (*got["status"], *got["page"])) + f" | {got['bytes']:,} | "
                     + " | ".join(f"{ms:,.0f}" for ms in got["second"]) + f" | {got['second_bytes']:,} |")
    return lines


@dataclass
class Command:
    name: str
    args: list[str]
    env: Callable[[Replay], dict[str, str]]
    # Time its third run over the same home: a sync that finds nothing new, as most scheduled runs do (the second
    # reads the live index's build time once, after the first run built it).
    again: bool = False


def _no_env(_replay: Replay) -> dict[str, str]:
    return {}


def _nhs(replay: Replay) -> dict[str, str]:
    return {"REHABMAP_NHS_SERVICE_SEARCH_URL": replay.nhs_url, "REHABMAP_NHS_SERVICE_SEARCH_KEY": "replay-nhs-key",
            "REHABMAP_NHS_SERVICE_SEARCH_RATE": "1000"}


def _oruk(replay: Replay) -> dict[str, str]:
    feeds = json.dumps({"bristol": replay.oruk_url("bristol")})
    return {"REHABMAP_ORUK_RATE": "10000", "REHABMAP_ORUK_FEED_URLS": feeds}


COMMANDS = [
    Command("sync-cqc", ["sync", "cqc"], _no_env),
    Command("sync-cqc-again", ["sync", "cqc"], _no_env, again=True),
    Command("sync-nhs-service-search", ["sync", "nhs-service-search"], _nhs),
    Command("sync-oruk", ["sync", "oruk"], _oruk),
    Command("index-sample", ["index", str(ROOT / "sample")], _no_env),
    # The NHS website's 1,231 hospitals of 2018 (mappings/ finds the file's mapping by its header): its 289 mental
    # health hospitals are held for review, so the rebuild ends with a run into the review queue.
    Command("index-hospitals", ["index", str(ROOT / "sample"),
                                str(data_dir() / "services" / "nhs_website_hospitals_2018.csv")], _no_env),
]


@dataclass
class Run:
    wall: float
    cpu: float
    phases: dict[str, tuple[float, float]]  # phase: (wall, cpu)


def run(checkout: Path, command: Command, replay: Replay, geodata: Path, scratch: Path) -> Run:
    """One fresh child process of the command in `checkout`, over a fresh home (or one the command filled
    before, when `command.again`)."""
    home = Path(tempfile.mkdtemp(dir=scratch)) / "home"
    make_home(home, geodata)
    env = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir()),
           "PYTHONPATH": str(checkout), **FAST, "REHABMAP_CQC_API_URL": replay.cqc_url,
           "REHABMAP_CQC_API_KEY": REPLAY_CQC_KEY, **command.env(replay)}
    argv = [sys.executable, "-c", PROBE, json.dumps(PHASES), *command.args, "--no-progress"]
    for _ in range(2 if command.again else 0):
        subprocess.run(argv, cwd=checkout, env=env, capture_output=True, check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True)
    end = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(home.parent)
    if done.returncode != 0:
        raise RuntimeError(f"{command.name} in {checkout} exited {done.returncode}: {done.stderr[-2000:]}")
    probe = json.loads(done.stderr.rsplit("PHASES ", 1)[1])
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    phases = {name: (wall, cpu) for name, (wall, cpu, _calls) in probe["spent"].items()}
    phases["start"] = (probe["began"][0] - start, probe["began"][1])
    phases["exit"] = (end - probe["ended"][0], cpu - probe["ended"][1])
    return Run(end - start, cpu, phases)


def table(command: Command, results: dict[Path, list[Run]]) -> list[str]:
    """Medians per phase, a column pair (wall, CPU) per checkout, the phases in the order PHASES lists them."""
    order = ["start", "imports", *PHASES, "other", "exit"]
    names = [n for n in order if any(n in r.phases for runs in results.values() for r in runs)]
    head = " | ".join(f"{c.name or c} wall s | CPU s" for c in results)
    lines = [f"### {command.name}: rehabmap {' '.join(command.args[:2])}{' (again)' if command.again else ''}",
             f"| phase | {head} |", "|---" * (1 + 2 * len(results)) + "|"]

    def cells(values: Callable[[Run], tuple[float, float]]) -> str:
        return " | ".join(f"{statistics.median(values(r)[0] for r in runs):.3f} | "
                          f"{statistics.median(values(r)[1] for r in runs):.3f}" for runs in results.values())

    for name in names:
        lines.append(f"| {name} | {cells(lambda r: r.phases.get(name, (0.0, 0.0)))} |")
    lines.append(f"| **whole process** | {cells(lambda r: (r.wall, r.cpu))} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkout", type=Path, action="append", default=[],
                        help="Another checkout to measure alternately with this one (repeatable).")
    parser.add_argument("--only", help="Comma-separated command names: " + ", ".join(c.name for c in COMMANDS))
    parser.add_argument("--status", type=int, metavar="N",
                        help="Time sync_status and the keepers' Sources page over N synced records instead.")
    parser.add_argument("--left-out", type=float, default=0.01, help="With --status: the share of records "
                        "keeping a left-out contact detail (default 0.01).")
    options = parser.parse_args()
    chosen = [c for c in COMMANDS if options.only is None or c.name in options.only.split(",")]
    checkouts = [ROOT, *options.checkout]
    geodata = built_geodata(data_dir())
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as scratch:
        if options.status:
            print("\n".join(status_table(options.status, options.left_out, options.rounds, checkouts, geodata,
                                         Path(scratch))), flush=True)
            return
        for command in chosen:
            results: dict[Path, list[Run]] = {c: [] for c in checkouts}
            for _ in range(options.rounds):
                for checkout in checkouts:
                    replay = Replay(data_dir() / "feeds").start()  # fresh: a CQC first crawl sets its window
                    try:
                        results[checkout].append(run(checkout, command, replay, geodata, Path(scratch)))
                    finally:
                        replay.stop()
            print("\n".join(table(command, results)) + "\n", flush=True)


if __name__ == "__main__":
    main()
