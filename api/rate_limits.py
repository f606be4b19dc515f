"""The rate limiter's counters: a token bucket per client, `capacity` requests in a burst, refilled at
`capacity` a minute. `take(client)` spends one token: None when the request may go on, else the whole
seconds until a token is back.

`MemoryBuckets` counts in this process (one machine, one worker, or no shared store). `SharedBuckets`
counts in the PostgreSQL store (`REHABMAP_DATABASE_URL`), so a client gets the limit once across every
process and host, not once per process. Either way the address is never logged, and it is forgotten after
a minute of quiet (a full bucket is the same as none). The shared store never sees an address: it keeps a
keyed hash of it (HMAC-SHA-256 under a key derived from the token key file, which is not in the database),
in an UNLOGGED table (its migration 6), whose rows are deleted a minute after their client's last request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections import OrderedDict
from typing import Protocol

from rehabmap.maintain.database import Database

log = logging.getLogger(__name__)
_MAX_CLIENTS = 100_000
_SWEEP_EVERY_S = 5.0
# After the shared store failed to answer, how long this process counts alone before asking it again.
STORE_RETRY_S = 30.0


class Buckets(Protocol):
    # whether `take` may wait on I/O (a store): then the middleware runs it off the event loop
    does_io: bool

    def take(self, client: str) -> int | None: ...


class MemoryBuckets:
    does_io = False

    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, client: str) -> int | None:
        with self._lock:
            now = self.clock()
            tokens, when = self.buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.rate)
            self._forget_idle(now)
            if tokens < 1:
                self.buckets[client] = (tokens, now)
                return max(1, math.ceil((1 - tokens) / self.rate))
            self.buckets[client] = (tokens - 1, now)
            return None

    def _forget_idle(self, now: float) -> None:
        """Drop clients whose bucket has refilled (oldest first), and the oldest past the cap."""
        refill_s = self.capacity / self.rate
        while self.buckets:
            client, (_tokens, when) = next(iter(self.buckets.items()))
            if now - when < refill_s and len(self.buckets) < _MAX_CLIENTS:
                return
            del self.buckets[client]


# One statement, so two hosts spending one client's tokens at once cannot both spend the last: the row
# is locked by the first. The database's clock, so the hosts' clocks need not agree.
_TAKE = """
INSERT INTO rate_buckets AS b (client, tokens, seen, allowed)
SELECT ?, ? - 1, extract(epoch FROM clock_timestamp()), TRUE
ON CONFLICT (client) DO UPDATE SET
    tokens = least(?, b.tokens + (excluded.seen - b.seen) * ?)
             - CASE WHEN least(?, b.tokens + (excluded.seen - b.seen) * ?) >= 1 THEN 1 ELSE 0 END,
    allowed = least(?, b.tokens + (excluded.seen - b.seen) * ?) >= 1,
    seen = excluded.seen
RETURNING allowed, tokens"""
_SWEEP = "DELETE FROM rate_buckets WHERE seen < extract(epoch FROM clock_timestamp()) - ?"


class SharedBuckets:
    """The buckets in the shared store. If the store does not answer, this process counts alone (`fallback`),
    rather than refusing or letting through every request, and asks the store again only after
    `STORE_RETRY_S`: a store that is down makes each request wait for a connection (up to the pool's 10 s)
    before it fails, and every search would pay that wait."""

    does_io = True

    def __init__(self, per_minute: int, database: Database, key: bytes, clock=time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.database = database
        self.key = key
        self.fallback = MemoryBuckets(per_minute, clock)
        self._clock = clock
        self._swept = 0.0
        self._alone_until = -math.inf

    def take(self, client: str) -> int | None:
        if self._clock() < self._alone_until:
            return self.fallback.take(client)
        digest = hmac.new(self.key, client.encode(), hashlib.sha256).hexdigest()
        c, r = self.capacity, self.rate
        try:
            with self.database.connect() as conn:
                allowed, tokens = conn.execute(_TAKE, (digest, c, c, r, c, r, c, r)).fetchone()
                if self._clock() - self._swept > _SWEEP_EVERY_S:
                    self._swept = self._clock()
                    conn.execute(_SWEEP, (c / r,))
        except Exception as exc:  # the store is down or unreachable: never a 500 for a search
            self._alone_until = self._clock() + STORE_RETRY_S
            log.warning("shared rate limit unavailable (%s): counting in this process for %.0f s",
                        type(exc).__name__, STORE_RETRY_S)
            return self.fallback.take(client)
        return None if allowed else max(1, math.ceil((1 - tokens) / r))
