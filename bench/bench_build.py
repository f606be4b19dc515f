"""Index build throughput (records/s) and peak memory, for each corpus size.

Two measurements, each in a fresh child process so its peak memory is its own:
  - writer    `EmbeddedWriter.replace_all(services)`: validated records in, a complete new SQLite index file
              (records as JSON, full-text index) written beside the old one and swapped in. This is "the
              index build" of the target (>= 50k records/s).
  - pipeline  `indexer.pipeline.build_index(rows, GeographyPlacer(real geodata), EmbeddedWriter)`: candidate
              rows as an importer hands them over (fields by name, a point, label text) → type check,
              needs from text, ONS areas by point-in-polygon, validation, duplicate merge, then the writer.
  - parallel  the same with the rows prepared and stored in worker processes, one per core, each writing its
              records into its own SQLite part file that the writer copies (`build_index(workers=…)`,
              `indexer.workers`): "CPU s" is the child's and its workers'; "a worker's peak" the largest of theirs.
The inputs (the synthetic corpus, or candidate rows made from it) are made first and are not timed;
"CPU s" is the child's own CPU time (on a shared machine, records per CPU second is steadier than per
second); "peak RSS" is the child's maximum resident memory, "above inputs" is that less the RSS once the inputs
were made (what the build itself added at its peak).

`--split` adds, for the pipeline and parallel steps, what each part of `build_index` costs (preparing the rows,
merging duplicates, the write), run again one after the other in the same child: the parent's wall seconds, its CPU
seconds and its workers'. Each row of the tables says the load average (1 min) before and after its run. "Peak PSS
of all" is the largest proportional set size of the child and its workers together, sampled every 0.2 s.

    python -m bench.bench_build [--sizes 10k,100k,500k] [--steps writer,pipeline,parallel] [--rounds 1] [--split]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from bench.common import fmt, label, log

TARGET_PER_S = 50_000


def rss_mib() -> float:
    """Current resident memory of this process."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def candidates(services):
    """The corpus as an importer would hand it over: canonical fields, a point, no id, areas or provenance
    (the pipeline adds those). The synthetic records carry no prose, so each row takes the description and
    label text of a sample service of its type (read by the product's own ORUK importer): the classifier and
    needs extraction then read the kind of text real sources give them."""
    from indexer.rows import Candidate, Origin
    from indexer.sources import load_source

    prose: dict[str, list[tuple[str, str]]] = {}
    for row in load_source(common.ROOT / "sample" / "rehabmap-sample.oruk.json"):
        if isinstance(row, Candidate):
            prose.setdefault(row.fields["service_type"], []).append((row.fields.get("description", ""),
                                                                     row.label_text))
    rows = []
    for i, s in enumerate(services):
        fields = s.model_dump(mode="json", exclude={"id", "areas", "provenance", "field_sources"},
                              exclude_defaults=True)
        texts = prose[fields["service_type"]]
        fields["description"], label_text = texts[i % len(texts)]
        origin = Origin(source="synthetic", file="bench", line=i + 1, source_id=str(i), licence="OGL-UK-3.0",
                        fetched_at=s.provenance[0].fetched_at)
        rows.append(Candidate(fields, origin, label_text=label_text))
    return rows


def split(rows, placer, path: Path, workers: int) -> dict[str, list[float]]:
    """`build_index`'s parts one after the other (collector paused), not side by side as it runs them with workers:
    per part, the parent's wall seconds, its CPU seconds and its workers' (`workers` > 1: the rows prepared and
    stored by worker processes, merged as they come, `indexer.merge.Merging`, the stored ones copied)."""
    from indexer.merge import Merging
    from indexer.pipeline import IndexReport, collector_paused, prepare_rows
    from indexer.precedence import source_precedence
    from indexer.workers import prepare_in_workers
    from search.embedded import EmbeddedWriter

    times: dict[str, list[float]] = {}

    def timed(part: str, run):
        started, cpu, children = time.perf_counter(), time.process_time(), children_cpu()
        out = run()
        times[part] = [time.perf_counter() - started, time.process_time() - cpu, children_cpu() - children]
        return out

    writer = EmbeddedWriter(path)
    parts = writer.parts() if workers > 1 else None
    with collector_paused():
        if parts is None:
            prepared = timed("prepare", lambda: prepare_rows(rows, placer, IndexReport()))
        else:
            prepared = timed("prepare", lambda: list(prepare_in_workers(rows, placer, IndexReport(), parts, workers)))
        merged = timed("merge", lambda: list(Merging(source_precedence()).stream(prepared)))
        timed("write", lambda: writer.replace_all(merged))
    if parts is not None:
        parts.remove()
    return times


def pss_mib() -> float:
    """Proportional set size of this process and its children together (a page shared by k processes counts 1/k
    in each): what a parallel build's processes hold between them, since the workers share the pages they were
    forked with until they write to them."""
    pids = [str(os.getpid())]
    for task in Path("/proc/self/task").iterdir():
        pids += (task / "children").read_text().split()
    total = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:  # a worker that has just ended
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("Pss:"))
    return total / 1024


