"""One answer per turn of a worker's event loop, in arrival order.

A route that answers on the event loop (no threadpool hop: `POST /match`) runs start to finish without
yielding. uvloop runs every task that is ready at the start of a turn, one after another, and writes the
replies it was handed only at the end of the turn; it reads the sockets only between turns. So with 8
requests ready, the first reply waited for all 8 answers, and a request arriving meanwhile for the whole
turn before it was even read: at c=16 the p99 was 1.2–2.9× the threadpool hop's (bench/RESULTS.md, "POST
/match, seventh pass"). Here an answer holds the turn until the loop's next turn starts, so each reply is
written and the sockets are read before the next answer starts; with nothing queued it costs no wait.

The next answer starts at the very next turn. An asyncio lock released at the next turn (as this was) wakes
its next waiter only at the turn after that: two turns an answer, and its lock, future and release handle
(bench/RESULTS.md, "POST /match outside `match()`", session 15). Here the turn is handed over: to the first
answer waiting, as the holder leaves (its task is woken behind everything the turn has queued); else the
first to arrive after the holder left yields once and takes it (its step runs behind the holder's last
callbacks); else it is free from the next turn.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from types import TracebackType


class _Turn:
    """One loop's turn: whether an answer holds it (running, or ran in this turn of the loop), whether it is
    to be freed at the next turn (`freeing`: the handle that frees it), and the answers waiting for it. It
    does not hold the loop (which keys it, weakly)."""

    __slots__ = ("held", "freeing", "waiting")

    def __init__(self) -> None:
        self.held = False
        self.freeing: asyncio.Handle | None = None
        self.waiting: deque[asyncio.Future[None]] = deque()

    async def take(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.held:
            self.held = True
            return
        freeing = self.freeing
        if freeing is not None:  # the holder has left and no one waits (`leave`): the next turn is this answer's
            freeing.cancel()
            self.freeing = None
            try:
                await asyncio.sleep(0)
            except BaseException:
                self.leave(loop)
                raise
            return
        future = loop.create_future()
        self.waiting.append(future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():  # handed the turn, then cancelled: hand it on
                self.leave(loop)
            else:
                future.cancel()  # passed over when the turn is handed on
            raise

    def leave(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand the turn to the first answer still waiting (woken at the next turn), or free it then."""
        waiting = self.waiting
        while waiting:
            future = waiting.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.freeing = loop.call_soon(self._free)

    def _free(self) -> None:
        self.freeing = None
        self.held = False


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = weakref.WeakKeyDictionary()
# The loop last asked for and its turn: a server's worker has one loop (the dictionary makes a weak
# reference on every lookup).
_last: tuple[weakref.ReferenceType[asyncio.AbstractEventLoop], _Turn] | None = None


class answer_turn:  # noqa: N801 - used as `async with answer_turn():`, as the function it was
    """Holds the loop's turn from entry until the loop's next turn after exit. A class, not an
    `asynccontextmanager` generator: ~2–3 µs of CPU less an answer on uvloop (bench/RESULTS.md, "POST /match,
    eighth pass, the framework")."""

    __slots__ = ("_loop", "_turn")

    async def __aenter__(self) -> None:
        global _last
        loop = self._loop = asyncio.get_running_loop()
        last = _last
        if last is not None and last[0]() is loop:
            turn = last[1]
        else:
            turn = _TURNS.setdefault(loop, _Turn())  # each loop its own turn; the tests run several
            _last = (weakref.ref(loop), turn)
        self._turn = turn
        await turn.take(loop)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self._turn.leave(self._loop)
