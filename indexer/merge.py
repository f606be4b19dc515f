"""Duplicates across sources become one record that remembers which source gave each field.

Records are the same service when they share an id, a CQC location id, or the same normalised name and
postcode, or when a chain of such shared keys joins them (the keys of each record as it came, `merge_keys`; of an id
given more than once, those `_Given` says: not a kind its rows from one file give two values of, and where one of
them was read from the sync's store, that one's alone): which records are one depends neither on which source
supersedes which nor on the order the records come in (`Merging`).
The first record seen is the base: its id is kept (so its links, decisions and edits stay where
they are). Where two of the records give a field, the value of the one whose source supersedes the other's wins
(`Precedence`, which the caller passes in: `indexer.precedence` reads it where the sources are defined), and where
neither supersedes the other, the first seen's: before, the first seen's always did. Where the service is (its
address, postcode, point and areas) is taken whole from one of them (`_place`). An inactive record (retired
by its source) is merged by its id alone, whichever of its id's records comes first: it still takes in an older copy
of itself, as its base (a file's row of a location since deregistered stays out of search), but it is never the base
of another record nor merged into one (a file's inactive copy of a synced record retires nothing: the synced record
is its base, and says its id's keys and state, as the live write, which reads the store alone, shows it),
so a home CQC registered again under a new location id, at the same name and postcode, stays in search, and the
retired record keeps its own id and history, as a sync's live write leaves them (`indexer.sync.publish`). A need
that one source says is met and another says is not becomes unknown: conflicting claims are not a yes (so does a need
read from one record's words as met and from the other's as not met).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from indexer.rows import place
from rehabmap.errors import shorten
from rehabmap.index.base import Revision, Stored, as_service
from rehabmap.record import Service
from rehabmap.record_keys import cqc_key, merge_keys, name_key, own_words

_KEEP = {"id", "provenance", "field_sources", "needs_met", "needs_not_met", "needs_read_from_text",
         "needs_read_not_met"}
# Where the service is: its point and the areas found from it, and the address and postcode a person reads it by.
# One block, all of it from one record (`_place`): a page, a distance, a radius and a coverage all of one place.
_POINT = frozenset({"lat", "lon", "areas"})
_PLACE = _POINT | {"address", "town", "county", "postcode"}
_SHARED_KEYS = ("cqc", "name+postcode")  # the keys (`merge_keys`) two records of different ids can share
# What a merged record names no source for unless its own source did: its state in the directory (a retired record is
# inactive, whatever its source last said), which a record on its own names none for either (`_combine`).
_UNSOURCED = {"status"}


def similar_names(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Whether two records' own words (`own_words`) are the same, or those of one, at least two, are all among the
    other's: at one postcode, a hint that the two may be one service, for a person to judge, never a key they are
    merged by. One own word alone is most often a place (the site's or the town's: Hellesdon, Bury) that every unit
    there may be named after, so it is a hint only against a name of that word alike (Alpha Hospital Bury, Cygnet
    Hospital Bury): before, Hellesdon Hospital was hinted as possibly Peddars Centre, Hellesdon Hospital, a unit on
    its site. Nor is a unit on the other's site (`_unit_on_site`), whatever the site's name: before, "Ward X,
    Stockton Hall Hospital" was hinted beside Stockton Hall Hospital. Foxhall House, Ipswich and St Clements
    Hospital, Ipswich share a postcode and their town, and are two."""
    a, b = own_words(first), own_words(second)
    if _unit_on_site(first, b) or _unit_on_site(second, a):
        return False
    smaller, larger = sorted((a, b), key=len)
    return bool(smaller) and (a == b or (len(smaller) >= 2 and smaller <= larger))


# Words that name a part of a site, as the NHS website's hospital lists name a unit on a hospital's site before a comma
# and the hospital's name ("Peddars Centre, Hellesdon Hospital"), and its wards ("Brant Ward", "Horizon Unit").
_UNIT_WORDS = frozenset({"ward", "wards", "unit", "units", "wing", "suite", "centre", "center", "house", "lodge",
                         "court"})


def _unit_on_site(service: Mapping[str, Any], site: frozenset[str]) -> bool:
    """Whether a record (as JSON) is a unit on the site whose name's own words are `site`: its name a unit's (a word
    such as "ward" or "centre", `_UNIT_WORDS`) before its first comma, and after it a name holding every word of
    `site`, none of which the unit's own name has. "Ward X, Stockton Hall Hospital" is so beside Stockton Hall
    Hospital; "St Clements Hospital, Ipswich" (a hospital and its town) is not beside St Clements Hospital, nor
    "Castleford, Normanton and District Hospital" (a list of towns) beside Normanton and District Hospital."""
    unit, comma, rest = str(service.get("name") or "").partition(",")
    return bool(comma) and bool(set(name_key(unit).split()) & _UNIT_WORDS) and site <= own_words(
        {**service, "name": rest}) and not site & own_words({**service, "name": unit})


def _empty(value: object) -> bool:
    """Nothing said: a service area (as a dict) that states nothing is empty too, as a source that states none
    leaves it."""
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    return value is None or value == "" or value == [] or value is False


@dataclass(frozen=True)
class MergeNote:
    kept: str
    merged: str
    key: str


def merged_ids(notes: Iterable[MergeNote]) -> set[str]:
    """The ids of the records merged into another by a key other than their id: each is part of the record it was
    merged into, so a build that merges it loses nothing (a note of the same id names rows, whose id is kept)."""
    return {note.merged for note in notes if note.key in _SHARED_KEYS}


def same_id(kept: str, merged: str, ident: str, same: bool, not_kept: str, *, one_source: bool = True) -> MergeNote:
    """A row given again under the id of one before it, merged into that one: where each is (`indexer.rows.place`),
    and whether the later said anything else, `not_kept` saying what becomes of that. One id is one record, so a
    source that gives two rows one id has made a mistake the report must name, row by row: rows held for review
    and rows indexed alike. Not `one_source`: the two were read from different places (a synced record and a
    file's older copy of it, or two files), one service that each gives, which is no mistake: before, a retired
    synced record that took in a file's row still listing the location was told to give each row its own id."""
    if not one_source:
        return MergeNote(kept, merged, f"id {ident}: the same service from another source, "
                         + ("nothing lost" if same else not_kept))
    return MergeNote(kept, merged, f"id {ident}: " + (
        "the same row, nothing lost" if same else f"another row, {not_kept}: give each row its own id"))


def _origin(service: Service) -> tuple[str | None, int | None]:
    """The file (or a synced record's address) and line a record was read from, where known."""
    origin = service.provenance[0] if service.provenance else None
    return (origin.file, origin.line) if origin is not None else (None, None)


def read_from(services: Iterable[Service]) -> set[tuple[str, str | None]]:
    """Each record by its id and the file (or page) it was read from, as `Merging` is told the records read from the
    sync's store: a live write, which reads the store alone, says so of all it merges, as a rebuild says it of the
    store's records. Before, it said none, and merged an id the store holds twice from one page as one file's rows
    (whose two CQC location ids count for none), where a rebuild showed one (`indexer.sync.publish.shown_merged`)."""
    return {(service.id, _origin(service)[0]) for service in services}


