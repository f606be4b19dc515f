"""How the keepers' pages say a record's fields, values and moments: need codes as the public pages name the needs,
times in the long dates the public pages use. The audit log and the API keep the codes and ISO times."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from rehabmap.taxonomy import need_label
from web.present import long_date

NEED_LISTS = {"needs_met": "Needs it takes", "needs_not_met": "Needs it does not take"}


def field_name(field: str) -> str:
    """A field as a maintainer reads it: the need lists in words, the rest by their names, as the form's."""
    return NEED_LISTS.get(field, field)


def field_value(field: str, value: Any) -> str:
    """A field's value as a maintainer reads it: text as it is, nothing as a dash, a need list as the needs'
    names, the rest as JSON."""
    if value is None or value == "" or (field in NEED_LISTS and value == []):
        return "–" if field not in NEED_LISTS else "none"
    if field in NEED_LISTS and isinstance(value, list):
        return ", ".join(need_label(str(need)) for need in value)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def long_moment(at: str | datetime | None, *, seconds: bool = False) -> str:
    """An ISO time (UTC) as "2 December 2026, 14:05 UTC", the day as the public pages say one; `seconds`: to the
    second, for the audit log's rows (their column says UTC)."""
    if not at:
        return "unknown"
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    day = long_date(moment.date())
    return f"{day}, {moment:%H:%M:%S}" if seconds else f"{day}, {moment:%H:%M} UTC"


def long_day(day: str | date | None) -> str:
    """A day (ISO, or the start of an ISO time) as the public pages say one."""
    return long_date(date.fromisoformat(day[:10]) if isinstance(day, str) else day) if day else "unknown"
