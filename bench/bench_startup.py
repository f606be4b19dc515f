"""Start-up cost: what a fresh process pays before it does anything (issue 18, the suite's time).

Every `rehabmap` command a person runs, every `rehabmap serve` (and each of its workers) and each of the ~90
CLI subprocesses and ~20 servers the tests start pays it. Each probe runs in a fresh child process, from the
checkout's root (so that checkout's code is imported); checkouts alternate round by round, so a busy moment of
a shared machine falls on both. Wall and CPU seconds (user + system) of the child, median of `--rounds`, and
the heavy libraries it loaded.

    python -m bench.bench_startup [--rounds 5] [--checkout DIR]   # DIR: e.g. `git archive <commit> | tar -x -C DIR`
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("shapely", "scipy", "numpy", "fastapi", "uvicorn", "jinja2", "elasticsearch", "psycopg", "geopy")
PROBES = {
    "import cli.main": "import cli.main",
    "import app.main (what rehabmap serve loads)": "import uvicorn, app.main",
    "rehabmap --help": "import sys; sys.argv = ['rehabmap', '--help']\nfrom cli.main import main\n"
                       "try:\n    main()\nexcept SystemExit:\n    pass",
}
_REPORT = "\nimport sys\nprint(' '.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"


def run(checkout: Path, code: str) -> tuple[float, float, str]:
    """Wall and CPU seconds of one fresh interpreter running `code` in `checkout`, and the heavy modules it loaded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code + _REPORT.format(heavy=HEAVY)], cwd=checkout,
                          env={**os.environ, "PYTHONPATH": str(checkout)}, capture_output=True, text=True,
                          check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checkout", type=Path, action="append", default=[],
                        help="another checkout to measure in the same run (repeatable)")
    args = parser.parse_args()
    checkouts = [ROOT, *(c.resolve() for c in args.checkout)]
    times: dict[tuple[str, Path], list[tuple[float, float]]] = {}
    loaded: dict[tuple[str, Path], str] = {}
    for round_ in range(args.rounds):
        print(f"[bench] round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for name, code in PROBES.items():
            for checkout in checkouts if round_ % 2 == 0 else reversed(checkouts):
                wall, cpu, modules = run(checkout, code)
                times.setdefault((name, checkout), []).append((wall, cpu))
                loaded[(name, checkout)] = modules
    print("| probe | checkout | wall s (median) | CPU s (median) | heavy libraries loaded |")
    print("|---|---|---:|---:|---|")
    for name in PROBES:
        for checkout in checkouts:
            runs = times[(name, checkout)]
            print(f"| {name} | {checkout} | {statistics.median(w for w, _ in runs):.2f} | "
                  f"{statistics.median(c for _, c in runs):.2f} | {loaded[(name, checkout)] or 'none'} |")


if __name__ == "__main__":
    main()
