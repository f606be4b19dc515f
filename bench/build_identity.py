"""A fingerprint of what the whole import writes, to show that a change to the pipeline changes nothing of it.

Builds the sample (`sample/rehabmap-sample.oruk.json`) and a synthetic corpus (`bench.bench_build.candidates`,
the rows `bench_build --steps pipeline` times) with `indexer.pipeline.build_index`, the real geodata and the
embedded writer, then prints, per build, the import's report and a SHA-256 of every table of the index
file (records, query columns, full-text tables, snapshot; not the build's clock time nor its token), row by row in
rowid order; of the full-text segments, what they serve (`words`). Run it in two
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
    """One line per table: its name, row count and the SHA-256 of its rows; for an FTS5 table's segments, what is
    searched in them (`words`)."""
    lines = []
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        searched = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                                   "sql LIKE 'CREATE VIRTUAL TABLE % USING fts5(%' ORDER BY name")]
        segments = {f"{name}_{shadow}" for name in searched for shadow in ("data", "idx")}
        for table in tables:
            if table in segments:
                continue
            digest = hashlib.sha256()
            count = 0
            try:  # the rowid too: a row's number is how the query columns name it
                rows = db.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid')
            except sqlite3.OperationalError:  # a table WITHOUT ROWID: its primary key's order
                rows = db.execute(f'SELECT * FROM "{table}"')
            for row in rows:
                if table == "meta" and row[1] in ("built_at", "build"):
                    continue  # the build's clock time, and its own token (a rebuild's, to know it when it is live)
                digest.update(repr(row).encode())
                count += 1
            lines.append(f"  {table}: {count} rows, sha256 {digest.hexdigest()}")
        for table in searched:
            lines += words(db, table)
    return lines


def words(db: sqlite3.Connection, table: str) -> list[str]:
    """What an FTS5 table's segments (its `_data` and `_idx` tables) serve, where their bytes may differ: a parallel
    import copies its words a run at a time, and FTS5 writes what it holds at each statement's savepoint, so the same
    words land in other segments than one process's. Three lines: every word's every place (term, row, column,
    position: the index's content); the totals bm25 ranks by (the rows, each column's words: the `_data` table's
    first row; each row's own sizes are `_docsize`, compared row by row above); and, for every term, the answer of
    the search the index makes of a word (`search.embedded._fts_query`: the term, and the term as a prefix), each
    row with its bm25 score, in the order `EmbeddedIndex.text_rows` reads them. Equal lines: every search over the
    words finds the same rows, ranked the same."""
    db.execute(f"CREATE VIRTUAL TABLE temp.places USING fts5vocab(main, {table}, 'instance')")
    db.execute(f"CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, {table}, 'row')")
    try:
        places, count = hashlib.sha256(), 0
        for row in db.execute("SELECT term, doc, col, offset FROM temp.places ORDER BY term, doc, col, offset"):
            places.update(repr(row).encode())
            count += 1
        totals = db.execute(f"SELECT block FROM {table}_data WHERE id = 1").fetchone()[0]
        answers, searches = hashlib.sha256(), 0
        for (term,) in db.execute("SELECT term FROM temp.terms ORDER BY term").fetchall():
            for query in (f'"{term}"', f'"{term}"*'):
                answers.update(repr(db.execute(f"SELECT rowid, bm25({table}) FROM {table} WHERE {table} MATCH ? "
                                               f"ORDER BY bm25({table})", (query,)).fetchall()).encode())
                searches += 1
    finally:
        db.execute("DROP TABLE temp.places")
        db.execute("DROP TABLE temp.terms")
    return [f"  {table} words: {count} places, sha256 {places.hexdigest()}",
            f"  {table} totals: sha256 {hashlib.sha256(totals).hexdigest()}",
            f"  {table} searches: {searches}, sha256 {answers.hexdigest()}"]


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
