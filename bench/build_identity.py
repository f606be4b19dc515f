"""A fingerprint of what the whole import writes, to show that a change to the pipeline changes no byte of it.

Builds the sample (`sample/rehabmap-sample.oruk.json`) and a synthetic corpus (`bench.bench_build.candidates`,
the rows `bench_build --steps pipeline` times) with `indexer.pipeline.build_index`, the real geodata and the
embedded writer, then prints, per build, the import's report and a SHA-256 of every table of the index
file (records, query columns, full-text tables, snapshot; not the build's clock time), row by row in
rowid order. Run it in two
checkouts and compare the outputs:

    python -m bench.build_identity [--synthetic 20000] > /tmp/after.txt    # in each checkout's root
    diff /tmp/before.txt /tmp/after.txt                                     # nothing: byte-identical

`--workers N` builds with the rows prepared in N processes (`indexer.workers`): the same lines as with 1.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench import common
from bench.bench_build import candidates


def fingerprint(path: Path) -> list[str]:
    """One line per table: its name, row count and the SHA-256 of its rows."""
    lines = []
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            digest = hashlib.sha256()
            count = 0
            try:  # the rowid too: a row's number is how the query columns name it
                rows = db.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid')
            except sqlite3.OperationalError:  # a table WITHOUT ROWID: its primary key's order
                rows = db.execute(f'SELECT * FROM "{table}"')
            for row in rows:
                if table == "meta" and row[1] == "built_at":
                    continue  # the build's clock time
                digest.update(repr(row).encode())
                count += 1
            lines.append(f"  {table}: {count} rows, sha256 {digest.hexdigest()}")
    return lines


def build(name: str, rows: Iterable[Any], placer: Any, workers: int = 1) -> list[str]:
    """`build_index` into a temporary file: the report's lines and the file's fingerprint."""
    from indexer.pipeline import build_index
    from indexer.workers import Workers
    from search.embedded import EmbeddedWriter

    with tempfile.TemporaryDirectory(prefix="rehabmap-identity-") as work:
        path = Path(work) / "index.sqlite"
        report = build_index(rows, placer, EmbeddedWriter(path), progress=False,
                             workers=Workers(workers) if workers > 1 else None)
        return [f"{name}:", *(f"  report {line}" for line in report.summary_lines()), *fingerprint(path)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", type=int, default=20_000, help="rows of the synthetic build")
    parser.add_argument("--workers", type=int, default=1, help="processes that prepare the rows (`build_index`)")
    args = parser.parse_args()
    from geodata.geography import Geography
    from indexer.pipeline import GeographyPlacer
    from indexer.sources import load_source

    placer = GeographyPlacer(Geography.open(common.geodata_dir()))
    # A relative path: the records' provenance names the file, and the two checkouts' paths differ.
    sample = (common.ROOT / "sample" / "rehabmap-sample.oruk.json").relative_to(Path.cwd())
    lines = build("sample", load_source(sample), placer, args.workers)
    lines += build(f"synthetic {args.synthetic}", candidates(common.corpus(args.synthetic)), placer, args.workers)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
