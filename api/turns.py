"""One answer per turn of a worker's event loop, in arrival order.

A route that answers on the event loop (no threadpool hop: `POST /match`) runs start to finish without
yielding. uvloop runs every task that is ready at the start of a turn, one after another, and writes the
replies it was handed only at the end of the turn; it reads the sockets only between turns. So with 8
requests ready, the first reply waited for all 8 answers, and a request arriving meanwhile for the whole
turn before it was even read: at c=16 the p99 was 1.2–2.9× the threadpool hop's (bench/RESULTS.md, "POST
/match, seventh pass"). Here an answer holds the turn until the loop's next turn starts, so each reply is
written and the sockets are read before the next answer starts; with nothing queued it costs no wait.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType

_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


class answer_turn:  # noqa: N801 - used as `async with answer_turn():`, as the function it was
    """Holds the loop's turn from entry until the loop's next turn after exit. A class, not an
    `asynccontextmanager` generator: ~2–3 µs of CPU less an answer on uvloop (bench/RESULTS.md, "POST /match,
    eighth pass, the framework")."""

    __slots__ = ("_loop", "_lock")

    async def __aenter__(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        lock = _LOCKS.get(loop)  # an asyncio lock belongs to one loop; the tests run several
        if lock is None:
            lock = _LOCKS[loop] = asyncio.Lock()
        self._lock = lock
        await lock.acquire()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self._loop.call_soon(self._lock.release)  # at the next turn, after this turn's replies are written
