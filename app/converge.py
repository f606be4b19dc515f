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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from app.sync import converge
from indexer.sync.status import not_live
from indexer.sync.store import SyncStore
from rehabmap.state import AppState

log = logging.getLogger("rehabmap.api")
CONVERGE_LOCK = "converge"
_STOP_WAIT_S = 30.0  # a converge under way at shutdown is let finish (it is safe to kill: its next look repeats it)


class Converger:
    """The looking thread of one worker, started and stopped with the app (`lifespan`)."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._wake = threading.Event()
        self._stopping = False

    def soon(self) -> None:
        """Look now, not at the next turn (from /health, which has just seen the index behind)."""
        self._wake.set()

    def look(self) -> int:
        """Converge if the live index is behind and no other worker is at it; how many records were written."""
        store = SyncStore.served(self.state)
        if store is None or not sum(not_live(store).values()):
            return 0
        with store.database.named_lock(CONVERGE_LOCK) as ours:
            return converge(self.state) if ours else 0

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