def _where(service: Service) -> str:
    """The file and line (or record) a record was read from, or its id where none is known."""
    file, line = _origin(service)
    return place(file, line) if file else service.id


class _Again(NamedTuple):
    """A record (`again`) merged by its id into the first record of its id (`first`, as it was then:
    `Merging._firsts`), noted once its kind's records are all read (`Merging.make_notes`, `_note`)."""

    first: Service
    again: Service


def _note(kept: Service, other: Service, combined: Service, shown: Service) -> MergeNote:
    """What merging `other` into `kept`, the first record of its id, is noted as, `combined` the record its id's
    records end up making (`Merging._of_id`: a record merged by a key it shares is noted by the ids and the key
    alone, `Merging._join`) and `shown` the record indexed, its kind's. Records of
    one id are rows of one source given twice, or one service two sources give: the note names both rows, what the
    record does not keep of `other` (a value neither record shows) and what of it the indexed record shows in place
    of `kept`'s. Before, "merged
    cqc:1-112778588 into cqc:1-112778588 (same id)", naming neither row nor the values lost; then what `other` gave
    that `kept` gave otherwise, which was untrue where `other`'s source supersedes `kept`'s; then measured against the
    record merged so far, made at each row, which named another id's row where the kind was merged with one by a key
    they share (Ashton Lodge's record read again after a council's row of its CQC location id: "merged … record 50
    into homes.csv:3 (same id homes:C: the same service from another source, whose name … the record does not
    keep)"), and said a row given a third time was another row, as the two before it, merged, named their fields'
    sources where the row does not; then, measured against its id's record alone, said lost a value the indexed
    record shows (homes:C's phone, which Ashton Lodge's row given again gave too: "whose phone '0161 000 0000' the
    record does not keep")."""
    first, again, made, indexed = (record.model_dump(exclude={"provenance"})
                                   for record in (kept, other, combined, shown))
    # A row's point and areas go with its postcode or address, which the note names.
    told = [name for name in made if name not in _KEEP and name not in _POINT]
    lost = [f"{name} '{shorten(again[name])}'" for name in told
            if not _empty(again[name]) and made[name] != again[name] and indexed[name] != again[name]]
    # The first's CQC location id its id's record leaves out (`Merging._combined`: the rows of one file give the id
    # two), whatever the indexed record shows (another id's, where the kind is merged with one by a key). Before, the
    # note named the later row's alone; then, where the indexed record showed another's, still; and said the first's
    # a second time as the empty value shown in its place (`instead`), as it did a town the indexed record left empty;
    # then, where the later row gave the same id (with another phone), as the row's (`lost`) and as the first's.
    cqc = "cqc_location_id"
    hidden = [cqc] if (not _empty(first[cqc]) and _empty(made[cqc]) and indexed[cqc] != first[cqc]
                       and again[cqc] != first[cqc]) else []
    instead = [name for name in told if name not in hidden
               and not _empty(first[name]) and indexed[name] != first[name] and indexed[name] == again[name]]
    unsaid = [f"{name} '{shorten(first[name])}'" for name in hidden]
    first_lost = f"the first's {', '.join(unsaid)}"
    said = ([f"whose {', '.join(lost)} the record does not keep" + (f", nor {first_lost}" if unsaid else "")] if lost
            else [f"beside which the record does not keep {first_lost}"] if unsaid else [])
    if instead:
        said.append(f"whose {', '.join(f'{name} {_quoted(indexed[name])}' for name in instead)} the record shows in "
                    f"place of the first's {', '.join(_quoted(first[name]) for name in instead)}")
    return same_id(_where(kept), _where(other), kept.id, first == again,
                   ", and ".join(said) or "of which the record keeps only what the first leaves empty",
                   one_source=_origin(kept)[0] == _origin(other)[0])


def _quoted(value: object) -> str:
    """A value as a merge note quotes it: none where it is empty."""
    return "none" if _empty(value) else f"'{shorten(value)}'"


@dataclass(frozen=True)
class Precedence:
    """Which source's word a merged record keeps where two of its records both give a field (docs/adr/0017): per
    source, the sources it supersedes (directly or through another: `indexer.precedence` closes and checks them),
    and the sources whose records supersede those of any dated file (a CSV read through a mapping, whose records'
    provenance names its edition). Between records of sources neither of which supersedes the other, the first in
    the order given (the store's) wins, as it did before any source declared one."""

    supersedes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    above_dated_files: frozenset[str] = frozenset()

    def over(self, first: tuple[str, bool], second: tuple[str, bool]) -> bool:
        """Whether a record of rank `first` (its source, and whether it was read from a dated file: `_rank`)
        replaces one of rank `second`, where both give a value."""
        return (second[0] in self.supersedes.get(first[0], ())
                or (first[0] in self.above_dated_files and second[1]))

    def order(self, services: Sequence[Service]) -> list[Service]:
        """The records in the order their values win: each after every record that supersedes it, else in the order
        given (a kept order, however many records and whichever declared what). A cycle, which `indexer.precedence`
        refuses to build, would leave the records in the order given.

        At each step the earliest record that no record left supersedes comes next (the earliest left, where every
        one is superseded). Whether one record supersedes another depends on their ranks alone (`_rank`), so the
        records are taken rank by rank, each rank's in the order given, and which ranks are free changes only when
        one runs out. Before, every record left was asked of every other at each step, each time reading its
        source from its id: 1,701 records of one CQC location took 1.5 s of CPU, 5,001 took 14 s."""
        ranks: dict[tuple[str, bool], list[int]] = {}  # per rank, where its records are in `services`
        for at, service in enumerate(services):
            ranks.setdefault(_rank(service), []).append(at)
        ahead = dict.fromkeys(ranks, 0)  # per rank with records left, its next record's place in `ranks`
        free = self._free(ahead.keys())
        ordered: list[Service] = []
        while ahead:
            rank = min(free or ahead, key=lambda each: ranks[each][ahead[each]])
            ordered.append(services[ranks[rank][ahead[rank]]])
            ahead[rank] += 1
            if ahead[rank] == len(ranks[rank]):
                del ahead[rank]
                free = self._free(ahead.keys())
        return ordered

    def _free(self, left: Collection[tuple[str, bool]]) -> list[tuple[str, bool]]:
        """The ranks (`_rank`) among `left` that none of `left` supersedes."""
        return [rank for rank in left if not any(self.over(other, rank) for other in left)]


def _rank(service: Service) -> tuple[str, bool]:
    """What a record's place in a `Precedence` depends on: its source, and whether it was read from a dated file."""
    return service.source, _dated_file(service)


def _dated_file(service: Service) -> bool:
    """Whether the record was read from a dated file (a CSV through a mapping: its own provenance names the file's
    edition)."""
    return bool(service.provenance) and service.provenance[0].edition is not None


