"""The keys records are merged by (`merge_keys`: a record's id, its CQC location id, its name and postcode) and how a
record's CQC location id and postcode read as them: one rule for the merge (`indexer.merge`), for the sync store,
which keeps them in columns of their own (`sync_records.cqc_key` and `postcode_key`, migration 22) so that a live
write finds the few records a changed one may be merged with on an index (`indexer.sync.publish.shown_merged`),
never by reading every record, and for the review queue's counts (`rehabmap.review_counts`), which count the records
the merge makes one once (`first_of_each`). The words of a name that tell it from another's (`own_words`), read as
its key reads them, are here with it: the review queue's hint of records that may be one
(`indexer.merge.similar_names`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehabmap.record import Service

_WORDS = re.compile(r"[^a-z0-9]+")


def cqc_key(cqc_location_id: str | None) -> str | None:
    """The CQC location id as records are merged by it, spaces around it and its case aside; None where none."""
    return cqc_location_id.strip().upper() if cqc_location_id else None


def postcode_key(postcode: str | None) -> str | None:
    """The postcode as records are merged by it (with their names), its spaces and case aside; None where none."""
    return postcode.replace(" ", "").upper() if postcode else None


def key_columns(service: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """A record's (as JSON) CQC location id and postcode keys: the sync store's columns `cqc_key`, `postcode_key`."""
    if service is None:
        return None, None
    return cqc_key(service.get("cqc_location_id")), postcode_key(service.get("postcode"))


def name_key(name: str) -> str:
    return " ".join(_WORDS.sub(" ", name.casefold().replace("&", " and ")).split())


# Words any hospital's or unit's name may have, whatever it is (`own_words`).
_COMMON_WORDS = frozenset({"the", "and", "of", "hospital", "unit", "mental", "health", "service", "services", "nhs",
                           "independent", "inpatient", "ltd", "limited"})


def own_words(service: Mapping[str, Any]) -> frozenset[str]:
    """The words of a record's (as JSON) name, as `name_key` reads it, that tell it from another: its provider's name
    and words any hospital's may have set aside, since a hospital that changed hands takes its new owner's name
    (Alpha Hospital Bury, of Alpha Hospitals, is Cygnet Hospital Bury in the 2018 list) and one list says "Grenoside
    Grange Hospital" where the other says "Grenoside Grange"."""
    words = frozenset(name_key(service.get("name") or "").split())
    return words - _COMMON_WORDS - frozenset(name_key(service.get("organisation") or "").split())


def merge_keys(service: Service | Mapping[str, Any]) -> list[tuple[str, str]]:
    """The keys a record is merged by: its id first, then its CQC location id and its name and postcode, if any;
    an inactive record's id alone. Before, a rebuild merged a retired record with a live one by name and postcode,
    and the retired one as the base hid the live one from search, where a live write merges shown records only.
    A record as JSON (a synced record's, `indexer.sync.publish.shown_merged`) has the same keys as validated."""
    # a record's fields, read without pydantic's attribute hook (this runs per row)
    fields = service if isinstance(service, Mapping) else service.__dict__
    keys = [("id", fields["id"])]
    if fields.get("status") == "inactive":
        return keys
    cqc, postcode = cqc_key(fields.get("cqc_location_id")), postcode_key(fields.get("postcode"))
    if cqc is not None:
        keys.append(("cqc", cqc))
    if postcode is not None:
        keys.append(("name+postcode", f"{name_key(fields['name'])}|{postcode}"))
    return keys


class KeyGroups:
    """Records (as JSON) by their merge keys, to find those one record is merged with, and those they are, in turn."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self._at: dict[tuple[str, str], list[int]] = {}
        for at, record in enumerate(records):
            for key in merge_keys(record):
                self._at.setdefault(key, []).append(at)

    def of(self, keys: list[tuple[str, str]]) -> set[int]:
        """The places of the records that share one of these keys, or one of theirs."""
        members: set[int] = set()
        seen: set[tuple[str, str]] = set()
        todo = list(keys)
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            for at in self._at.get(key, ()):
                if at not in members:
                    members.add(at)
                    todo.extend(merge_keys(self.records[at]))
        return members


def first_of_each(records: list[dict[str, Any]]) -> list[int]:
    """For each record (as JSON), the place of the first of those it is one service with: the records that share a
    key records are merged by, which are one record once shown (the merge keeps the first in the store's order)."""
    groups, first = KeyGroups(records), list(range(len(records)))
    for at, record in enumerate(records):
        if first[at] == at:  # the first of its service: each of the others comes later
            for member in groups.of(merge_keys(record)):
                first[member] = at
    return first
