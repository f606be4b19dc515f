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

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.parts import open_backend, open_geography, open_previous, open_writer
from app.pending_rebuild import (SOURCES_FILE, abandon, begin, finish, forget_unless_live, note_rejected, recover,
                                 said_failed)
from app.sync import SourceRuns, hold_for_review
from indexer.pipeline import GeographyPlacer, ImportRefused, IndexReport, RowWorkers, build_index, chain
from indexer.precedence import source_precedence
from indexer.sources import load_source, source_names
from indexer.sync.live import built_at
from indexer.sync.rebuild import with_directory
from indexer.sync.steps import reached
from indexer.upload import kept_tables
from rehabmap.config import Settings
from rehabmap.index.base import IndexWriter
from rehabmap.maintain.edits import OverlayWriter
from rehabmap.errors import OfTheIndex, RebuildRunning
from rehabmap.maintain.database import named_lock_of
from rehabmap.maintain.store import REBUILD_LOCK, Directory, store_of



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
        recover(settings)
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
    try:  # asked before anything is begun (under the rebuild lock nothing swaps in between): refused, nothing is left
        live_built_at = built_at(live)
    except OfTheIndex as unanswered:  # unavailable, or refused (a 4xx: before, said without the note)
        raise unanswered.served_unchanged() from unanswered
    rows = with_directory(store_of(settings), files,
                          chain(*(load_source(path, mapping=mapping, name=names[path]) for path in sources),
                                *(load_source(path, name=names[path]) for path in tables.values())),
                          live_built_at=live_built_at)
    earlier = open_previous(settings)  # an earlier release's index: what a first build of this schema replaces
    replaced = live if earlier is None or live.built() else earlier.index
    directory = Directory.existing(settings)
    writer: IndexWriter = live_writer
    if directory is not None:  # the maintainers' edits are laid over the new index before it goes live
        writer = OverlayWriter(live_writer, directory)
    precedence = source_precedence()  # a mapping's `supersedes` refused before anything is begun
    build = uuid.uuid4().hex  # what its index will bear, so that a rebuild cut short knows it (`recover`)
    begin(home, sources, table, build)
    try:
        placer = GeographyPlacer(open_geography(settings))
        report = build_index(rows, placer, writer, live=replaced, precedence=precedence, build=build,
                             force=force, progress=progress, workers=_workers(workers),
                             max_drop_share=settings.index_max_drop_share if max_drop_share is None else max_drop_share)
    except ImportRefused as refused:
        refused.report.warnings += getattr(writer, "warnings", [])
        abandon(home)
        raise
    except Exception as failed:
        forget_unless_live(settings, failed)
        raise
    reached("swapped")
    try:
        note_rejected(home, report.rejected)
        finish(settings)
    except Exception as failed:  # live, not finished: left for the next look, said failed (not "running")
        said_failed(settings, failed, True)
        raise
    report.warnings += getattr(writer, "warnings", [])
    if earlier is not None:  # still there, for that release's processes
        report.warnings.append(earlier.left())
    if not report.held:
        return Rebuilt(report)
    return Rebuilt(report, hold_for_review(settings, report.held, placer, actor=actor, force=force_queue))


def rebuild_with_table(settings: Settings, table: Path, *, actor: str) -> Rebuilt:
    """The maintainers' upload: a rebuild from the last one's source files with `table` in place of the
    uploaded table of its name (`web.keepers.maintainer_upload` calls it through `app.state.rebuild_with_table`,
    since the pages cannot import this root)."""
    return rebuild_index(settings, remembered_sources(settings.home), actor=actor, table=table)
