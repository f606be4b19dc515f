"""How fresh a record is: when it was last verified, and which records need verifying. (Whether its
capacity report still holds is the record's own rule: `rehabmap.record.capacity_is_current`.)

Verification: a service is *due for verification* when nobody has verified it (`last_verified` is empty)
or its last verification is more than `verify_after_days` old (Settings, default 180), unless it is retired
(inactive). Results say so with `verification_due`; maintainers list what is due with `rehabmap verify-due` or
`GET /maintain/verification-due`, and clear it with `POST /maintain/services/{id}/verify`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rehabmap.record import Service

DEFAULT_VERIFY_AFTER_DAYS = 180


def verification_due(service: Service, today: date, verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> bool:
    """Never for a retired (inactive) service: rehabmap no longer lists it, so nothing is left to check."""
    return service.status == "active" and (
        service.last_verified is None or service.last_verified < due_before(today, verify_after_days))


def due_before(today: date, verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> date:
    """A record last verified before this day is due on `today` (more than `verify_after_days` ago), as is
    one never verified: the rule as one cut-off, for a reply that asks it of a dozen records on one day
    (a `timedelta` and a subtraction a record less). `date.min` when the cut-off would lie before it."""
    try:
        return today - timedelta(days=verify_after_days)
    except OverflowError:
        return date.min


@dataclass(frozen=True)
class Due:
    service: Service
    days_since: int | None  # None: never verified


def due_for_verification(services: Iterable[Service], today: date,
                         verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> list[Due]:
    """Services due for verification, the longest overdue first: never verified, then oldest; ties by id."""
    due = [Due(s, None if s.last_verified is None else (today - s.last_verified).days)
           for s in services if verification_due(s, today, verify_after_days)]
    return sorted(due, key=lambda d: (d.days_since is not None, -(d.days_since or 0), d.service.id))
