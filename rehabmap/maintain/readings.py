"""What rehabmap read from a service's own words, and a maintainer's word on it.

A need read from a listing (`Service.needs_read_from_text`, `needs_read_not_met`) is a guess, shown as one. Only a
maintainer stating it confirms it: stated, it is one of the service's needs (met or not), and the record no
longer keeps it as read. So a confirmation is an ordinary edit of the two stated lists (`stated_needs`), audited
with the maintainer's name like every other; and the two lists are one word of theirs, laid together
(`NEED_LISTS`, `rehabmap.maintain.edits.Editor`), so a source that later states the need the other way is
"questioned" as any field a source changes under an edit.

The gender a listing's words suggest (`Service.gender_read_from_text`, W1 this session) is the next kind of
reading: a `Reading` whose confirmation sets `gender` (a statement, which clears the read one), listed by
`readings` beside the needs. The three gender needs its read gender derives into the read lists are left out of
`readings`, as they are of the stated ones a maintainer chooses one by one: a gender is confirmed as a gender.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rehabmap.explanation import without_gender
from rehabmap.record import Service
from rehabmap.taxonomy import GENDER_NEEDS, NEED_LABELS, need_label

NEED_LISTS = ("needs_met", "needs_not_met")
# What rehabmap read, which follows from the source's words and the stated needs: never a maintainer's word, so an
# edit neither audits nor lays it (a confirmed need leaves it by the record's own rule, `Service._consistent`),
# and a source's later words are read afresh under any edit. (`gender_read_from_text` is W1's, merging this session.)
READ_FIELDS = ("needs_read_from_text", "needs_read_not_met", "gender_read_from_text")
# The needs a maintainer states one by one. The gender needs follow from the record's gender, never stated apart.
STATED_ONE_BY_ONE = tuple(code for code in NEED_LABELS if code not in GENDER_NEEDS)


@dataclass(frozen=True)
class Reading:
    """One need read from a service's listing, not confirmed."""

    need: str
    words: str  # the listing's words that suggested it
    takes: bool  # what the words suggest: that it takes people with the need, or may not

    @property
    def label(self) -> str:
        return need_label(self.need)


def readings(service: Service) -> list[Reading]:
    """What its listing suggests it takes, then what it suggests it may not, each in the order of the labels."""
    read = [Reading(n, w, True) for n, w in without_gender(service.needs_read_from_text).items()]
    read_not = [Reading(n, w, False) for n, w in without_gender(service.needs_read_not_met).items()]
    return sorted(read, key=lambda r: r.label) + sorted(read_not, key=lambda r: r.label)


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
