"""A clock turning midnight after its first read, for the tests of what a request reads the day for."""

from __future__ import annotations

from datetime import date, timedelta


class Midnight:
    """A clock (`AppState.today`, `england_today`) turning midnight after its first read: `day`, then the day after;
    its reads counted."""

    def __init__(self, day: date) -> None:
        self.day, self.reads = day, 0

    def __call__(self) -> date:
        self.reads += 1
        return self.day if self.reads == 1 else self.day + timedelta(days=1)