class PeakPss:
    """The largest `pss_mib` sampled every 0.2 s while in the `with` block."""

    def __enter__(self) -> PeakPss:
        import threading

        self.peak, self._done = pss_mib(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, pss_mib())

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended (a parallel build's workers, once it returns)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child(step: str, n: int, parts: bool = False) -> dict:
    """Runs in the child process: make the inputs, then time one step (and, with `parts`, its parts)."""

    from indexer.pipeline import GeographyPlacer, build_index
    from indexer.workers import Workers
    from search.embedded import EmbeddedWriter

    services = common.corpus(n)
    work = Path(tempfile.mkdtemp(prefix="rehabmap-build-"))
    path = work / "index.sqlite"
    if step == "writer":
        inputs = services
        run = lambda: EmbeddedWriter(path).replace_all(inputs)  # noqa: E731
    else:
        from geodata.geography import Geography

        inputs = candidates(services)
        del services
        geography = Geography.open(common.geodata_dir())
        geography.areas  # load the boundaries before the clock starts (the API and CLI do the same)
        placer = GeographyPlacer(geography)
        workers = (os.cpu_count() or 1) if step == "parallel" else 1
        run = lambda: build_index(inputs, placer, EmbeddedWriter(path), progress=False,  # noqa: E731
                                  workers=Workers(workers) if workers > 1 else None).indexed
    before = rss_mib()
    started, cpu = time.perf_counter(), time.process_time() + children_cpu()
    with PeakPss() as pss:
        count = run()
    seconds, cpu = time.perf_counter() - started, time.process_time() + children_cpu() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    size = path.stat().st_size / 2**20
    path.unlink()
    result = {"step": step, "n": n, "count": count, "seconds": seconds, "cpu": cpu, "peak": peak, "before": before,
              "file_mib": size, "workers_peak": workers_peak, "pss": pss.peak}
    if parts and step != "writer":
        result["split"] = split(inputs, placer, path, workers)
        path.unlink()
    work.rmdir()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k,500k")
    parser.add_argument("--steps", default="writer,pipeline,parallel")
    parser.add_argument("--rounds", type=int, default=1, help="runs per size and step (the median is shown)")
    parser.add_argument("--split", action="store_true",
                        help="also time the pipeline's parts (prepare, merge, write) one after the other")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child[0], int(args.child[1]), args.split)), flush=True)
        return
    common.geodata_dir()
    load_before = common.load_average()
    rows, parts = [], []
    for n in common.parse_sizes(args.sizes):
        for step in args.steps.split(","):
            results = []
            for _ in range(args.rounds):
                command = [sys.executable, "-m", "bench.bench_build", "--child", step, str(n)]
                load = os.getloadavg()[0]
                out = subprocess.run(command + (["--split"] if args.split else []),
                                     cwd=common.ROOT, capture_output=True, text=True, check=True).stdout
                results.append({**json.loads(out.split("RESULT ", 1)[1]),
                                "load": f"{load:.1f}→{os.getloadavg()[0]:.1f}"})
            results.sort(key=lambda r: r["seconds"])
            r = results[len(results) // 2]
            per_s = r["count"] / r["seconds"]
            log(f"{label(n)} {step}: {r['count']:,} records in {r['seconds']:.2f} s = {per_s:,.0f}/s, "
                f"peak RSS {r['peak']:,.0f} MiB, load {r['load']}")
            rows.append([label(n), step, f"{r['count']:,}", fmt(r["seconds"], 2), fmt(r["cpu"], 2), f"{per_s:,.0f}",
                         f"{r['count'] / r['cpu']:,.0f}",
                         fmt(per_s / TARGET_PER_S, 2), fmt(r["peak"], 0),
                         fmt(r["peak"] - r["before"], 0), fmt(r["workers_peak"], 0) if r["workers_peak"] else "-",
                         fmt(r["pss"], 0),
                         fmt(r["file_mib"], 0), r["load"]])
            if "split" in r:
                times = r["split"]
                parts.append([label(n), step, *(f"{fmt(wall, 2)} / {fmt(cpu, 2)} / {fmt(children, 2)}"
                                                for wall, cpu, children in times.values()),
                              fmt(r["count"] / sum(wall for wall, _, _ in times.values()), 0)])
    print(f"Machine: {common.machine()}")
    print(f"Before: {load_before}; after: {common.load_average()}")
    print()
    print(common.table(
        f"Index build (median of {args.rounds} run(s) per row; target: writer and whole import (pipeline) >= "
        f"{TARGET_PER_S:,} records/s at 100k)",
        ["N", "step", "records", "seconds", "CPU s", "records/s", "records/CPU s", "/ target", "peak RSS MiB",
         "above inputs MiB", "a worker's peak MiB", "peak PSS of all MiB", "file MiB", "load before→after"], rows))
    if parts:
        print()
        print(common.table("The whole import's parts, one after the other in the same child (seconds: the parent's "
                           "wall / its CPU / its workers' CPU; the median run's)",
                           ["N", "step", "prepare", "merge", "write", "rows/s"], parts))


if __name__ == "__main__":
    main()
