"""A full rebuild of the index: `rehabmap index SOURCE...`, and the maintainers' upload of a curated table,
which rebuilds the same way with the new table in place of the one it replaces.

A rebuild reads the source files it is given, the curated tables uploaded through the maintainers' pages
(`REHABMAP_HOME/curated/`, one file per kind, under its template's name) and the synced records
(`indexer.sync.rebuild`); the maintainers' edits are laid over it; the new index goes live only once complete,
and only if it keeps the live directory (`indexer.pipeline.build_index`; else `ImportRefused`, and the live
index, its coverage and the uploaded tables stay as they were). The source files of the last rebuild that went
live are remembered (`REHABMAP_HOME/index-sources.json`, by their server paths, read by nothing but this
module), so an upload rebuilds from them: it cannot name them itself. What a rebuild reports (the refusal, the
rejections, the services' provenance) names each by its file name (`indexer.sources.load_source`), with the
folders that tell it apart from another source of the same name (`indexer.sources.source_names`), since the
maintainers' pages and the audit log show it. One rebuild runs at a time across processes and hosts (a named
lock in the maintainers' store): two at once would each read the uploaded tables before the other's was kept,
and whichever went live last would lack the other's services while `curated/` held them. The second is refused
(`RebuildRunning`), not queued: an upload's confirm can be sent again, and a scheduled `rehabmap index` runs
again.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from app.parts import open_backend, open_geography, open_previous, open_writer
from app.sync import SourceRuns, hold_for_review
from indexer.pipeline import GeographyPlacer, ImportRefused, IndexReport, RowWorkers, build_index, chain
from indexer.precedence import source_precedence
from indexer.rows import Rejection
from indexer.sources import load_source, source_names
from indexer.sync.live import built_at, take_rebuild
from indexer.sync.rebuild import record_curated_coverage, with_directory
from indexer.sync.steps import reached
from indexer.sync.store import SyncStore
from indexer.upload import KEPT, kept_tables
from rehabmap.config import Settings
from rehabmap.index.base import IndexWriter
from rehabmap.maintain.edits import OverlayWriter
from rehabmap.errors import RebuildRunning
from rehabmap.maintain.database import named_lock_of
from rehabmap.maintain.store import REBUILD_LOCK, Directory, store_of

SOURCES_FILE = "index-sources.json"
PENDING_FILE = "rebuild-pending.json"  # a rebuild under way: what it leaves to do once its index is live
INCOMING = ".incoming"  # an uploaded table while its rebuild runs, beside the kept one it replaces


@dataclass
class Rebuilt:
    """A rebuild that went live: its report, and what the review queue gained from the rows it held (`hold_for_review`:
    each source's run, and those whose live write was refused)."""

    report: IndexReport
    queued: SourceRuns = field(default_factory=lambda: SourceRuns([], []))


def remembered_sources(home: Path) -> list[Path]:
    """The source files of the last rebuild that went live (none before the first)."""
    path = home / SOURCES_FILE
    return [Path(p) for p in json.loads(path.read_text(encoding="utf-8"))] if path.is_file() else []


def rebuild_index(settings: Settings, sources: Sequence[Path], *, actor: str, mapping: Path | None = None,
                  table: Path | None = None, force: bool = False, max_drop_share: float | None = None,
                  progress: bool = False, force_queue: bool = False, workers: int = 1) -> Rebuilt:
    """Build a new index from `sources`, the uploaded curated tables (`table` in place of the uploaded one of
    its name, if any) and the synced records, and swap it in; raises `ImportRefused`, changing nothing, when
    the checks of `build_index` refuse it, and `RebuildRunning` while another rebuild is under way. `actor` is
    who the review queue's runs are recorded under. `force` accepts a loss from the live index beyond
    `max_drop_share`; `force_queue`, a change to the review queue beyond the sync's share (two checks).
    `workers`: processes that prepare the rows of a large import (`build_index`); a server's rebuild keeps 1."""
    with named_lock_of(store_of(settings), REBUILD_LOCK) as ours:
        if not ours:
            raise RebuildRunning("Another rebuild of the index is running (an upload of a curated table or "
                                 "'rehabmap index'). Nothing was changed: try again when it has finished.")
        _recover(settings)
        return _rebuild_index(settings, sources, actor=actor, mapping=mapping, table=table, force=force,
                              max_drop_share=max_drop_share, progress=progress, force_queue=force_queue,
                              workers=workers)


def _workers(count: int) -> RowWorkers | None:
    """`count` processes for `build_index`, or None for one: loaded here, as only a command's import forks."""
    if count <= 1:
        return None
    from indexer.workers import Workers

    return Workers(count)


def _rebuild_index(settings: Settings, sources: Sequence[Path], *, actor: str, mapping: Path | None,
                   table: Path | None, force: bool, max_drop_share: float | None, progress: bool,
                   force_queue: bool, workers: int) -> Rebuilt:
    home = settings.home
    tables = {**kept_tables(home), **({table.name: table} if table is not None else {})}
    files = [*sources, *tables.values()]
    names = source_names(files)
    live_writer = open_writer(settings)
    live = open_backend(settings)
    rows = with_directory(store_of(settings), files,
                          chain(*(load_source(path, mapping=mapping, name=names[path]) for path in sources),
                                *(load_source(path, name=names[path]) for path in tables.values())), live=live)
    earlier = open_previous(settings)  # an earlier release's index: what a first build of this schema replaces
    replaced = live if earlier is None or live.built() else earlier.index
    directory = Directory.existing(settings)
    writer: IndexWriter = live_writer
    if directory is not None:  # the maintainers' edits are laid over the new index before it goes live
        writer = OverlayWriter(live_writer, directory)
    precedence = source_precedence()  # a mapping's `supersedes` refused before anything is begun
    _begin(home, sources, table)
    try:
        placer = GeographyPlacer(open_geography(settings))
        report = build_index(rows, placer, writer, live=replaced, precedence=precedence,
                             force=force, progress=progress, workers=_workers(workers),
                             max_drop_share=settings.index_max_drop_share if max_drop_share is None else max_drop_share)
    except ImportRefused as refused:
        refused.report.warnings += getattr(writer, "warnings", [])
        _abandon(home)
        raise
    reached("swapped")
    _note_rejected(home, report.rejected)
    report.warnings += getattr(writer, "warnings", [])
    if earlier is not None:  # still there, for that release's processes
        report.warnings.append(earlier.left())
    _finish(settings)
    if not report.held:
        return Rebuilt(report)
    return Rebuilt(report, hold_for_review(settings, report.held, placer, actor=actor, force=force_queue))


def finish_interrupted(settings: Settings) -> None:
    """A rebuild killed after its index went live and before what follows (the uploaded table kept, the curated
    coverage claims, the sources remembered) is finished; one killed before is forgotten, its table with it.
    At the start of every rebuild and of every server start (skipped while a rebuild holds the lock: it does
    this itself). Without it, the next upload would rebuild without the source files of the rebuild that went
    live, and the next rebuild without the table the index already serves."""
    if not (settings.home / PENDING_FILE).is_file():
        return  # (the lock is a file: nothing is made in a home that has no rebuild to finish)
    with named_lock_of(store_of(settings), REBUILD_LOCK) as ours:
        if ours:
            _recover(settings)


def _recover(settings: Settings) -> None:
    path = settings.home / PENDING_FILE
    if not path.is_file():
        return
    began = datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["at"])
    live_built_at = built_at(open_backend(settings))
    if live_built_at is not None and live_built_at >= began:
        _finish(settings)
    else:
        _abandon(settings.home)


