"""A running server catches up on its own with what a sync or a review decision applied to the store and was
killed before the live index followed (`indexer.sync.steps`): before, it served the previous data, and /health
said `degraded`, until the next sync, review decision or restart.

Each worker looks every `REHABMAP_CONVERGE_EVERY_S` seconds, and at once when /health finds it behind: three
indexed reads on its thread's connection (`indexer.sync.status.not_live`). Behind, it converges as its start does
(`app.sync.converge`). One worker at a time, across processes and hosts (a named lock in the store; a worker that
finds it taken leaves it to the holder); and every writer of the live index (a sync, a review decision, a
converge) reads what is already published under the index lock, so no change is written twice. The embedded
index takes a catch-up in one transaction, seen whole or not at all: the previous index answers every request
until then, and the other workers follow at their next request (the file's modification time).

While a mapping's `supersedes` put wrong refuses the catch-up (which /health, finding so, does not wake), a look
that finds the index behind reads the mappings as /health does (`indexer.sync.status.held_back`, some 1 ms) and the
store's latest change, and tries again only once either differs from the last refused try (`_Refused`): the mapping
mended, or put wrong another way, or a new change applied. Before, each look went on to a whole catch-up (the index
lock, the records the index lacks read whole) only to be refused again. Each worker remembers only its own last
refusal, so each tries once for each such state (a worker that has not tried finds no refusal to match): a try
more per worker, never a wrong answer, since no answer reads the memory (/health, sync-status and the Sources page
read the mappings themselves, `held_back`), and a try skipped is one the same refusal would meet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from app.pending_rebuild import finish_interrupted
from app.sync import converge, earlier_unshown
from indexer.precedence import PrecedenceInvalid
from indexer.sync.status import NotLive, held_back, not_live
from indexer.sync.store import SyncStore
from rehabmap import errors
from rehabmap.errors import tell_operator
from rehabmap.state import AppState

log = logging.getLogger("rehabmap.api")
CONVERGE_LOCK = "converge"
_STOP_WAIT_S = 30.0  # a converge under way at shutdown is let finish (it is safe to kill: its next look repeats it)


@dataclass(frozen=True)
class _Refused:
    """All a catch-up that a mapping refuses depends on: while it is the same, a catch-up is refused the same way."""

    refused: PrecedenceInvalid = field(compare=False)
    said: tuple[str, str | None]  # the refusal's words and mapping file: how the mappings bear on the catch-up
    behind: frozenset[tuple[str, int]]  # per source, the applied changes the index lacks (`not_live`)
    revision: int  # the store's latest change: a record already behind may change again

    @classmethod
    def of(cls, store: SyncStore, behind: NotLive) -> _Refused | None:
        """What refuses the catch-up of `behind` now, with the store's changes; None where nothing does."""
        refused = held_back(behind.records)
        if refused is None:
            return None
        return cls(refused, (refused.message, refused.where), frozenset(behind.changes.items()),
                   store.live_revision())


class Converger:
    """The looking thread of one worker, started and stopped with the app (`lifespan`)."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._wake = threading.Event()
        self._stopping = False
        self._refused: _Refused | None = None  # what refused this worker's last catch-up, if a mapping did

    def soon(self) -> None:
        """Look now, not at the next turn (from /health, which has just seen the index behind)."""
        self._wake.set()

    def look(self) -> int:
        """Finish a rebuild killed once its index went live (`finish_interrupted`: a look at a file, where none is),
        or tell the operator it could not (its file unreadable, the home read-only: before, that error ended every
        look, and no look caught the index up again); converge if the live index is behind and no other worker is
        at it; how many records were written. Not where a mapping refused this worker's last try and neither it nor
        the store has changed since: the refusal is told again (once a minute at most, as a try would), and the next
        look that finds either changed tries."""
        try:
            finish_interrupted(self.state.settings)  # before, a rebuild killed after its swap waited for a restart
        except Exception as exc:  # noqa: BLE001 - its file or home unusable: the catch-up below is not held by it
            errors.operator_log.tell(f"a rebuild cut short could not be finished ({type(exc).__name__}: {exc}); the "
                                     "server goes on catching the live index up, and tries again at its next look")
        store = SyncStore.served(self.state)
        if store is None:
            return 0
        behind = not_live(store)
        if not behind.total:
            return 0
        refused = _Refused.of(store, behind)
        if refused is not None and refused == self._refused:
            tell_operator(earlier_unshown(refused.refused))
            return 0
        with store.database.named_lock(CONVERGE_LOCK) as ours:
            if not ours:
                return 0
            written = converge(self.state)
        self._refused = refused
        return written

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        every = self.state.settings.converge_every_s
        thread = threading.Thread(target=self._run, args=(every,), name="rehabmap-converge", daemon=True)
        if every > 0:
            thread.start()
        try:
            yield
        finally:
            self._stopping = True
            self._wake.set()
            if thread.is_alive():
                thread.join(_STOP_WAIT_S)

    def _run(self, every: float) -> None:
        while True:
            self._wake.wait(every)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.look()
            except Exception as exc:  # noqa: BLE001 - a store out of reach now: the next turn looks again
                log.warning("the live index was not checked against the sync store: %s", type(exc).__name__)