def _combine(members: Sequence[Service], precedence: Precedence) -> Service:
    """One record of the records of one service (the first, whose id is kept, and those merged into it, in their
    order). Each field is the value of the first record in `precedence`'s order that gives one, named by the source
    that gave it, but where the service is: all of that from one record (`_place`); the id, provenance (every
    record's, in their order) and what is read from the words stay the first's where it gives them."""
    kept = members[0]
    data = kept.model_dump()
    # A field the kept record gives without a field source of its own is its source's: a record a maintainer decided
    # the type of names only those two fields (`indexer.sync.publish.with_type`), and merged it named no other. Not
    # its status, nor a service area that states nothing: before, a rebuild's merged record named its source for
    # them, where the live write wrote the same record on its own without (a retired record that took in a file's
    # copy).
    sources = {name: kept.source for name, value in data.items()
               if name not in _KEEP and name not in _UNSOURCED and not _empty(value)}
    sources |= kept.field_sources
    given: set[str] = set(_PLACE)
    ordered = precedence.order(members)
    _take_place(_place(ordered), kept, data, sources)
    for member in ordered:
        values = data if member is kept else member.model_dump()
        for name, value in values.items():
            if name in _KEEP or name in _UNSOURCED or name == "service_area" or name in given or _empty(value):
                continue
            given.add(name)
            if member is not kept:  # named as that record names it (a type a maintainer decided: "review")
                data[name], sources[name] = value, member.field_sources.get(name) or member.source
    restricted = next((m for m in ordered if m.service_area.restricted), kept)
    if restricted is not kept:
        data["service_area"] = restricted.service_area.model_dump()
        sources["service_area"] = restricted.source
    # A need said met by one and not met by another is unknown, whatever the order: every record's word is gathered,
    # then the needs said both ways taken out. Before, they were taken out record by record, so a third record's
    # "met" after a conflict made the need met again (met, not met, met: met; met, met, not met: unknown).
    met = {need for member in members for need in member.needs_met}
    not_met = {need for member in members for need in member.needs_not_met}
    data["needs_met"], data["needs_not_met"] = sorted(met - not_met), sorted(not_met - met)
    # Needs read from any record's words, the first's where two read one: a need read both ways, or stated, leaves
    # them (`Service`'s check).
    for other in members[1:]:
        data["needs_read_from_text"] = {**other.needs_read_from_text, **data["needs_read_from_text"]}
        data["needs_read_not_met"] = {**other.needs_read_not_met, **data["needs_read_not_met"]}
    data["provenance"] = [origin for member in members for origin in member.model_dump()["provenance"]]
    data["field_sources"] = sources
    return Service.model_validate(data)


def _place(ordered: Sequence[Service]) -> Service:
    """The record whose word on where the service is a merged record takes, all of it (`_PLACE`): the first in the
    precedence's order (`ordered`) that gives a postcode, else an address, else the first (each has a point). A
    record that names no place does not replace one that does with a point alone. Before, the address and postcode
    were each the first record's to give one and the point and areas the kept record's: a dated file's Dovetail House
    kept at a Worksop postcode, merged with CQC's at NG18 2AT, showed CQC's address in Mansfield, while its distance,
    radius and coverage were measured from Worksop."""
    return (next((member for member in ordered if member.postcode), None)
            or next((member for member in ordered if member.address), ordered[0]))


def _take_place(place: Service, kept: Service, data: dict[str, Any], sources: dict[str, str]) -> None:
    """`data` (a merged record's fields) with `place`'s place, every field of it, empty ones too (a place is not
    made of two records'), and `sources` naming for each that it gives the source `place` names it by, else its
    source; the kept record's point and areas only as it names them, as a record of its own is named (a retired
    record that took in a file's copy of itself keeps the field sources the sync wrote it with), another's by its
    source, as they moved from it."""
    for name, value in place.model_dump(include=set(_PLACE)).items():
        data[name] = value
        sources.pop(name, None)
        if name in place.field_sources:
            sources[name] = place.field_sources[name]
        elif not _empty(value) and (name not in _POINT or place is not kept):
            sources[name] = place.source


def _chained(keys: Sequence[Collection[tuple[str, str]]]) -> list[list[int]]:
    """Which of some records (`keys`, each record's keys) a chain of shared keys joins: each group's places in
    `keys`, in order, the groups by their first."""
    parent = list(range(len(keys)))

    def root(at: int) -> int:
        while parent[at] != at:
            parent[at] = at = parent[parent[at]]
        return at

    seen: dict[tuple[str, str], int] = {}
    for at, its in enumerate(keys):
        for key in its:
            parent[root(seen.setdefault(key, at))] = root(at)
    groups: dict[int, list[int]] = {}
    for at in range(len(keys)):
        groups.setdefault(root(at), []).append(at)
    return sorted(groups.values())


class Keyed(NamedTuple):
    """A record a worker process prepared and stored (`indexer.workers`), with the keys it is merged by, found
    where the record itself was at hand."""

    keys: list[tuple[str, str]]
    record: Stored


@dataclass
class _Given:
    """What the records of an id given more than once give of its keys (`merge_keys`), and so the keys each of them
    counts (`counted`): its id, and, unless one of them is inactive (retired: it gives its id alone), each key of a
    kind (a CQC location id; a name and postcode) one of them gives, but where the records read from one file (or
    one synced record's page: `_origin`) give two values of a kind: that file's values of it count for none.
    Such rows are a source's mistake (a repeated CQC row under another location's name and postcode), and which of
    them is right is not known. A record that leaves a kind empty (no CQC location id, no postcode) says nothing
    against the others' value, and records of one id read from two files (a synced record and a file's older copy
    of it) are one service each gives, so each file's keys count. But where one of them was read from the sync's
    store (`synced`: a rebuild's synced record), the keys of those alone count (of every one: the store may hold an
    id from two pages, each of whose keys a live write counts; before, the last one read's), and their state alone
    says whether the id is
    retired, as a sync's live write, which reads the store's records alone (`indexer.sync.publish.shown_merged`),
    merges it: a file's copy adds no key (before, its name and postcode, spelt otherwise, drew in another synced
    record the live write kept apart), and its retirement withdraws none (before, a file's inactive row of a synced
    id kept apart a record the live write merged). Each depends on which records came, not on their order."""

    ident: str
    retired: bool = False
    read_from: dict[str | None, dict[str, set[str]]] = field(default_factory=dict)  # per file, each kind's values
    counted: frozenset[tuple[str, str]] = frozenset()
    # The keys of its records read from the sync's store, if one was: all of them, as the store may hold an id twice
    # (two pages of a source, two sources giving one id) and a live write reads every one (`KeyGroups`).
    synced: frozenset[tuple[str, str]] | None = None

    def add(self, service: Service, synced: bool) -> None:
        """A record of the id, `synced` if read from the sync's store, which may change the keys it counts (given
        again, it changes nothing: what `Merging._merge_again`'s new mergings, sharing this, rely on)."""
        keys = merge_keys(service)
        if synced:
            self.synced = (self.synced or frozenset()) | frozenset(keys)
        self.retired = self.retired or service.status == "inactive"
        kinds = self.read_from.setdefault(_origin(service)[0], {})
        for kind, value in keys[1:]:
            kinds.setdefault(kind, set()).add(value)
        if self.synced is not None:
            self.counted = self.synced
            return
        shared = [] if self.retired else [(kind, value) for given in self.read_from.values()
                                          for kind, values in given.items() if len(values) == 1 for value in values]
        self.counted = frozenset([("id", self.ident), *shared])


