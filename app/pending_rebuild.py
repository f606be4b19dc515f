"""What a full rebuild (`app.rebuild`) leaves to do once its new index is live, kept in
`REHABMAP_HOME/rebuild-pending.json` from before its build: its uploaded table kept, the coverage its curated tables
claim, its sources remembered, and the store told that the index it read is live. A rebuild killed once its index
went live is finished by whatever comes next (`finish_interrupted`): the next rebuild, a server's start or its
periodic look (`app.converge`), a command's live index (`app.sync.open_live`); one killed before is forgotten, its
table with it. A module apart from `app.rebuild`, which runs the review queue's runs (`app.sync`), so that
`app.sync` can finish one without importing the rebuild (the two would import each other)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

from app.parts import open_backend
from indexer.rows import Rejection
from indexer.sync.live import take_rebuild
from indexer.sync.rebuild import record_curated_coverage
from indexer.sync.store import SyncStore
from indexer.upload import KEPT, kept_tables
from rehabmap.config import Settings
from rehabmap import errors
from rehabmap.errors import DomainError, IndexNotBuilt, SwitchNotKnown, SwitchUnsettled, for_operator
from rehabmap.index.base import IndexBackend
from rehabmap.maintain.database import named_lock_of
from rehabmap.maintain.store import REBUILD_LOCK, Directory, store_of
from search.embedded import process_alive, process_started

SOURCES_FILE = "index-sources.json"
PENDING_FILE = "rebuild-pending.json"  # a rebuild under way: what it leaves to do once its index is live
INCOMING = ".incoming"  # an uploaded table while its rebuild runs, beside the kept one it replaces


def finish_interrupted(settings: Settings) -> None:
    """A rebuild killed after its index went live and before what follows (the uploaded table kept, the curated
    coverage claims, the sources remembered) is finished; one killed before is forgotten, its table with it.
    At the start of every rebuild, of every server start and its every look (`app.converge.Converger.look`), and of
    a command's live index (`app.sync.open_live`), skipped while a rebuild holds the lock: it does this itself.
    Without it, the next upload would rebuild without the source files of the rebuild that went live, and the next
    rebuild without the table the index already serves. A live index that cannot say whose it is (it did not answer,
    503, or refused the read, a 4xx: any error but `IndexNotBuilt`) leaves the file to the next of them, logged;
    before, the rebuild was forgotten, its table with it, though the index bore its token, and a refused read went up
    through the server's start, which then failed. So does one judged live whose finishing fails (`finish`: the store
    could not learn it, or take its coverage claims), logged as that: before, it was logged as not judged. A
    rebuild's own `recover` raises either: the rebuild would replace the file. One whose switch the cluster may still
    apply is left alone, unsaid, until it has applied it or given it up (`SwitchUnsettled`): `sync-status` says it."""
    if not (settings.home / PENDING_FILE).is_file():
        return  # (the lock is a file: nothing is made in a home that has no rebuild to finish)
    with named_lock_of(store_of(settings), REBUILD_LOCK) as ours:
        if not ours:
            return
        try:
            went_live = _judged(settings)
        except SwitchUnsettled:
            return
        except DomainError as exc:  # the live index cannot say whose it is
            _left(f"a rebuild cut short could not be judged ({for_operator(exc)})")
            return
        if not went_live:
            return
        try:
            finish(settings)
        except DomainError as exc:
            _left(f"a rebuild cut short went live, and could not be finished ({for_operator(exc)})")


def _left(failed: str) -> None:
    """`finish_interrupted`'s word of a rebuild cut short that it leaves (its file, its table) for a later look."""
    errors.operator_log.tell(f"{failed}; it is left for the next rebuild, server start, sync or look", logging.WARNING)


