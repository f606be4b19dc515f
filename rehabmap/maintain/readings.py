"""What rehabmap read from a service's own words, and a maintainer's word on it.

A need read from a listing (`Service.needs_read_from_text`, `needs_read_not_met`) is a guess, shown as one. Only a
maintainer stating it confirms it: stated, it is one of the service's needs (met or not), and the record no
longer keeps it as read. So a confirmation is an ordinary edit of the two stated lists (`stated_needs`), audited
with the maintainer's name like every other; and the two lists are one word of theirs, laid together
(`NEED_LISTS`, `rehabmap.maintain.edits.Editor`), so a source that later states the need the other way is
"questioned" as any field a source changes under an edit.

The gender a listing's words suggest (`Service.gender_read_from_text`) is the other kind of reading: a `Reading`
whose confirmation states `gender` (which clears the read one), listed by `readings` before the needs. A gender is
confirmed, stated or unstated as a gender (`with_gender`), never as its three needs: the record derives those from
a stated gender, and they are left out of the needs read and stated one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from rehabmap.explanation import GENDER_WORDS, without_gender
from rehabmap.record import Gender, Service
from rehabmap.taxonomy import GENDER_NEEDS, NEED_LABELS, need_label

# The two stated lists, one word of a maintainer's, each with its name as the keepers' pages say it.
NEED_LISTS = {"needs_met": "Needs it takes", "needs_not_met": "Needs it does not take"}
# The needs a maintainer states one by one. The gender needs follow from the record's gender, never stated apart.
STATED_ONE_BY_ONE = tuple(code for code in NEED_LABELS if code not in GENDER_NEEDS)
GENDERS: tuple[Gender, ...] = get_args(Gender)
_GENDER_LABELS: dict[str, str] = {str(gender): words for gender, words in GENDER_WORDS.items()}


@dataclass(frozen=True)
class Reading:
    """One need, or the gender, read from a service's listing, not confirmed."""

    need: str  # the need's code; for the gender read, the gender (`is_gender`)
    words: str  # the listing's words that suggested it
    takes: bool  # what the words suggest: that it takes people with the need, or may not (a gender: True)
    is_gender: bool = False

    @property
    def label(self) -> str:
        """The need's name, or the gender as the public pages say who a service takes ("Women only")."""
        return _GENDER_LABELS[self.need] if self.is_gender else need_label(self.need)


def readings(service: Service) -> list[Reading]:
    """The gender its listing suggests, then what it suggests it takes, then what it suggests it may not, each in
    the order of the labels."""
    gender = [Reading(g, w, True, is_gender=True) for g, w in service.gender_read_from_text.items()]
    read = [Reading(n, w, True) for n, w in without_gender(service.needs_read_from_text).items()]
    read_not = [Reading(n, w, False) for n, w in without_gender(service.needs_read_not_met).items()]
    return gender + sorted(read, key=lambda r: r.label) + sorted(read_not, key=lambda r: r.label)


def with_gender(data: Mapping[str, Any], gender: str | None) -> dict[str, Any]:
    """A record's JSON with `gender` stated (None: not stated). Its gender needs leave both stated lists: a stated
    gender derives them again (`Service._consistent`), and a gender unstated must leave none behind to say it
    still (a men-only unit's "does not take women" would go on hiding it from a woman)."""
    return {**data, "gender": gender,
            **{name: [n for n in data.get(name) or () if n not in GENDER_NEEDS] for name in NEED_LISTS}}


def stated(service: Service | None, need: str) -> bool | None:
    """Whether the service states it takes `need` (True), does not (False), or says nothing (None)."""
    if service is None:
        return None
    return True if need in service.needs_met else False if need in service.needs_not_met else None


def stated_needs(service: Service | None, statements: Mapping[str, bool | None]) -> dict[str, list[str]]:
    """The two stated lists once each need in `statements` is stated taken (True), not taken (False), or left
    unstated (None); every other need as the record states it."""
    met = set(service.needs_met if service else ())
    not_met = set(service.needs_not_met if service else ())
    for need, takes in statements.items():
        met.discard(need)
        not_met.discard(need)
        if takes is not None:
            (met if takes else not_met).add(need)
    return {"needs_met": sorted(met), "needs_not_met": sorted(not_met)}


def editable_needs(service: Service | None) -> list[str]:
    """The needs a maintainer's form states one by one: the fixed ones, and any language the record names."""
    languages = set()
    if service is not None:
        named = {*service.needs_met, *service.needs_not_met, *service.needs_read_from_text,
                 *service.needs_read_not_met}
        languages = {n for n in named if n not in NEED_LABELS}
    return [*STATED_ONE_BY_ONE, *sorted(languages)]