_SAID = {"cqc": "a CQC location id", "name+postcode": "a name and postcode"}  # a shared key's kind, in a report


def _by_order(shared: dict[str, list[tuple[str, str]]], chain: set[str],
              unshown: Sequence[tuple[str, str, list[str]]]) -> str:
    """What the report says of a chain of rows (`chain`, their ids) that shares keys with records the sync's store
    keeps apart (`shared`: per such record, in the store's order, the rows sharing a key with it and the key's kind)
    and gives no one of their CQC location ids alone (`Merging._apart`): it joined the first by the order of the
    sources' names and ids, which says nothing of which service the rows are, so a person should check; and the
    others' CQC location ids the rows give, which the record it joined does not show (`unshown`: each record's id,
    the CQC location id and where each row giving it is, its file and line). Each list names `_NAMED` at most: a
    provider's list giving k locations' ids, every row under its head office's name and postcode, made a warning of
    685 KB at k = 4,000."""
    said = [f"{row} shares {_SAID.get(kind, kind)} with {record}" for record, rows in shared.items()
            for row, kind in rows[:1]]
    hidden = [f"{record}'s CQC location id {cqc} (given by {_some(rows, ' and ')})" for record, cqc, rows in unshown]
    return (f"{_some(said, ', ')}: the sync's store keeps {_some(list(shared), ' and ')} apart, and no row of the "
            f"chain {_some(sorted(chain), ', ')} (one service: they share keys) gives the CQC location id of one of "
            f"them alone, so it joined {next(iter(shared))}, the first by source name and id, not by anything the "
            "rows say" + (f", and does not show {_some(hidden, ', nor ')}" if hidden else "")
            + ": check which service it is")


def _giving(rows: Sequence[Service], cqc: str) -> list[str]:
    """Where each of `rows` (the rows of ids that count CQC location id `cqc`) that gives it is, by file and line, or
    each of them where none does: of an id given in four rows, only one of which gives it, that one."""
    own = [row for row in rows if cqc_key(row.cqc_location_id) == cqc]
    return [_where(row) for row in sorted(own or rows, key=lambda row: (*_line_order(row), row.id))]


def _line_order(row: Service) -> tuple[str, int]:
    """A row's file, then its line as a number: sorted as text, homes.csv:15 came before homes.csv:4."""
    file, line = _origin(row)
    return file or "", line or 0


_NAMED = 10  # the most of a list a warning names (`_some`)


def _some(items: Sequence[str], joiner: str) -> str:
    """`items` joined, the first `_NAMED` of them, and how many more there are."""
    return joiner.join(items[:_NAMED]) + (f" …and {len(items) - _NAMED} more" if len(items) > _NAMED else "")


class _Kind(NamedTuple):
    """A kind of records merged again where a record of an id withdrawing a key took one apart (`Merging._part`), or
    where the sync's store keeps apart records a kind holds once all are merged (`Merging.finish`): its record,
    when its first record came, its records by when each came, the keys known at it and its notes (`Merging._notes`)."""

    record: Service | Stored
    came: int
    members: list[tuple[int, Service]]
    keys: list[tuple[str, str]]
    notes: list[tuple[tuple[int, int], MergeNote | _Again]]


