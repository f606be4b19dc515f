"""An import's rows prepared and stored in worker processes, so that a large import uses every core (issue 18).

Preparing a row (its type, needs, areas, validation) and encoding it for the index (its column values, stored JSON,
full-text fields) are most of an import's CPU and need nothing of the other rows. So once the rows are read, their
chunks go to forked workers, and a worker writes the records of each chunk it prepares into a part file of their own
(`rehabmap.index.base.Parts`), sending back only what this process needs to merge them: each record's merge keys and
type, and the rows rejected with their reasons. Nothing of a record crosses a pipe: sent back pickled, a record cost
this process more to unpickle than preparing it saved (bench/RESULTS.md, session 24). What this process keeps doing,
in order and while the workers prepare the rest, is what depends on earlier rows: the report (read, held, warnings,
rejections in the rows' order), merging duplicates (a merged record is read back from its part) and the write, which
copies the parts' records into the new index at SQLite's speed. The index and the report are the same as one
process's (`tests/indexer/test_workers.py`, `bench.build_identity --workers`).

Workers are forked (the loaded boundaries are shared, not loaded again) only for `FORK_FROM` rows or more: a
smaller import is prepared here, where a fork and its part files would cost more than they save.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from indexer.merge import Keyed
from rehabmap.record_keys import merge_keys
from indexer.pipeline import (CHUNK, ImportRefused, IndexReport, Placer, candidates_of, collect, prepare_all,
                              read_chunks)
from indexer.rows import Candidate, Rejection, Row
from rehabmap.index.base import Parts
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType

# Fewer rows are prepared in the importing process. Forking, a part file and its copy cost ~0.07 s of CPU and 40-130
# ms of wall time more than preparing here (60 and 2,000 rows, measured at load 5.8); the workers only overlap this
# process's share of the work from a second chunk on, and save ~25 µs a row at best (estimated for two idle cores):
# five chunks, so that each of two workers prepares at least two (bench/RESULTS.md, session 26).
FORK_FROM = 5 * CHUNK
_TYPES = {member.value: member for member in ServiceType}  # `ServiceType(value)` costs ~2 µs a call

# What a worker sends back for a chunk: the part it wrote the chunk's records to, then per candidate row in order
# its rejection or its record's merge keys, and each record's type.
ChunkDone = tuple[Any, list[Rejection | list[tuple[str, str]]], list[str]]

# A worker's own placer, part files and the import's rows, set by `_start` in each worker: it is forked, so they
# are the parent's (nothing is pickled), and a chunk is sent as its number.
_placer: Placer | None = None
_parts: Parts | None = None
_chunks: list[list[Candidate | Rejection]] = []


@dataclass(frozen=True)
class Workers:
    """`count` forked processes that prepare and store a large import's rows: what `build_index(workers=...)`
    takes (`indexer.pipeline.RowWorkers`) from the command that chose them."""

    count: int

    def prepare(self, rows: Iterable[Row], placer: Placer, report: IndexReport,
                parts: Parts, progress: bool) -> Iterator[Service | Keyed]:
        return prepare_in_workers(rows, placer, report, parts, self.count, progress)


def prepare_in_workers(rows: Iterable[Row], placer: Placer, report: IndexReport,
                       parts: Parts, workers: int, progress: bool = False) -> Iterator[Service | Keyed]:
    """`prepare_rows` across `workers` processes: what it reports, and each record in order as its chunk is done,
    stored in a part file, with the keys it is merged by (a record alone where the rows are fewer than `FORK_FROM`,
    prepared here). The rows are read first: sent to a worker, a row cost this process more than reading it did
    (pickled, ~5 µs)."""
    chunks = list(read_chunks(rows, report, progress))
    prepared: list[Service | Keyed] = []
    if sum(map(len, chunks)) < FORK_FROM:
        for chunk in chunks:
            collect(chunk, prepare_all(candidates_of(chunk), placer), report, prepared)
        yield from prepared
        return
    pool = ProcessPoolExecutor(min(workers, len(chunks)), mp_context=multiprocessing.get_context("fork"),
                               initializer=_start, initargs=(placer, parts, chunks))
    try:
        for chunk, done in zip(chunks, pool.map(_prepare, range(len(chunks)))):
            collect(chunk, _stored(parts, done), report, prepared)
            yield from prepared
            prepared.clear()
    except BrokenProcessPool as stopped:
        raise ImportRefused(f"the rows could not all be prepared: a worker process stopped ({stopped}); the new "
                            "index was not swapped in, the live index is unchanged.", report) from stopped
    finally:
        pool.shutdown(cancel_futures=True)


def _stored(parts: Parts, done: ChunkDone) -> list[Rejection | Keyed]:
    """A chunk's outcomes in its candidates' order: each record as stored in its part, with its keys (made a chunk
    at a time: `tuple.__new__` makes a `Keyed` without the Python-level `__new__` of a NamedTuple)."""
    part, outcomes, types = done
    keys = [outcome for outcome in outcomes if not isinstance(outcome, Rejection)]
    records = map(tuple.__new__, repeat(Keyed), zip(keys, parts.stored(part, [key[0][1] for key in keys],
                                                                     list(map(_TYPES.__getitem__, types)))))
    if len(keys) == len(outcomes):
        return list(records)
    return [outcome if isinstance(outcome, Rejection) else next(records) for outcome in outcomes]


def _start(placer: Placer, parts: Parts, chunks: list[list[Candidate | Rejection]]) -> None:
    global _placer, _parts, _chunks
    _placer, _parts, _chunks = placer.forked(), parts, chunks


def _prepare(chunk: int) -> ChunkDone:
    """In a worker: the chunk's rows prepared and its records written into a part of their own."""
    assert _placer is not None and _parts is not None, "a worker started by prepare_in_workers"
    outcomes = prepare_all(candidates_of(_chunks[chunk]), _placer)
    services = [outcome for outcome in outcomes if not isinstance(outcome, Rejection)]
    return (_parts.write(services),
            [outcome if isinstance(outcome, Rejection) else merge_keys(outcome) for outcome in outcomes],
            [service.service_type._value_ for service in services])
