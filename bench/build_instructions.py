"""Instructions a row of the whole import costs, counted by valgrind: an A/B that a loaded machine cannot blur.

On the shared 2-core machine one `bench_build` run resolves ±10–20% of CPU time (other sessions' suites), so
a change worth a few percent of a row cannot be shown with it. Instructions executed do not depend on the
load: run under callgrind with instrumentation off, this makes the inputs (the rows `bench_build --steps
pipeline` times, the real geodata), switches counting on (`callgrind_control -i on`) and runs the part asked
for, once, with the collector paused as `build_index` pauses it. Run it in two checkouts with the same
`--rows` and subtract a run with `--part none` (what is counted after the switch besides the part: the
switch itself; the process ends without the interpreter's shutdown), then divide by the rows:

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
                        help="prepare: `prepare_rows` only; all: the whole import, `build_index` (prepare, merge, "
                             "write, the report's counts)")
    args = parser.parse_args()
    from geodata.geography import Geography
    from indexer.pipeline import GeographyPlacer, IndexReport, build_index, collector_paused, prepare_rows
    from search.embedded import EmbeddedWriter

    rows = candidates(common.corpus(args.rows))
    geography = Geography.open(common.geodata_dir())
    geography.areas  # the boundaries, loaded before counting starts
    placer = GeographyPlacer(geography)
    prepare_rows(rows[:50], placer, IndexReport())  # first calls (label cache, lazy imports) before counting
    path = Path(tempfile.mkdtemp(prefix="rehabmap-instructions-")) / "index.sqlite"
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    with collector_paused():  # as `build_index` pauses it
        if args.part == "prepare":
            prepare_rows(rows, placer, IndexReport())
        elif args.part == "all":
            build_index(rows, placer, EmbeddedWriter(path), progress=False)
    # Out at once: the interpreter's shutdown would be counted too, and its collection walks whatever the
    # part left alive (the records: ~9% of a 2,000-row `all` count, far less for `none`), no row's cost.
    os._exit(0)


if __name__ == "__main__":
    main()
