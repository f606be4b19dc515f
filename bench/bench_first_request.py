"""The first request after a restart, with and without the warm-up at start (REHABMAP_WARM_UP).

Builds the sample site (as bench_pages does), then for each setting starts `rehabmap serve` (`python -m cli serve`)
as its own process (a fresh interpreter: nothing loaded), waits until it listens, and times over HTTP the first and
second public results page and the first and second clinicians' search (POST, redirect, results). --runs restarts
per setting; the table gives the median and the slowest, in milliseconds.

    python -m bench.bench_first_request [--runs 3] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_pages import sample_site
from rehabmap.config import Settings
from tests.web.site import ROOT

FIND = "/find/rehabilitation?where=LS9+7TF"
MATCH = {"home": "LS9 7TF", "needs": ["autism"], "limit": "3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, process: subprocess.Popen[bytes], limit_s: float = 120) -> float:
    """Seconds from start until the port takes a connection (no HTTP request: that would be the first)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if process.poll() is not None:
            raise SystemExit(f"the server stopped (exit {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start")


def one_run(home: Path, data_dir: Path, warm: bool) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir),
           "REHABMAP_WARM_UP": "true" if warm else "false", "REHABMAP_RATE_LIMIT_PER_MINUTE": "0",
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        times = {"start (s)": listening(port, process) * 1000}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True, timeout=60) as client:
            for label in ("first", "second"):
                started = time.perf_counter()
                assert client.get(FIND).status_code == 200
                times[f"{label} /find results"] = (time.perf_counter() - started) * 1000
            for label in ("first", "second"):
                started = time.perf_counter()
                assert client.post("/alternatives", data=MATCH).status_code == 200
                times[f"{label} alternatives search"] = (time.perf_counter() - started) * 1000
        return times
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--home", type=Path, help="reuse a site folder built by an earlier run")
    args = parser.parse_args(argv)
    data_dir = Settings().data_dir
    with tempfile.TemporaryDirectory(prefix="rehabmap-bench-first-") as tmp:
        home = sample_site(args.home, Path(tmp), data_dir)
        results = {warm: [one_run(home, data_dir, warm) for _ in range(args.runs)] for warm in (False, True)}
    print(f"| measure ({args.runs} restarts each; ms) | no warm-up: median | max | warm-up: median | max |")
    print("|---|---:|---:|---:|---:|")
    for measure in results[True][0]:
        cold = [r[measure] for r in results[False]]
        warm = [r[measure] for r in results[True]]
        name = measure.replace(" (s)", "") + (" (until listening)" if "start" in measure else "")
        print(f"| {name} | {statistics.median(cold):.0f} | {max(cold):.0f} | {statistics.median(warm):.0f} | "
              f"{max(warm):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
