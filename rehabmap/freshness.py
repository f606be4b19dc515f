"""How fresh a record is: whether its capacity report still holds, when it was last verified, and which
records need verifying.

Capacity: a report (`available`, `limited`, `none`) holds for `REHABMAP_CAPACITY_MAX_AGE_DAYS` (default
14) after its `capacity_as_of` date; after that it reads as unknown. `capacity_is_current` is the one
rule: every answer and export (matching and its explanations, the API's JSON, CSV and GeoJSON, the Open
Referral feed, the pages, the command line) asks it, through `Service.capacity_now`, and says the window
with `capacity_max_age_days`.

Verification: a service is *due for verification* when nobody has verified it (`last_verified` is empty)
or its last verification is more than `verify_after_days` old (Settings, default 180). Results say so with
`verification_due`; maintainers list what is due with `rehabmap verify-due` or
`GET /maintain/verification-due`, and clear it with `POST /maintain/services/{id}/verify`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from rehabmap.config import get_settings

if TYPE_CHECKING:
    from rehabmap.record import Service

DEFAULT_VERIFY_AFTER_DAYS = 180


def capacity_max_age_days() -> int:
    """How many days a capacity report holds: the one settings object's, read from the environment
    (REHABMAP_CAPACITY_MAX_AGE_DAYS), so every output of every process applies the same window."""
    return get_settings().capacity_max_age_days


def capacity_is_current(as_of: date | None, today: date, max_age_days: int | None = None) -> bool:
    """Whether a capacity report made on `as_of` still holds on `today` (a report with no date never does)."""
    days = capacity_max_age_days() if max_age_days is None else max_age_days
    return as_of is not None and today - as_of <= timedelta(days=days)


def verification_due(service: Service, today: date, verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> bool:
    return service.last_verified is None or today - service.last_verified > timedelta(days=verify_after_days)


@dataclass(frozen=True)
class Due:
    service: Service
    days_since: int | None  # None: never verified


def due_for_verification(services: Iterable[Service], today: date,
                         verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS, *,
                         include_inactive: bool = False) -> list[Due]:
    """Services due for verification, the longest overdue first: never verified, then oldest; ties by id."""
    due = [Due(s, None if s.last_verified is None else (today - s.last_verified).days)
           for s in services
           if (include_inactive or s.status == "active") and verification_due(s, today, verify_after_days)]
    return sorted(due, key=lambda d: (d.days_since is not None, -(d.days_since or 0), d.service.id))
