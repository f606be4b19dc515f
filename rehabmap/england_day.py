"""The day in England: the one clock of every day rehabmap writes into a store as a fact.

A maintainer's or provider's verification (`last_verified`) and capacity report (`capacity_as_of`) are stamped with
it, and a date given is refused as in the future by it, as is a curated table's `verified_on`: whatever the
server's clock and time zone, a record verified today in England says today's date in England, and tomorrow's is
refused. Never REHABMAP_TODAY, a day set to reproduce answers (`Settings.current_date`): before, a server given
2020-01-01 stamped a capacity reported now as of 2020-01-01, and refused the real date as in the future.
`tzdata` (a direct requirement) holds the zone where the machine has no /usr/share/zoneinfo.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

ENGLAND = ZoneInfo("Europe/London")


def england_today() -> date:
    return datetime.now(ENGLAND).date()