class Merging:
    """Duplicates merged as the records come: `merged` holds each kept record at its place (the first of its kind,
    combined with those merged into it, by `precedence`; None where a later record showed it to be of an earlier
    one's kind), `make_notes` what was merged into what.

    Which records are one does not depend on the precedence, nor on the order they come in: records are one when
    a chain of shared keys joins them, each record counting its own keys (`merge_keys`), so a record sharing a key
    with any record of a kind joins it, and one that shares keys with two kinds makes them one (the later folded
    into the earlier place). Before, a kind was known by its combined record's keys, whose name and postcode could
    be a superseding record's: a record sharing a key with that one alone was merged in under the mappings'
    precedence and not under the store's order, or not when it came before the record that brought the key in.
    A record of an id already seen is that record's copy (a file's copy of a synced record, a row repeating an
    id), merged into it by the id (`_copy`): an id given more than once counts, in every record of it, the keys
    `_Given` says, whichever comes first: each key one of them gives, but a kind (a CQC location id; a name and
    postcode) that the records read from one file give two values of, and none but its id where one is inactive.
    Where a later record withdraws a key the id counted (a repeated CQC row naming another location's name and
    postcode, a retirement) and it drew in another record (a home at that name and postcode, registered again under
    a new id), the later takes its kind apart and merges its records again (`_part`); where a later record's key
    counts that was not known at its kind (a kind the first left empty), the kinds are one. An id's inactive record
    is the base of its copies (`_first`). Before, a repeated CQC row's own keys counted, and its name and postcode
    joined that location's kind, two locations made one through a copy's error; then, but for a retirement, only
    the keys of the one that came first counted, so the same rows in another order made other records; then only
    the keys every record of the id gave, so a file's copy of a synced record that left its CQC location id or
    postcode empty, or spelt its name otherwise, kept apart a record the synced record's keys join, which a sync's
    live write merges. On the real lists (both NHS hospital lists and the ODS sites) it merges the 141 pairs the
    merged record's keys merged, in any order. Records read from the sync's store that the store's keys keep apart
    stay apart, as the live write shows them, when the records are all merged (`finish`): a chain of other records
    sharing keys with two of them joins one (`_apart`)."""

    def __init__(self, precedence: Precedence, synced: Collection[tuple[str, str | None]] = ()) -> None:
        """`synced`: the records read from the sync's store, each by its id and the file (or page) its provenance
        names first (a rebuild's, `indexer.sync.rebuild.synced_rows`): each is the base of its id's copies and
        says its id's keys (`_Given`), as a sync's live write merges it."""
        self.precedence = precedence
        self.synced = synced
        self.merged: list[Service | Stored | None] = []
        # The records combined at each place combined with a later one, by when each came: which of them gives a
        # field depends on all of them (`_combine`).
        self.members: dict[int, list[tuple[int, Service]]] = {}
        # The places whose record is not yet combined of their records as they are now, combined when it is read
        # (`_record`): a record merged in does not combine its kind again, where each did, which made a kind of many
        # records (a list of many rows under one CQC location id, or one id given many times) cost their number
        # squared.
        self._stale: set[int] = set()
        self._where: dict[tuple[str, str], int] = {}
        self._came: list[int] = []  # per place, when its first record came (its place in the order they come)
        # The place each record given one of its own was given, by when it came: a writer holds its id there, so a
        # kind taken apart goes back to it (`_part`).
        self._placed: dict[int, int] = {}
        self._count = 0
        # Per place, the notes of what was merged into its record, each by when the record that made it came and its
        # place among that record's notes (its own first, then the kinds it showed to be one with it).
        self._notes: dict[int, list[tuple[tuple[int, int], MergeNote | _Again]]] = {}
        # Per id given more than once, what its records give of its keys, and so the keys they count (`_copy`).
        self._given: dict[str, _Given] = {}
        # Per id given more than once, its first record: the base of its copies (`_first`), which each is noted as
        # merged into (`_first_of`).
        self._firsts: dict[str, Service] = {}
        self._came_first: dict[str, int] = {}  # per id, when its first record came (`_first`)
        # What `finish` says a person should check, one line each, which the import's report gives as warnings: a
        # chain of rows it joined by the store's order alone (`_apart`, `_by_order`: a guess), and a retired
        # location's CQC location id it left out of the record a row joined (`_leave_out_retired`).
        self.guesses: list[str] = []
        # Each id of a row that joined a record with a CQC location id (key) of another record the sync's store holds,
        # which the one it joined does not show: one the store keeps apart from it (`_apart`), or a retired one
        # (`_leave_out_retired`).
        self._theirs: set[tuple[str, str]] = set()
        # The places given a record whose keys are its id alone (a retired one, or one giving no CQC location id and no
        # postcode): where `finish` finds the retired synced records not merged with another (`_retired`), without
        # reading back every record a parallel import stored.
        self._alone: list[int] = []

    def make_notes(self) -> list[MergeNote]:
        """What was merged into what, of the records merged so far, in the order the records that made each note
        came: a record's own note first, then those of the kinds it showed to be one. A kind taken apart has its notes
        made again (`_part`), each where the record that made it came. A record merged by its id is noted against
        the record its id's records make as they are when asked (`_note`, `_of_id`): its kind is combined once, not
        at each record merged into it, which made a file repeating one id many times cost their number squared.
        Each call makes every note of an id again (a pass over the records of each such kind) and new notes: ask
        once the records are all merged. Before, a property (`notes`) did so at each read."""
        made: list[tuple[tuple[int, int], MergeNote]] = []
        for at, entries in self._notes.items():
            rows: dict[str, list[Service]] = {}  # per id at the place, its records (`_of_id`)
            of_id: dict[str, Service] = {}  # per id at the place, the record they make (`_of_id`)
            for when, note in entries:
                made.append((when, note if isinstance(note, MergeNote) else _note(
                    *note, self._of_id(at, note.first.id, rows, of_id), self._at(at))))
        return [note for _, note in sorted(made, key=lambda entry: entry[0])]

    def _of_id(self, place: int, ident: str, rows: dict[str, list[Service]], made: dict[str, Service]) -> Service:
        """The record that the records of id `ident` at `place` make (`made`: per id at the place, the record made so
        far; `rows`: per id at the place, its records, once grouped), which a row given again is merged with and noted
        against: the kind's where they are all of its records, else theirs alone, as the kind's other records are
        noted by the keys they share (and the kind's record, the one indexed, beside it: `_note`). The place's
        records are grouped by id once, the first time one is asked: before, each id's were sought among them all, so
        a kind of k ids each given again cost k × its records. Before that, the kind's record: Ashton Lodge's row
        given again in a kind kept under a council's id (homes:C, giving its CQC location id) was said to have a name
        the record does not keep, homes:C's name, which both of Ashton Lodge's rows gave otherwise."""
        found = made.get(ident)
        if found is None:
            if not rows:
                for _, member in self._members(place):
                    rows.setdefault(member.id, []).append(member)
            found = made[ident] = self._at(place) if len(rows) == 1 else self._combined(rows[ident])
        return found

    def add(self, item: Service | Keyed) -> None:
        """The record merged with those before it (a `Keyed` one read back as a record where it is merged)."""
        service: Service | Stored
        if isinstance(item, Keyed):
            keys, service = item
        else:
            keys, service = merge_keys(item), item
        came, self._count = self._count, self._count + 1
        self._take(came, keys, service)

    def _take(self, came: int, keys: list[tuple[str, str]], service: Service | Stored) -> None:
        """The record that came `came`th, with its keys, merged or placed."""
        self._came_first.setdefault(keys[0][1], came)
        keys = self._counting(keys)
        where = self._where
        hits: dict[int, str] = {}  # the places this record's keys are known at, each with the first key found there
        for key in keys:  # a loop, not a generator: this runs per record
            hit = where.get(key)
            if hit is not None and hit not in hits:
                hits[hit] = key[0]
        if not hits:  # a record of its own
            hit = len(self.merged)
            self.merged.append(service)
            self._came.append(came)
            self._placed[came] = hit
            for key in keys:
                where[key] = hit
            if len(keys) == 1:
                self._alone.append(hit)
            return
        other = as_service(service)
        same_id = where.get(keys[0])
        if same_id is None:
            self._join(came, keys, other, hits)
        else:
            self._copy(same_id, came, other)

    def _copy(self, place: int, came: int, other: Service) -> None:
        """`other`, a record of an id a record at `place` has, merged into that record by the id. Its id counts the
        keys `_Given` says, which `other` may change: where it withdraws one its id counted (a value of a kind its
        file gave otherwise; an inactive record), the kind at `place` is taken apart and merged again (`_part`);
        where its id now counts a key of its own that is known at another place (a kind the records before it left
        empty, or gave otherwise from another file), the two kinds are one (`_fold`): where it does both, folded
        first and then taken apart together, as a kind taken apart given a new place and then folded away would be
        gone before a parallel import wrote it (`stream`). So which records its id's records join does not depend on
        which of them comes first."""
        given = self._given.get(other.id)
        if given is None:  # its id's second record: its first is at `place`
            given = self._given[other.id] = _Given(other.id)
            first = self._first_of(place, other.id)
            given.add(first, self._is_synced(first))
        counted = given.counted
        given.add(other, self._is_synced(other))
        own = [key for key in merge_keys(other)[1:] if key in given.counted]
        elsewhere: dict[int, str] = {}  # the other places its keys are known at, each with the first key found there
        for key in own:
            at = self._where.get(key)
            if at is not None and at != place:
                elsewhere.setdefault(at, key[0])
        hits = {place: "id", **elsewhere}
        if counted - given.counted:
            self._part(self._fold_later(hits, came), came, other)
            return
        self._join(came, [], other, {place: "id"})
        at = self._fold_later(hits, came)
        self._where.update((key, at) for key in own)

    def _first_of(self, place: int, ident: str) -> Service:
        """The first record of an id at `place` (`_firsts`), found among its records once, by where its key
        (`_first`) comes: before, sought record by record, so a kind of k ids each given again cost k × its records.
        Found so only when its id's second record comes (`_copy`, or in a new merging, `_kinds`, whose `_given` is
        its parent's, `_join`), before that is put among them: the one record of its id there is then its first, whose
        key begins with when it came (`_came_first`), where a record of another id begins with when it or its id's
        first record came, neither of which is that; so the least key from (that, False, False, -1) on is its. Before,
        a scan of the records followed where that one was not of the id, which none could reach."""
        first = self._firsts.get(ident)
        if first is None:
            members = self._members(place)
            at = bisect_left(members, (self._came_first[ident], False, False, -1), key=self._first)  # its key's least
            first = self._firsts[ident] = members[at][1]
            assert first.id == ident, "an id's first record is where its key comes"
        return first

    def _join(self, came: int, keys: list[tuple[str, str]], other: Service, hits: dict[int, str]) -> None:
        """`other` merged into the kind of the earliest of the places its keys are known at (`hits`), each later one
        folded into it, as its keys show them one."""
        hit = min(hits, key=self._came.__getitem__)
        by = hits[hit]
        before = self._members(hit)[0][1]  # the kept record: its id is the kind's
        self._fold_later(hits, came)
        note: MergeNote | _Again
        if by == "id":  # noted once the kind is combined (`make_notes`), as what its record keeps of each row
            note = _Again(self._first_of(hit, other.id), other)
            if self._rank(other) < self._rank(note.first):  # the base of its copies now, the first merged into it
                self._firsts[other.id] = other
                note = _Again(other, note.first)
        else:
            note = MergeNote(before.id, other.id, by)
        members = self._members(hit)
        # Put in its place, as sorting them all again at each record cost a kind of many records their number squared.
        insort(members, (came, other), key=self._first)
        self._stale.add(hit)
        self._notes.setdefault(hit, []).append(((came, 0), note))
        for key in keys:
            self._where[key] = hit

    def _fold_later(self, hits: dict[int, str], came: int) -> int:
        """The places `hits` names (each with the key it was found by, or "id") folded into the earliest of them, as
        the record that came `came`th shows them one (`_fold`): that place, its record combined again when read."""
        hit = min(hits, key=self._came.__getitem__)
        by = hits[hit]
        for order, folded in enumerate(sorted(hits.keys() - {hit}, key=self._came.__getitem__), 1):
            self._fold(folded, hit, hits[folded] if hits[folded] in _SHARED_KEYS else by, (came, order))
            self._stale.add(hit)
        return hit

    def _part(self, place: int, came: int, other: Service) -> None:
        """A record (`other`) of an id a record at `place` has, which withdraws a key its id counted (`_Given`: a
        retired record, which gives its id alone, or a row under another name or postcode read from the same file):
        the keys of the records there other than their ids count no more but as `_given` says. Where they are all of
        its id, it is merged in by the id (taking them apart would change nothing); else they are merged again with
        it (`_merge_again`)."""
        members = self._members(place)
        self._unknow(place, members)
        if all(record.id == other.id for _, record in members):
            self._join(came, list(self._given[other.id].counted), other, {place: "id"})
            return
        self._merge_again(place, [[*members, (came, other)]])

    def _unknow(self, place: int, members: list[tuple[int, Service]]) -> None:
        """The keys of the records at a place taken apart, but their ids, known there no more."""
        for _, record in members:
            for key in merge_keys(record)[1:]:
                if self._where.get(key) == place:
                    del self._where[key]

    def _merge_again(self, place: int, groups: list[list[tuple[int, Service]]]) -> None:
        """The records of a kind taken apart (at `place`) merged again, each group in a new merging in the order they
        came, each of an id given more than once by the keys its `_Given` counts (`_kinds`), each kind at the place
        its first record was given, where a writer holds its id (`stream`), or at a new one where it had none, with
        its notes made again. A new merging holds the same `_Given`s as this one, not copies: every record it takes of
        such an id this one took, and added to its `_Given`, which adding again changes nothing (`_Given.add`: the
        same values into the same sets), so it neither changes what this one counts nor takes a kind apart itself;
        and the same `_theirs`, so a kind `finish` takes apart leaves out what `_apart` found another's."""
        kinds: list[_Kind] = []
        for group in groups:
            merging = type(self)(self.precedence, self.synced)
            merging._theirs = self._theirs
            kinds += merging._kinds(group, {record.id: self._given[record.id] for _, record in group
                                            if record.id in self._given})
            self._firsts.update(merging._firsts)
        for kind in kinds:
            to = self._placed.get(kind.came)
            if to is None:  # its first record was merged into another as it came: its id is at no place yet
                to = self._placed[kind.came] = len(self.merged)
                self.merged.append(kind.record)
                self._came.append(kind.came)
            else:
                assert to == place or self.merged[to] is None, "a place given back was folded into this kind"
                self.merged[to] = kind.record
                self._stale.discard(to)
            self.members[to] = kind.members  # given again at the end (`stream`): a place is written first whole
            self._notes[to] = kind.notes
            self._where.update((key, to) for key in kind.keys)

    def finish(self) -> None:
        """Once every record is merged: each kind holding records read from the sync's store that the store's keys
        keep apart taken apart (`_apart`), as a sync's live write, which reads the store's records alone
        (`KeyGroups`), shows them apart. Asked of the kinds as they end up, so the records each is made of depend on
        which records came, not on their order: before, asked of each record of another id as it came, a row given
        later could move a key to the other synced record's kind (a kind taken apart, `_part`, merged again without
        the other), and 4 of a file's rows bridging two synced records made 3 sets of records over their 24 orders.
        Then a retired location's CQC location id a row gives left out of the record it joined (`_leave_out_retired`),
        as that location's retired record may come after the row."""
        if not self.synced:
            return
        for kind in [at for at, members in self.members.items()
                     if sum(self._is_synced(member) for _, member in members) > 1]:
            pieces = self._apart(self.members[kind])
            if len(pieces) > 1:
                self._unknow(kind, self.members[kind])
                self._merge_again(kind, pieces)
        self._leave_out_retired()

    def _leave_out_retired(self) -> None:
        """Each CQC location id a file's row gives, in a kind holding synced records none of which gives one, that is
        a retired synced record's (`_retired`), left out of the kind's record (`_theirs`), with a warning per kind and
        id naming each row giving it. A retired record's CQC location id is no key of it (`merge_keys`), so the row
        does not join it, and the kind's record showed it, as a row gives its own where no synced record of the kind
        does: an active record claiming a registration CQC has ended. Before, Grovelands Lodge, synced from a
        council's feed without one, showed the retired Ashton Lodge's, which a council's row at its name and postcode
        gave, with no warning (24 of a fuzzer's 21,000 merges of shuffled real records)."""
        giving: dict[tuple[int, str], list[Service]] = {}  # per kind and CQC location id, the rows giving it
        held: dict[int, list[Service]] = {}  # per such kind, its synced records
        for kind, members in self.members.items():
            synced = [record for _, record in members if self._is_synced(record)]
            if not synced or any(record.cqc_location_id for record in synced):
                continue
            for _, record in members:
                key = cqc_key(record.cqc_location_id)
                if key is not None and not self._is_synced(record) and not self._hides_cqc(record):
                    giving.setdefault((kind, key), []).append(record)
                    held[kind] = synced
        retired = self._retired() if giving else {}
        for (kind, key), rows in giving.items():
            owner = retired.get(key)
            if owner is None:
                continue
            self._theirs.update((row.id, key) for row in rows)
            self._stale.add(kind)
            named = sorted({record.id for record in held[kind]})
            self.guesses.append(
                f"the record of {_some(named, ' and ')} (no synced record of which gives a CQC location id) "
                f"does not show the CQC location id {key} given by {_some(_giving(rows, key), ' and ')}: it is "
                f"{owner}'s, which the sync's store holds as retired, and shown it would claim a registration that "
                "has ended: check the " + ("row's" if len(rows) == 1 else "rows'") + " CQC location id")

    def _retired(self) -> dict[str, str]:
        """Per CQC location id a retired record read from the sync's store gives, that record's id (the least, where
        two give one): found among the kinds' records and those given a place alone by their id (`_alone`), read
        back (a parallel import's) only where the sync's store gave their id."""
        ids = {ident for ident, _ in self.synced}
        records = [record for members in self.members.values() for _, record in members]
        records += [as_service(alone) for at in self._alone
                    if at not in self.members and (alone := self.merged[at]) is not None and alone.id in ids]
        found: dict[str, str] = {}
        for key, ident in sorted((cqc_key(record.cqc_location_id), record.id) for record in records
                                 if record.status == "inactive" and record.cqc_location_id
                                 and self._is_synced(record)):
            found.setdefault(str(key), ident)
        return found

    def _apart(self, members: list[tuple[int, Service]]) -> list[list[tuple[int, Service]]]:
        """A kind's records (with when each came) in the kinds a live write keeps apart: its records read from the
        sync's store, with their ids' copies, as their keys join them (each such group one kind), and each chain of
        its other records (rows that share keys with one another) in the kind of the one group it shares a key with,
        or, sharing keys with more than one, of the one among them whose synced record's own CQC location id a row
        of the chain gives, else the first in the store's order (of source and id) among them: a chain of rows
        sharing keys is one service, and joins one record. Where the store's order decided, `guesses` says so: it is
        the order of the sources' names ("a-council" before "cqc"), nothing the rows say. A CQC location id a chain
        gives of a group it did not join is that group's, and the record it joined leaves it out (`_theirs`)."""
        keys = [frozenset(self._counting(merge_keys(record))) for _, record in members]
        held = [at for at, (_, record) in enumerate(members)
                if self._is_synced(record) or self._copy_of_synced(record)]
        groups = [[held[at] for at in group] for group in _chained([keys[at] for at in held])]
        if len(groups) < 2:
            return [members]
        synced = [[members[at][1] for at in group if self._is_synced(members[at][1])] for group in groups]
        # Each key known at the one group holding it (the groups are chained by their keys, so share none): a chain
        # finds the groups it shares keys with by its own keys, where testing it against every group cost chains ×
        # groups (k synced records in one kind bridged in a line: 3.1 s at k = 4,000).
        owner = {key: group for group, held_at in enumerate(groups) for at in held_at for key in keys[at]}
        free = sorted(set(range(len(members))) - set(held))
        for chain in _chained([keys[at] for at in free]):
            rows = [free[at] for at in chain]
            gives = frozenset().union(*(keys[at] for at in rows))
            # Never empty: the kind's records are chained by their keys, so each chain of other records shares one
            # with a group.
            shares = sorted({owner[key] for key in gives if key in owner})
            joins = [group for group in shares if any(key in gives for record in synced[group]
                                                      for key in merge_keys(record) if key[0] == "cqc")] or shares
            # Each group holds a synced record (a copy of one shares its id's key with it), so none is empty.
            named = {group: min(synced[group], key=lambda record: (record.source, record.id)) for group in joins}
            joined = min(joins, key=lambda group: (named[group].source, named[group].id))
            groups[joined] += rows
            # None but where the store's order decided: `joins` holds every group the chain gives a CQC location id of.
            # Per CQC location id of another group, the rows giving it (its id's rows, which count it); per group, each
            # row sharing a key with it and the key's kind: one pass, where one over the rows per group cost k groups
            # × k rows for a provider's list giving k locations' ids (k = 4,000: 8.0 s).
            theirs: dict[tuple[str, str], list[Service]] = {}
            sharing: dict[int, list[tuple[str, str]]] = {}
            for at in rows:
                for key in keys[at]:
                    group = owner.get(key, joined)
                    if key[0] == "cqc" and group != joined:
                        theirs.setdefault(key, []).append(members[at][1])
                    if key in owner:
                        sharing.setdefault(group, []).append((members[at][1].id, key[0]))
            self._theirs.update((record.id, key[1]) for key, given in theirs.items() for record in given)
            if len(joins) > 1:
                self.guesses.append(_by_order({named[group].id: sorted(sharing[group]) for group in sorted(
                    joins, key=lambda group: (named[group].source, named[group].id))},
                    {members[at][1].id for at in rows},
                    sorted((named[owner[key]].id, key[1], _giving(given, key[1])) for key, given in theirs.items())))
        return [[members[at] for at in sorted(group)] for group in groups]

    def _counting(self, keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The keys a record is merged by, of its own (`keys`, its id's first: `merge_keys`): of an id given more
        than once those its id counts (`_Given`). One rule for `_take`, which merges by them, and `_apart`, which
        keeps kinds apart by them."""
        given = self._given.get(keys[0][1]) if self._given else None
        return keys if given is None else [key for key in keys if key in given.counted]

    def _kinds(self, records: list[tuple[int, Service]], given: Mapping[str, _Given]) -> list[_Kind]:
        """The kinds `records` (with when each came) make, merged into this new merging in the order they came,
        each record of an id `given` names by the keys that counts: what `_merge_again` puts in place of the kind taken
        apart, the first record's kind first."""
        self._given = dict(given)
        for came, record in sorted(records, key=lambda member: member[0]):
            self._take(came, merge_keys(record), record)
        keys: dict[int, list[tuple[str, str]]] = {}
        for key, at in self._where.items():
            keys.setdefault(at, []).append(key)
        return [_Kind(record, self._came[at], self._members(at), keys[at], self._notes.get(at, []))
                for at, record in enumerate(self._records()) if record is not None]

    def _at(self, place: int) -> Service:
        """The record kept at a place (none is folded into another)."""
        found = self._record(place)
        assert found is not None
        return as_service(found)

    def _record(self, place: int) -> Service | Stored | None:
        """The record at a place, combined of its records as they are now (`_stale`)."""
        if place in self._stale:
            self._stale.remove(place)
            self.merged[place] = self._combined([member for _, member in self.members[place]])
        return self.merged[place]

    def _combined(self, members: list[Service]) -> Service:
        """`_combine` of `members`, each CQC location id of an id given more than once that the id is not merged by
        (`_Given.counted`) left out: a file's copy of an id read from the sync's store giving one its synced records
        do not, a file giving one id two, an active copy of a retired id. Such a key is not known at the kind, so
        the record of the location it names, which its key joins, shows it too; a record shows a CQC location id it
        is merged by, or none. An inactive record's own is no key of it (`merge_keys`), and it keeps it, as the sync
        or its file wrote it, but a file's inactive copy of a synced id (`_hides_cqc`); a synced record's is its id's.
        Before, a synced record without a CQC location id showed its file copy's (an inactive copy's too), while a
        council's row giving that id showed it too; a council's file giving homes:G twice, once with Ashton Lodge's
        CQC location id and once with Grovelands Lodge's, showed one of the two (which, by the order the rows came) on
        the record homes:G was merged into by its name and postcode, beside that location's own record; and a file's
        inactive homes:X, given active again with Grovelands Lodge's, showed it retired beside Grovelands Lodge's
        own. Nor one a chain of rows gives of a record the sync's store keeps apart from the one the chain joined
        (`_theirs`: the other's key, which its record shows): before, where a council's row giving Ashton Lodge's came
        first of the rows of Grovelands Lodge's record, which its chain joined, that record showed Ashton Lodge's
        beside Ashton Lodge's own. And a synced record's own, where one gives one, is the record's, whatever the
        order: the key the store knows it by. Before, a row read first joined by name and postcode gave its own in
        its place (with Ashton Lodge's synced record retired, its id no key, Grovelands Lodge's showed it). Nor, where
        none gives one, a retired synced record's, which a row gives (`_theirs`, `_leave_out_retired`)."""
        shown = [member.model_copy(update={"cqc_location_id": None}) if self._hides_cqc(member) else member
                 for member in members]
        # A synced record's own CQC location id is the one its record shows, whichever record came first: a file row
        # joined to it by name and postcode gives its own only where no synced record of the kind gives one.
        if any(member.cqc_location_id and self._is_synced(member) for member in shown):
            shown = [member if self._is_synced(member) or not member.cqc_location_id
                     else member.model_copy(update={"cqc_location_id": None}) for member in shown]
        return _combine(shown, self.precedence)

    def _hides_cqc(self, service: Service) -> bool:
        """Whether a record's CQC location id is left out of its record (`_combined`): another record's (`_theirs`), or
        one its id is not merged by. An inactive record keeps its own where its id was read from no sync's store: where
        one was, the synced records say the id's keys and state (a file's inactive copy of an active synced id retires
        nothing, and a live write never reads it)."""
        given = self._given.get(service.id)
        key = cqc_key(service.cqc_location_id)
        return key is not None and ((service.id, key) in self._theirs or (
            given is not None and (service.status != "inactive" or given.synced is not None)
            and not self._is_synced(service) and ("cqc", key) not in given.counted))

    def _copy_of_synced(self, service: Service) -> bool:
        """Whether a record is a copy (not read from the sync's store) of an id one record of which was."""
        given = self._given.get(service.id)
        return given is not None and given.synced is not None and not self._is_synced(service)

    def _records(self) -> list[Service | Stored | None]:
        """The record at each place, each combined of its records as they are now."""
        return [self._record(place) for place in range(len(self.merged))]

    def _members(self, place: int) -> list[tuple[int, Service]]:
        """The records at a place, the kept one first (`_first`): its record read only where it has none (a
        place's record may be combined only when read, `_record`)."""
        found = self.members.get(place)
        if found is None:
            found = self.members[place] = [(self._came[place], self._at(place))]
        return found

    def _fold(self, later: int, into: int, key: str, made: tuple[int, int]) -> None:
        """The records at `later` merged into those at `into`, as one kind, by the record and note `made` names
        (`_notes`): every key known at it is known at `into`, and the notes of what was merged into its kept record
        say `into`'s kept record. A key is known at a place only as a key of one of its records (`merge_keys`), so
        those of the records moved are the keys walked: before, every key known was, which made an import of many
        folds cost folds × keys."""
        moved, members = self._members(later), self._members(into)
        kept, folded = members[0][1].id, moved[0][1].id
        notes = self._notes.setdefault(into, [])
        notes += [(when, replace(note, kept=kept) if isinstance(note, MergeNote) and note.kept == folded else note)
                  for when, note in self._notes.pop(later, [])]
        notes.append((made, MergeNote(kept, folded, key)))
        for member in moved:  # each put in its place, as sorting them all again at each fold cost folds × records
            insort(members, member, key=self._first)
        del self.members[later]
        self.merged[later] = None
        self._stale.discard(later)
        where = self._where
        for _, record in moved:
            for key_at in merge_keys(record):
                if where.get(key_at) == later:
                    where[key_at] = into

    def _is_synced(self, service: Service) -> bool:
        """Whether a record was read from the sync's store (`synced`)."""
        return bool(self.synced) and (service.id, _origin(service)[0]) in self.synced

    def _rank(self, service: Service) -> tuple[bool, bool]:
        """Where a record comes among its id's records before when it came (`_first`): one read from the sync's
        store first, as a rebuild reads them before the files' rows, then an inactive one."""
        return not self._is_synced(service), service.status != "inactive"

    def _first(self, member: tuple[int, Service]) -> tuple[int, bool, bool, int]:
        """Where a record comes among its kind's records: when it came, but that one read from the sync's store,
        then an inactive one, comes where its id's first record came, before it, as the base of its id's copies:
        so the record of a synced id has the state the sync stores (a live write shows it so), and that of a retired
        location is the retirement's, whichever is read first. Before its id's first record, not the kind's: the
        kind's kept record, whose id a writer holds at its place (`stream`), stays of that id."""
        came, service = member
        rank = self._rank(service)
        return (self._came_first[service.id] if rank != (True, True) else came, *rank, came)

    def merge_all(self, items: Iterable[Service | Keyed]) -> list[Service | Stored]:
        """The records kept once `items` are all merged (`add`, `finish`)."""
        for item in items:
            self.add(item)
        self.finish()
        return self.kept()

    def kept(self) -> list[Service | Stored]:
        """The kept records, in their places."""
        return [record for record in self._records() if record is not None]

    def stream(self, items: Iterable[Service | Keyed]) -> Iterator[Service | Stored | Revision]:
        """Each record kept, as it comes (and a kind taken apart whose first record was given no place, `_part`, or
        once all have come, `finish`, at a new one), then each one combined with later ones again, as it ends up (a
        kind taken apart at the place its first record was given, which holds its id), and each folded into an
        earlier one as none (`Revision`): what a writer stores while the rest are still being prepared, no id at two
        rows at once."""
        written = 0  # the places given so far: a writer's rows, in order
        for item in items:
            self.add(item)
            yield from self._given_since(written)
            written = len(self.merged)
        self.finish()
        yield from self._given_since(written)
        for row, record in enumerate(self._records()):
            if record is None or row in self.members:
                yield Revision(row, None if record is None else as_service(record))

    def _given_since(self, written: int) -> Iterator[Service | Stored]:
        """The records of the places given since the first `written`, each as it was given."""
        for record in self.merged[written:]:
            assert record is not None, "a place is folded into another only once given"
            yield record


def merge_duplicates(services: Iterable[Service | Keyed], precedence: Precedence,
                     synced: Collection[tuple[str, str | None]] = ()) -> tuple[list[Service | Stored], list[MergeNote]]:
    """The records in their order, each duplicate merged into the first of its kind (a `Keyed` one read back as a
    record where it is merged), its fields by `precedence`, `synced` those read from the sync's store (`Merging`).
    A list of records alone gives records alone."""
    merging = Merging(precedence, synced)
    return merging.merge_all(services), merging.make_notes()