@dataclass(frozen=True)
class Unfinished:
    """A rebuild that began and has not finished (`PENDING_FILE`), as `sync-status` says it (`said`) and gives it in
    `--json` (`to_dict`). `state`: "running" (a process of this machine that is running), "failed" (the rebuild
    failed and left it, `failed_at`, `error`, and `went_live`: true, or null where that is not known; `settles_at`: of a
    switch the cluster did not answer, the time before which it is not judged, null otherwise), "cut_short"
    (its process, of this machine, has ended without a word: killed) or "running_or_cut_short" (which is not known:
    another machine's, or a file of an earlier release, which names no process)."""

    state: str
    began_at: str
    pid: int | None
    host: str | None
    failed_at: str | None
    error: str | None
    went_live: bool | None
    settles_at: str | None
    said: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unfinished(settings: Settings) -> Unfinished | None:
    """A rebuild that began and has not finished (`PENDING_FILE`), read without finishing it: a status read changes
    nothing, and taking the rebuild's lock, even for a moment, would refuse a rebuild that starts then. Before, it
    said nothing, though a rebuild killed once its index went live leaves its sources, its uploaded table and its
    curated tables' coverage claims to whatever comes next. The file names the process that began it (`begin`: its
    pid, machine and start time, as a pid is reused: a container restarted gives its first processes the same
    pids, and the pid alone said a rebuild killed with the last one "is running"), so one still running on this
    machine is said under way, not as a `warning:`; and a rebuild that failed and left it
    says so in it (`failed`), so it is said failed, when and why, never under way: before, it was said under way
    while the process that failed (a server's upload) ran on. The process, not the rebuild's lock, tells running
    from killed, as the lock cannot be read without being taken. One of another machine (a shared store's), or
    whose file names none (a rebuild of an earlier release), is said as either."""
    pending = _pending(settings.home)
    if pending is None:
        return None
    began, pid, host, failed = pending["at"], pending.get("pid"), pending.get("host"), pending.get("failed")
    by = f" (process {pid} on {host})" if pid is not None else ""
    finishing = ("the next rebuild, server start, sync or review decision, or a running server's next look (every "
                 "REHABMAP_CONVERGE_EVERY_S seconds): its sources remembered, its uploaded table kept and its curated "
                 "tables' coverage claims made where its index went live, or forgotten with its table where not")
    if failed is not None:
        settles = failed.get("settles_at")
        live = ("its index went live" if failed["live"] else "whether its index went live is not known" + (
            f", nor judged before {settles}, when the search index has applied its switch or given it up"
            if settles else ""))
        return Unfinished("failed", began, pid, host, failed["at"], failed["error"], failed["live"], settles, (
            f"warning: unfinished rebuild: a rebuild began at {began}{by} and failed at {failed['at']} "
            f"({failed['error']}); {live}: it is finished by {finishing}"))
    if host == socket.gethostname() and isinstance(pid, int):
        if process_alive(pid, pending.get("started")):
            return Unfinished("running", began, pid, host, None, None, None, None,
                              f"rebuild under way: a rebuild began at {began}{by} and is running; it finishes itself")
        return Unfinished("cut_short", began, pid, host, None, None, None, None, (
            f"warning: unfinished rebuild: a rebuild began at {began}{by} and was cut short: it is finished by "
            f"{finishing}"))
    return Unfinished("running_or_cut_short", began, pid, host, None, None, None, None, (
        f"warning: unfinished rebuild: a rebuild began at {began}{by} and has not finished: while it runs it "
        f"finishes itself; cut short, it is finished by {finishing}"))


def forget_unless_live(settings: Settings, failure: Exception) -> None:
    """A rebuild that failed other than by its checks' refusal (`ImportRefused`: never live): forgotten, its table
    with it, where its index is not the live one; left, to be finished, where it is, and where that is not known:
    the live index cannot say whose it is, or the cluster did not answer the switch to it (`SwitchNotKnown`), which
    it may apply yet. Such a switch is not judged by reading the live index at once: before, a switch the cluster
    applied after that read (a gateway that gave up while it queued it) was taken for refused, and the rebuild
    forgotten, its table with it, though its index went live. What is left says the rebuild failed, when and why,
    and whether its index went live (`unfinished`): before, `sync-status` said "rebuild under way" of it while the
    process that failed ran on (a server's upload). A switch not answered is not judged before the cluster has applied
    it or given it up (`SwitchNotKnown.settles_s`, kept as `settles_at`): before, the first look judged it, and one
    made before a queued switch applied forgot the rebuild, its table with it, though its index then went live."""
    went_live: bool | None = None  # not known
    if not isinstance(failure, SwitchNotKnown):
        try:
            went_live = _judged(settings)
        except DomainError:
            pass
        except OSError as exc:  # forgetting it failed: the failure is the one to raise
            _unwritten(exc)
            return
    if went_live is not False:  # (False: forgotten, by `_judged`)
        said_failed(settings, failure, went_live)


def said_failed(settings: Settings, failure: BaseException, went_live: bool | None) -> None:
    """A rebuild's failure written into its note, when, why, and whether its index went live (`unfinished`), for a
    rebuild that fails and leaves it: one whose index did not go live or may not have (`forget_unless_live`), and one
    whose finishing failed once its index went live (`app.rebuild`: the store unavailable, or migrated by a newer
    rehabmap; before, it wrote nothing, and `sync-status` said it "is running" though its process had given up). A
    note that cannot be written (a full disk, a read-only home) is logged for the operator, never raised: before, its
    OSError replaced the rebuild's own error, a 500 from the upload where the error said what failed."""
    if isinstance(failure, DomainError):
        error = for_operator(failure)
    elif isinstance(failure, OSError):
        error = f"a file of its home could not be written or read ({failure})"
    else:
        error = f"a fault of rehabmap's ({type(failure).__name__}): the command's output or the server's log has it"
    now = datetime.now(timezone.utc)
    failed: dict[str, Any] = {"at": now.isoformat(timespec="seconds"), "error": error, "live": went_live}
    if isinstance(failure, SwitchNotKnown):
        failed["settles_at"] = (now + timedelta(seconds=failure.settles_s)).isoformat(timespec="seconds")
    try:
        pending = _pending(settings.home)
        if pending is not None:  # (None: finished, or forgotten, before the failure)
            _write_whole(settings.home / PENDING_FILE, json.dumps({**pending, "failed": failed}).encode())
    except OSError as exc:
        _unwritten(exc)


