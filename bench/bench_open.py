"""Index open: how long a reader takes to load a generation of the embedded index, and its memory.

Each open runs in a fresh child process (as a `rehabmap serve` worker starts): `EmbeddedIndex(path,
exempt_from_gc=True)` and its first question (`info()`), which loads the columns. Two files per size,
measured in the same run:
  - snapshot  the index as a build writes it now: the columns load from the arrays the build stored
              (`column_snapshot`), edits since laid over them;
  - rows      the same file without the snapshot (as written before it existed): every row's column
              values are read from `service_columns` and worked out again.
Wall and CPU time of the open, and the child's resident memory after it (`/proc/self/statm`).

    python -m bench.bench_open [--sizes 100k,500k] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench import common
from bench.bench_build import rss_mib
from bench.common import fmt, label, log

TARGET_S = 1.0  # at 500k services (issue 18)


def without_snapshot(path: Path) -> Path:
    """A copy of the index file without its column snapshot (made once, beside it in the cache)."""
    copy = path.with_name(path.stem + "-rows.sqlite")
    if not copy.exists():
        partial = copy.with_name(copy.name + ".partial")
        shutil.copyfile(path, partial)
        conn = sqlite3.connect(partial)
        try:
            conn.execute("DROP TABLE column_snapshot")
            conn.commit()
        finally:
            conn.close()
        partial.rename(copy)
    return copy


def child(path: str) -> dict:
    from search.embedded import EmbeddedIndex

    before = rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    count = EmbeddedIndex(Path(path), exempt_from_gc=True).info().count  # as a server opens it
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "count": count,
            "rss": rss_mib(), "above": rss_mib() - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100k,500k")
    parser.add_argument("--rounds", type=int, default=3, help="opens per size and file (the median is shown)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child)), flush=True)
        return
    files = {n: common.index_file(n) for n in common.parse_sizes(args.sizes)}
    files_rows = {n: without_snapshot(path) for n, path in files.items()}
    load_before = common.load_average()
    rows = []
    for n in files:
        medians = {}
        for kind, path in (("snapshot", files[n]), ("rows", files_rows[n])):
            results = []
            for _ in range(args.rounds):  # alternate would be fairer on a busy machine; rounds are short
                out = subprocess.run([sys.executable, "-m", "bench.bench_open", "--child", str(path)],
                                     cwd=common.ROOT, capture_output=True, text=True, check=True).stdout
                results.append(json.loads(out.split("RESULT ", 1)[1]))
            results.sort(key=lambda r: r["seconds"])
            medians[kind] = r = results[len(results) // 2]
            log(f"{label(n)} {kind}: open {r['seconds']:.2f} s (CPU {r['cpu']:.2f} s), RSS {r['rss']:.0f} MiB")
        for kind, r in medians.items():
            rows.append([label(n), kind, f"{r['count']:,}", fmt(r["seconds"], 2), fmt(r["cpu"], 2),
                         fmt(r["seconds"] / medians["rows"]["seconds"], 2), fmt(r["rss"], 0), fmt(r["above"], 0)])
    print(f"Machine: {common.machine()}")
    print(f"Before: {load_before}; after: {common.load_average()}")
    print()
    print(common.table(
        f"Index open (median of {args.rounds} opens, each in a fresh process; target: <= {TARGET_S:.0f} s at 500k)",
        ["N", "file", "services", "open s", "CPU s", "/ rows", "RSS MiB", "above start MiB"], rows))


if __name__ == "__main__":
    main()
