"""Instructions a row of the whole import costs, counted by valgrind: an A/B that a loaded machine cannot blur.

On the shared 2-core machine one `bench_build` run resolves ±10–20% of CPU time (other sessions' suites), so
a change worth a few percent of a row cannot be shown with it. Instructions executed do not depend on the
load: run under callgrind with instrumentation off, this makes the inputs (the rows `bench_build --steps
pipeline` times, the real geodata), switches counting on (`callgrind_control -i on`) and runs the part asked
for, once, with the collector paused as `build_index` pauses it. Run it in two checkouts with the same
`--rows` and subtract a run with `--part none` (what is counted after the switch besides the part: the
switch itself and the interpreter's exit), then divide by the rows:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        python -m bench.build_instructions --rows 2000 --part prepare        # "I refs" is the count

The count includes valgrind's view of SQLite and pydantic-core (C and Rust) as well as the interpreter.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from bench import common
from bench.bench_build import candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--part", choices=("none", "prepare", "all"), default="all",
                        help="prepare: `prepare_rows` only; all: prepare, merge and write (`build_index`'s parts)")
    args = parser.parse_args()
    from geodata.geography import Geography
    from indexer.merge import merge_duplicates
    from indexer.pipeline import GeographyPlacer, IndexReport, collector_paused, prepare_rows
    from search.embedded import EmbeddedWriter

    rows = candidates(common.corpus(args.rows))
    geography = Geography.open(common.geodata_dir())
    geography.areas  # the boundaries, loaded before counting starts
    placer = GeographyPlacer(geography)
    prepare_rows(rows[:50], placer, IndexReport())  # first calls (label cache, lazy imports) before counting
    path = Path(tempfile.mkdtemp(prefix="rehabmap-instructions-")) / "index.sqlite"
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    with collector_paused():
        if args.part != "none":
            services = prepare_rows(rows, placer, IndexReport())
            if args.part == "all":
                merged, _notes = merge_duplicates(services)
                EmbeddedWriter(path).replace_all(merged)


if __name__ == "__main__":
    main()