def _unwritten(exc: OSError) -> None:
    """The operator's word of a failed rebuild's note left as it was (`said_failed`, `forget_unless_live`)."""
    errors.operator_log.tell(f"a rebuild failed, and its note {PENDING_FILE} could not say so ({exc}): sync-status may "
                             "say it under way until the next rebuild, server start, sync or look judges it")


def recover(settings: Settings) -> None:
    if _judged(settings):
        finish(settings)


def _judged(settings: Settings) -> bool:
    """Whether a rebuild cut short (`PENDING_FILE`) went live, to be finished; one that did not is forgotten here.
    `SwitchUnsettled` while its switch, left unanswered, may still apply (`forget_unless_live`)."""
    pending = _pending(settings.home)
    if pending is None:
        return False
    settles = (pending.get("failed") or {}).get("settles_at")
    if settles is not None and datetime.now(timezone.utc) < datetime.fromisoformat(settles):
        raise SwitchUnsettled(
            f"The last rebuild of the index ended without an answer from the search index to its switch to the new "
            f"index, which the search index may apply until {settles}: until then whether that index is the one "
            "served is not known. Nothing was changed: try again after then.")
    if _went_live(pending, open_backend(settings)):
        return True
    abandon(settings.home)
    return False


def _went_live(pending: dict[str, Any], backend: IndexBackend) -> bool:
    """Whether the live index is the rebuild's own: it bears the token the rebuild chose before its build (`begin`).
    Before, any index built since the rebuild began was taken for its own: with one search cluster shared by hosts
    of separate homes, a rebuild cut short before its swap, then another host's rebuild, made the first keep its
    uploaded table and claim its curated tables' coverage, though its index never served. A pending file of an
    earlier release names no token: it is judged as that release judged it, by when the live index was built."""
    try:
        info = backend.info()
    except IndexNotBuilt:  # no index, or none this version reads: not the rebuild's (any other error: not known)
        return False
    if "build" in pending:
        return info.build == pending["build"]
    return info.built_at is not None and info.built_at >= datetime.fromisoformat(pending["at"])


def begin(home: Path, sources: Sequence[Path], table: Path | None, build: str) -> None:
    """Before the build, whose index will bear `build` (`IndexWriter.replace_all`): what it must leave once live
    (`PENDING_FILE`), and the uploaded table beside the kept ones, each written whole (a temporary file, then
    renamed), so a kill at any point leaves one or the other."""
    if table is not None:
        (home / KEPT).mkdir(parents=True, exist_ok=True)
        _write_whole(home / KEPT / (table.name + INCOMING), table.read_bytes())
    pending = {"at": datetime.now(timezone.utc).isoformat(), "sources": [str(Path(p).resolve()) for p in sources],
               "build": build, "pid": os.getpid(), "host": socket.gethostname(),
               "started": process_started(os.getpid())}  # (pid, host, started: `unfinished`)
    _write_whole(home / PENDING_FILE, json.dumps(pending).encode())


def _pending(home: Path) -> dict[str, Any] | None:
    """What a rebuild under way or cut short left to do (`begin`, `note_rejected`); None where none is."""
    try:
        return cast(dict[str, Any], json.loads((home / PENDING_FILE).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def finish(settings: Settings) -> None:
    """The new index is live: the store learns it (`_swap_taken`), its uploaded table is the one every later rebuild
    reads, the coverage its curated tables claim replaces the previous one's, and its sources are remembered. Each
    step is safe to repeat."""
    home = settings.home
    _swap_taken(settings)
    pending = _pending(home)
    assert pending is not None, "written by `begin`, under the rebuild's lock"
    sources = [Path(p) for p in pending["sources"]]
    for incoming in (home / KEPT).glob("*" + INCOMING):
        os.replace(incoming, incoming.with_name(incoming.name[:-len(INCOMING)]))
    record_curated_coverage(store_of(settings), [*sources, *kept_tables(home).values()],
                            [(file, line) for file, line in pending.get("rejected", [])])
    _write_whole(home / SOURCES_FILE, json.dumps([str(p) for p in sources]).encode())
    (home / PENDING_FILE).unlink()


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


def note_rejected(home: Path, rejected: Sequence[Rejection]) -> None:
    """The rows the build rejected, beside what it must leave (`PENDING_FILE`): a curated table's row rejected past
    its own checks (a postcode no directory holds) claims no coverage (`record_curated_coverage`). Written once the
    index is live; a kill before it leaves the claims as the tables' checks alone make them."""
    pending = _pending(home)
    assert pending is not None, "written by `begin`, under the rebuild's lock"
    pending["rejected"] = [(r.origin.file, r.origin.line) for r in rejected if r.origin.line]
    _write_whole(home / PENDING_FILE, json.dumps(pending).encode())


def abandon(home: Path) -> None:
    """The new index never went live: nothing it would have left is kept."""
    curated = home / KEPT
    for incoming in curated.glob("*" + INCOMING):  # (none, and no error, when there is no folder)
        incoming.unlink()
    with contextlib.suppress(OSError):  # the folder `begin` made for the table, if nothing else is in it
        curated.rmdir()
    (home / PENDING_FILE).unlink(missing_ok=True)


def _write_whole(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