def _begin(home: Path, sources: Sequence[Path], table: Path | None) -> None:
    """Before the build: what it must leave once live (`PENDING_FILE`), and the uploaded table beside the kept ones,
    each written whole (a temporary file, then renamed), so a kill at any point leaves one or the other."""
    if table is not None:
        (home / KEPT).mkdir(parents=True, exist_ok=True)
        _write_whole(home / KEPT / (table.name + INCOMING), table.read_bytes())
    pending = {"at": datetime.now(timezone.utc).isoformat(), "sources": [str(Path(p).resolve()) for p in sources]}
    _write_whole(home / PENDING_FILE, json.dumps(pending).encode())


def _finish(settings: Settings) -> None:
    """The new index is live: the store learns it (`_swap_taken`), its uploaded table is the one every later rebuild
    reads, the coverage its curated tables claim replaces the previous one's, and its sources are remembered. Each
    step is safe to repeat."""
    home = settings.home
    _swap_taken(settings)
    path = home / PENDING_FILE
    pending = json.loads(path.read_text(encoding="utf-8"))
    sources = [Path(p) for p in pending["sources"]]
    for incoming in (home / KEPT).glob("*" + INCOMING):
        os.replace(incoming, incoming.with_name(incoming.name[:-len(INCOMING)]))
    record_curated_coverage(store_of(settings), [*sources, *kept_tables(home).values()],
                            [(file, line) for file, line in pending.get("rejected", [])])
    _write_whole(home / SOURCES_FILE, json.dumps([str(p) for p in sources]).encode())
    path.unlink()


def _swap_taken(settings: Settings) -> None:
    """The store learns that the rebuild's index is live (`indexer.sync.live.take_rebuild`) as it swaps in, not at
    the next live write: what the store then says is behind, sync-status, /health and the server's own catch-up
    read, is what the new index lacks. Before, until a sync, review decision or server start wrote to it, what a run
    killed before its live write applied was said behind though the index showed it (held back, where a mapping had
    been put wrong since), and what a live write between the rebuild's read and its swap wrote, which the swap
    undid, was said shown, so a running server never caught up with it."""
    store, directory = SyncStore.existing(store_of(settings)), Directory.existing(settings)
    if store is not None and directory is not None:
        with directory.index_lock():
            take_rebuild(store, open_backend(settings))


def _note_rejected(home: Path, rejected: Sequence[Rejection]) -> None:
    """The rows the build rejected, beside what it must leave (`PENDING_FILE`): a curated table's row rejected past
    its own checks (a postcode no directory holds) claims no coverage (`record_curated_coverage`). Written once the
    index is live; a kill before it leaves the claims as the tables' checks alone make them."""
    path = home / PENDING_FILE
    pending = json.loads(path.read_text(encoding="utf-8"))
    pending["rejected"] = [(r.origin.file, r.origin.line) for r in rejected if r.origin.line]
    _write_whole(path, json.dumps(pending).encode())


def _abandon(home: Path) -> None:
    """The new index never went live: nothing it would have left is kept."""
    curated = home / KEPT
    for incoming in curated.glob("*" + INCOMING):  # (none, and no error, when there is no folder)
        incoming.unlink()
    with contextlib.suppress(OSError):  # the folder `_begin` made for the table, if nothing else is in it
        curated.rmdir()
    (home / PENDING_FILE).unlink(missing_ok=True)


def _write_whole(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def rebuild_with_table(settings: Settings, table: Path, *, actor: str) -> Rebuilt:
    """The maintainers' upload: a rebuild from the last one's source files with `table` in place of the
    uploaded table of its name (`web.keepers.maintainer_upload` calls it through `app.state.rebuild_with_table`,
    since the pages cannot import this root)."""
    return rebuild_index(settings, remembered_sources(settings.home), actor=actor, table=table)
