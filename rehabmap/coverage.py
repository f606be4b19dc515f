"""Coverage: per area and service type, whether the directory holds that area's data at all, and as of when.

"No IPS service found within 30 km" and "we hold no IPS data for this area yet" are different answers
(DESIGN.md §8). An area is *covered* for a type when a claim says the directory lists everything of that
type there:

* a source was synced completely and says what a complete run covers (`Connector.covers()`): its claims
  are made when a complete listing is applied, and dated by the source's latest successful run since;
* a maintainer verified an area's curated table (who, when): its claims are made by `rehabmap index`.

A claim is for a category (a type, `ips_employment`, or a subtype, `advocacy:imha`) and an ONS area (England
E92000001, an ICB E54…, an upper-tier or lower-tier local authority, a sub-ICB location, a region). A claim
for a type covers its subtypes too; a claim for a subtype covers only that subtype. An area is covered as far
as its small areas (LSOAs) lie inside claimed areas: wholly (`covered`), in part (`partly_covered`, with
the share of its adults), or not at all (`not_covered`). A home is covered when any claimed area contains it.

Plain Python over the real small-area table (every English LSOA with its ICB, sub-ICB, local authorities
and region); the claims live in the maintainers' store, in tables of their own (`CoverageStore`): the
SQLite file, or PostgreSQL when `REHABMAP_DATABASE_URL` is set, so every API host answers from the same.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import count
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from geodata.distance import haversine_km_one, miles_and_km, radius_box
from geodata.england import ENGLAND
from rehabmap.small_areas import small_area_columns, small_area_file
from rehabmap.review_counts import BUMP_REVISION, HeldPoints, held_points, read_held, write_pending
from rehabmap.taxonomy import SUBTYPE_LABELS, SUBTYPES, ServiceType, type_words
from rehabmap.words import and_list

if TYPE_CHECKING:
    from rehabmap.maintain.database import Database

_LEVEL_COLUMNS = {"icb": "icb24_code", "sub_icb": "sicbl24_code", "lad": "ltla24_code", "utla": "utla23_code",
                  "region": "region24_code"}
Status = Literal["covered", "partly_covered", "not_covered"]
# A part of a type at a home (`HomeCoverage.parts`) as the public pages and POST /match's summary say it
# (`Coverage.part_status`).
PartStatus = Literal["held", "not_held", "awaiting_review"]
# Where a search looks: around its home's point (lat, lon), up to its radius in km (None: no limit).
Reach = tuple[float, float, float | None]
IN_ICB = "in the person's ICB"  # where a home's candidates awaiting review are counted without a search's radius
NO_LIMIT = "in England (the search has no distance limit)"

CURATED = "curated:"  # the basis of a curated table's claims, before the table's file name


@dataclass(frozen=True)
class Claim:
    """The directory lists everything of `category` in `area_code`, as of `as_of` (ISO date), on `basis`
    (`sync:<source>` or `curated:<table file>`), verified by someone for a curated table."""

    category: str
    area_code: str
    basis: str
    as_of: str
    verified_by: str | None = None

    def applies_to(self, category: str) -> bool:
        """A claim for a type covers the type and its subtypes; one for a subtype, that subtype only."""
        return self.category == category or self.category == category.split(":", 1)[0]


def category_label(category: str) -> str:
    service_type, _, subtype = category.partition(":")
    return type_words(service_type, subtype or None)


class Coverage(NamedTuple):
    """The answer for one category in one area (or at one home). A named tuple, not a frozen dataclass: a reply's
    JSON is kept by its answers (`api.schemas`), and a frozen dataclass's hash and equality were a Python call over
    its nine fields each lookup (~1.5k instructions, four lookups a `POST /match` of two types), and making one set
    each field by `object.__setattr__`; a tuple does both in C (bench/RESULTS.md, session 52)."""

    category: str
    status: Status
    share: float                   # of the area's adults living inside claimed areas (1.0 or 0.0 for a home)
    as_of: str | None              # the oldest date among the claims it rests on
    bases: tuple[str, ...] = ()    # what it rests on: "sync:cqc", "curated:ips_services.csv"
    pending_review: int = 0        # candidates of this category here (or within a search's reach) awaiting review
    pending_where: str = "here"    # where they lie, in words: 'in the person's ICB', 'within 25 miles (40.2 km) …'
    # At a home, of a type not covered as a whole: the kinds (type:subtype) that are covered there, and the rest.
    kinds_covered: tuple[str, ...] = ()
    kinds_not_covered: tuple[str, ...] = ()

    @property
    def covered(self) -> bool:
        return self.status == "covered"

    @property
    def may_be_more(self) -> bool:
        """Whether some found here may not be all there are: the directory does not hold all of the category's data
        here, or candidates of it await review. One rule for the answer's words (`some_found`), the gaps rows'
        "found, may be more" and the clinicians' count in the home ICB, which disagreed when each had its own."""
        return self.status != "covered" or bool(self.pending_review)

    @property
    def part_status(self) -> PartStatus:
        """As a part of a type (`HomeCoverage.parts`): awaiting review where a candidate of it does (neither held
        nor without data: a maintainer's decision may list it), else held where it is covered, else not held."""
        if self.pending_review:
            return "awaiting_review"
        return "held" if self.covered else "not_held"

    def to_dict(self, *, found: bool = False) -> dict[str, Any]:
        """`found`: the answer this coverage goes with lists some of the category (its words then say whether
        there may be more, not what none means)."""
        return {"category": self.category, "status": self.status, "share_of_adults": round(self.share, 4),
                "as_of": self.as_of, "based_on": list(self.bases), "pending_review": self.pending_review,
                "kinds_covered": list(self.kinds_covered), "kinds_not_covered": list(self.kinds_not_covered),
                "says": self.some_found() if found else self.none_found()}

    def some_found(self) -> str:
        """What finding some here means: all there are only where it is covered and none awaits review. The
        answer's `says` read "None found …" beside services found, and a user who showed it was misled."""
        if not self.may_be_more:
            return f"Found. {self.held()}"
        if self.pending_review:
            return f"Found, but {self._awaiting()}, so there may be more."
        if self.status == "partly_covered":
            return f"Found, but {_lowered(self.held())[:-1]}, so there may be more."
        label = category_label(self.category)
        return f"Found, but the directory does not yet hold complete {label} data for this area: there may be more."

    def none_found(self) -> str:
        """What finding none here means, in words a person reads: 'none found' only where it is covered; where
        only part is (of the area, or of the type's kinds), which part; where none is, no data."""
        if self.pending_review:
            return f"None confirmed yet: {self._awaiting()}, so none found does not mean there are none."
        if self.status == "covered":
            return f"None found. {self.held()}"
        if self.status == "partly_covered":
            return f"None found, but {_lowered(self.held())}"
        return f"Not yet covered: {_lowered(self.held())}"

    def national(self) -> str:
        """Why England's figures of a type found in it are not given (`rehabmap.gaps.coverage`): distances to the
        nearest service known are not England's where the directory holds the type's data for part of it."""
        label = category_label(self.category)
        held = f"for only {self.share:.0%} of England's adults" if self.share else "for no part of England"
        as_of = f" (as of {self.as_of})" if self.as_of and self.share else ""
        return (f"No national figure: the directory holds complete {label} data {held}{as_of}, so distances to "
                "the nearest service known are not England's.")

    def none_shown(self, left_out: str | None = None) -> str:
        """What an answer listing none of the category means, where the search's own options may have left some
        out (`rehabmap.match.LeftOut.says`): that first, then what the directory holds here. "Not yet covered"
        was said near Mansfield where "taking new referrals" had left out Dovetail House, 0.1 mile away."""
        if left_out is None:
            return self.none_found()
        return f"{left_out} {self.none_found() if self.pending_review else self.held()}"

    def held(self) -> str:
        """What the directory holds of the category here, as a sentence, whatever an answer found: the one
        statement of coverage that every empty or partial answer is worded from. CQC's complete listing is of
        the care homes it registers, not of all supported accommodation: a search near Mansfield for it said
        "the directory holds no Supported accommodation data for this area" beside those care homes."""
        label = category_label(self.category)
        if self.status == "covered":
            return f"The directory holds complete {label} data for this area (as of {self.as_of})."
        if self.kinds_covered:
            return (f"The directory holds complete {label} data here only for {_kinds(self.kinds_covered)} (as of "
                    f"{self.as_of}); {_kinds(self.kinds_not_covered)} "
                    f"{'is' if len(self.kinds_not_covered) == 1 else 'are'} not yet covered.")
        if self.status == "partly_covered":
            return (f"The directory holds {label} data for only {self.share:.0%} of this area's adults (as of "
                    f"{self.as_of}); the rest is not yet covered.")
        return f"The directory holds no {label} data for this area yet."

    def _awaiting(self) -> str:
        waiting = "1 candidate awaits" if self.pending_review == 1 else f"{self.pending_review} candidates await"
        return f"{waiting} review by the directory's maintainers {self.pending_where}"


def _lowered(sentence: str) -> str:
    """A sentence of `Coverage.held` read on after "None found, but" (it starts "The directory")."""
    return sentence[0].lower() + sentence[1:]


def _kind_words(category: str) -> str:
    """A kind of a type (type:subtype) mid-sentence: 'floating outreach support', 'Care Act advocacy'."""
    label = SUBTYPE_LABELS[category.partition(":")[2]]
    words = label.split(" ", 2)
    return label[0].lower() + label[1:] if len(words) > 1 and words[1][:1].islower() else label


def _kinds(categories: Sequence[str]) -> str:
    return and_list([_kind_words(c) for c in categories])


# Each type's kinds as coverage names them ("type:subtype").
_KINDS: dict[str, tuple[str, ...]] = {t.value: tuple(f"{t.value}:{s}" for s in subtypes)
                                      for t, subtypes in SUBTYPES.items()}


class SmallAreaTable:
    """Every English LSOA with the codes of the areas that contain it, and its adults (16+)."""

    def __init__(self, codes: Mapping[str, Sequence[str] | np.ndarray], adults: np.ndarray) -> None:
        self.adults = adults
        self._members: dict[str, np.ndarray] = {}
        self._levels: dict[str, frozenset[str]] = {}
        for level, column in codes.items():
            rows: dict[str, list[int]] = {}
            for i, code in enumerate(column):
                rows.setdefault(code, []).append(i)
            self._members.update((code, np.array(found, dtype=np.int64)) for code, found in rows.items())
            self._levels[level] = frozenset(rows)
        self._utla_of_lad = dict(zip(codes["lad"], codes["utla"]))
        self._lads_of_utla: dict[str, list[str]] = {}
        for lad, utla in self._utla_of_lad.items():
            if lad != utla:  # a unitary authority is its own district
                self._lads_of_utla.setdefault(utla, []).append(lad)

    @classmethod
    def load(cls, data_dir: Path) -> SmallAreaTable:
        """From a data folder (or the CSV itself); made once a process, from the columns the gaps share."""
        return _load_table(small_area_file(data_dir))

    def __len__(self) -> int:
        return len(self.adults)

    def known(self, code: str) -> bool:
        return code == ENGLAND or code in self._members

    def codes_of(self, level: str) -> frozenset[str]:
        """Every code of a level: 'icb', 'sub_icb', 'lad', 'utla' or 'region'."""
        return self._levels[level]

    def members(self, code: str) -> np.ndarray:
        if code == ENGLAND:
            return np.arange(len(self))
        return self._members.get(code, np.empty(0, dtype=np.int64))

    def utla_of(self, lad_code: str | None) -> str | None:
        return self._utla_of_lad.get(lad_code or "")

    def lads_of(self, utla_code: str) -> list[str]:
        """The districts of an upper-tier authority (none for a unitary one, which is its own)."""
        return self._lads_of_utla.get(utla_code, [])


@lru_cache(maxsize=2)
def _load_table(path: Path) -> SmallAreaTable:
    columns = small_area_columns(path)
    return SmallAreaTable({level: columns[name] for level, name in _LEVEL_COLUMNS.items()}, columns["adults"])


# Each CoverageMap's number, never reused in a process: what is worked out from a map (the gaps' tables read with it)
# is kept under it, where an object's `id` could be a later map's once the first is dropped.
_REVISIONS = count()


@dataclass
class CoverageMap:
    """The claims in force, answering per area or per home."""

    claims: Sequence[Claim]
    table: SmallAreaTable
    pending: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (category, area code) -> held candidates
    held: Mapping[str, HeldPoints] = field(default_factory=dict)  # category -> the held candidates' points
    _categories: dict[str, _Category] = field(default_factory=dict, repr=False)
    _masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # Each known area's answer of a category, made once for these claims: the all-areas table asks every area of a
    # level for every type (~6,100 at local authority level) on every request, ~80% of its CSV's time
    # (bench/RESULTS.md, session 34). An unknown code's answer is not kept (a request names any code it likes).
    _areas: dict[tuple[str, str], Coverage] = field(default_factory=dict, repr=False)
    revision: int = field(default_factory=_REVISIONS.__next__, init=False, compare=False)
    _types: dict[ServiceType, _Type] = field(default_factory=dict, repr=False)
    _together: dict[tuple[str, ...], _Together] = field(default_factory=dict, repr=False)
    _held_types: dict[str, _Held] = field(default_factory=dict, repr=False)

    def _category(self, category: str) -> _Category:
        """What the claims say of a category, whoever asks: made once a category for these claims."""
        found = self._categories.get(category)
        if found is None:
            used = tuple(c for c in self.claims if c.applies_to(category) and self.table.known(c.area_code))
            found = self._categories[category] = _Category(used, _answer(category, "not_covered", 0.0, (),
                                                                         pending_review=0))
        return found

    def _type(self, service_type: ServiceType) -> _Type:
        """What a request's answer of a type asks of these claims at any home (`HomeCoverage.with_parts`): made once
        a type for these claims, not worked out again each request (bench/RESULTS.md, session 52)."""
        found = self._types.get(service_type)
        if found is None:
            category = service_type.value
            kinds = _KINDS.get(category, ())
            split = any(self._category(kind).used for kind in kinds)
            known = self._category(category)
            awaited = category in self.held or any(c == category for c, _ in self.pending)
            everywhere = None if split or known.used or awaited else (known.not_covered,
                                                                      ((category, known.not_covered),))
            found = self._types[service_type] = _Type(category, kinds, split, everywhere)
        return found

    def _held_together(self, kinds: Collection[str]) -> _Together:
        """The held candidates of kinds asked together (`HomeCoverage._each_once`), counted once a set of kinds for
        these claims from their type's merged points (`_held_of`): merging every kind's points in all England each
        request made a request of three advocacy kinds cost ~3 times one kind's, 3,000 candidates held."""
        key = tuple(sorted(kinds))
        found = self._together.get(key)
        if found is None:
            held = self._held_of(key[0].partition(":")[0])
            _, _, icbs, services = held.points
            rows = [i for i, held_as in enumerate(held.held_as) if not held_as.isdisjoint(key)]
            in_icb: dict[str, set[int]] = {}
            for i in rows:
                if icbs[i]:  # as the counts: a point in no ICB is in none
                    in_icb.setdefault(icbs[i], set()).add(services[i])
            found = self._together[key] = _Together({icb: frozenset(services) for icb, services in in_icb.items()},
                                                     len({services[i] for i in rows}))
        return found

    def _held_of(self, service_type: str) -> _Held:
        """The held points of a type (its value) and of all its kinds together, each (point, ICB, service) once with
        the categories it is held as, made once a type for these claims: a search measures them once a request
        (`HomeCoverage._beyond`), where each category asked measured its own, four times for three advocacy kinds
        asked (the type's, the kinds', theirs together)."""
        found = self._held_types.get(service_type)
        if found is None:
            rows: dict[tuple[float, float, str, int], set[str]] = {}
            for held_as, points in self.held.items():
                if held_as.partition(":")[0] == service_type:
                    for row in zip(*points):
                        rows.setdefault(row, set()).add(held_as)
            ordered = sorted(rows)
            found = self._held_types[service_type] = _Held(
                HeldPoints(*zip(*ordered)) if ordered else HeldPoints((), (), (), ()),
                tuple(frozenset(rows[row]) for row in ordered))
        return found

    def _covered_rows(self, category: str) -> tuple[np.ndarray, tuple[Claim, ...]]:
        used = self._category(category).used
        if category not in self._masks:
            mask = np.zeros(len(self.table), dtype=bool)
            for claim in used:
                mask[self.table.members(claim.area_code)] = True
            self._masks[category] = mask
        return self._masks[category], used

    def for_area(self, code: str, category: str) -> Coverage:
        """A category in an area. A type not covered there as a whole, some of whose kinds are, none awaiting
        review, is partly covered and says by which (`by_kinds`), and one every kind of which is covered is covered
        (`_from_kinds`), as a search's answer says it at a home: the area endpoint and the gaps scorecards called
        supported accommodation "not covered" in every ICB of a directory synced from CQC, whose listing is complete
        for the 24-hour care homes it registers."""
        found = self._areas.get((code, category))
        if found is None:
            found = self._for_area(code, category)
            if self.table.known(code):
                self._areas[code, category] = found
        return found

    def _for_area(self, code: str, category: str) -> Coverage:
        whole = self._whole_area(code, category)
        kinds = _KINDS.get(category, ())
        if whole.covered or whole.pending_review or not any(self._category(kind).used for kind in kinds):
            return whole
        answers = {kind: self._whole_area(code, kind) for kind in kinds}
        if all(a.covered and not a.pending_review for a in answers.values()):
            return _from_kinds(category, answers.values())
        return by_kinds(answers, share=whole.share) or whole

    def _whole_area(self, code: str, category: str) -> Coverage:
        rows = self.table.members(code)
        mask, used = self._covered_rows(category)
        adults = self.table.adults[rows]
        total = int(adults.sum())
        inside = int(adults[mask[rows]].sum()) if total else 0
        share = inside / total if total else 0.0
        in_area = np.zeros(len(self.table), dtype=bool)
        in_area[rows] = True
        relevant = tuple(c for c in used if in_area[self.table.members(c.area_code)].any())
        status: Status = "covered" if total and inside == total else "partly_covered" if inside else "not_covered"
        return _answer(category, status, share, relevant, pending_review=self._pending_in(code, category))

    def _pending_in(self, code: str, category: str) -> int:
        """The candidates of a category awaiting review in an area. The queue counts them by the areas a
        record's point lies in, up to its district; an upper-tier authority (a county) holds its districts'."""
        found = self.pending.get((category, code), 0)
        if found or not self.pending or code not in self.table.codes_of("utla"):
            return found
        return sum(self.pending.get((category, lad), 0) for lad in self.table.lads_of(code))

    def at_home(self, area_codes: Iterable[str | None], reach: Reach | None = None) -> HomeCoverage:
        """The answers at one home, for as many types as a request asks about; `reach`: a search's, whose held
        candidates within it count wherever they lie (without one, those in the home's ICB)."""
        return HomeCoverage(self, area_codes, reach)

    def for_home(self, area_codes: Iterable[str | None], category: str) -> Coverage:
        return self.at_home(area_codes).for_category(category)

    def for_request(self, area_codes: Iterable[str | None], service_type: ServiceType,
                    subtypes: Collection[str] = ()) -> Coverage:
        return self.at_home(area_codes).for_request(service_type, subtypes)


def _where(km: float, in_icb: int, beyond: int) -> str:
    """Where a home's held candidates lie, in words (`Coverage.pending_where`): `in_icb` in the person's ICB and
    `beyond` outside it, within the search's `km`."""
    if not beyond:
        return IN_ICB
    within = f"within {miles_and_km(km)} of home"
    return f"in the person's ICB or {within}" if in_icb else f"{within}, outside the person's ICB"


# A type's answer at a home as a request asks for it, with its parts ("type" or "type:subtype", each with its
# answer): `HomeCoverage.with_parts`.
Parts = tuple[tuple[str, Coverage], ...]
TypeAnswer = tuple[Coverage, Parts]


class _Type(NamedTuple):
    category: str  # the type's (its value)
    kinds: tuple[str, ...]  # its kinds ("type:subtype")
    split: bool  # some kind of it is claimed somewhere: where the type is not covered, its parts are its kinds
    everywhere: TypeAnswer | None  # the answer and parts at every home, where neither it nor a kind of it is claimed
    # anywhere and none of it awaits review (asked with none of its subtypes); else None


class _Together(NamedTuple):
    in_icb: Mapping[str, frozenset[int]]  # per ICB code, the services held as any of the kinds with a point in it
    services: int  # how many services held as any of the kinds have a point


class _Held(NamedTuple):
    points: HeldPoints  # every held point of a type and its kinds, each (point, ICB, service) once
    held_as: tuple[frozenset[str], ...]  # each point's categories (the type, its kinds)


class _Category(NamedTuple):
    used: tuple[Claim, ...]  # the claims that apply to it, in areas the small-area table knows
    not_covered: Coverage  # the answer where none of them holds and no candidate awaits review


class HomeCoverage:
    """Coverage at one home. The home's side is worked out once, not once a type a request asks about
    (bench/RESULTS.md, "POST /match, ninth pass"): the codes of the areas containing it, with England and
    its upper-tier authority (from its LAD), and its ICB, where candidates awaiting review are counted.

    A search's answer counts those within its reach too, whichever area they lie in: a search from Mansfield
    within 40 km said "None found. The directory holds complete … data" beside Field House, held for review
    14.5 km away in the next ICB, which a maintainer's decision may list. Without a radius the search reaches
    all of England, so every held candidate counts (England's count, points or not)."""

    __slots__ = ("_coverage", "_codes", "_icb", "_reach", "_near")

    def __init__(self, coverage: CoverageMap, area_codes: Iterable[str | None], reach: Reach | None = None) -> None:
        table = coverage.table
        codes = set(filter(None, area_codes))  # set operations, not generators: ~1 µs of CPU a request less
        utla = table.utla_of(next(iter(codes & table.codes_of("lad")), None))
        self._icb = next(iter(codes & table.codes_of("icb")), "")
        codes.add(ENGLAND)
        if utla:
            codes.add(utla)
        self._coverage = coverage
        self._codes = codes
        self._reach = reach
        self._near: dict[str, list[int]] = {}  # per type, its held points within the reach outside the home's ICB

    def for_category(self, category: str) -> Coverage:
        """Covered when any claim for the category is for an area containing the home."""
        known = self._coverage._category(category)
        covering = tuple(c for c in known.used if c.area_code in self._codes) if known.used else ()
        pending = self._coverage.pending
        waiting, where = (pending.get((category, self._icb), 0) if pending else 0), IN_ICB
        if self._reach is not None and pending:
            waiting, where = self._reached(self._reach, category, waiting)
        if not covering and not waiting:
            return known.not_covered
        return _answer(category, "covered" if covering else "not_covered", 1.0 if covering else 0.0, covering,
                       pending_review=waiting, pending_where=where)

    def _reached(self, reach: Reach, category: str, in_icb: int) -> tuple[int, str]:
        """The held candidates of a category within the search's reach or in the home's ICB (`in_icb` of them), and
        where they lie in words: "here" told a clinician searching from Mansfield that Field House, 14.5 km away
        in Derby and Derbyshire, was in the person's own area."""
        lat, lon, km = reach
        if km is None:
            return self._coverage.pending.get((category, ENGLAND), 0), NO_LIMIT
        if category not in self._coverage.held:
            return in_icb, IN_ICB
        beyond = len(self._beyond((category,), lat, lon, km))
        return in_icb + beyond, _where(km, in_icb, beyond)

    def _beyond(self, held_as: Collection[str], lat: float, lon: float, km: float) -> set[int]:
        """The services held as any of `held_as` (categories of one type) with a point within `km` of (lat, lon), the
        search's reach, outside the home's ICB. The type's points (`CoverageMap._held_of`) are measured once a
        request, whichever of its categories asks, and only those in the radius's box (the search's own box:
        `radius_box`)."""
        service_type = next(iter(held_as)).partition(":")[0]
        held = self._coverage._held_of(service_type)
        near = self._near.get(service_type)
        if near is None:
            lats, lons, icbs, _ = held.points
            box = radius_box(lat, lon, km)
            south, north, west, east = box if box is not None else (-90.0, 90.0, -math.inf, math.inf)
            near = self._near[service_type] = [i for i in range(bisect_left(lats, south), bisect_right(lats, north))
                                               if west <= lons[i] <= east and icbs[i] != self._icb
                                               and haversine_km_one(lat, lon, lats[i], lons[i]) <= km]
        services, categories = held.points.services, held.held_as
        return {services[i] for i in near if not categories[i].isdisjoint(held_as)}

    def _each_once(self, kinds: Mapping[str, Coverage], answer: Coverage) -> Coverage:
        """The answer of several kinds asked together (`answer`, `_from_kinds`': the least covered kind's count)
        with each held candidate of any of them counted once, where it lies as for one kind: IMHA, IMCA and Care
        Act advocacy asked from Mansfield, an IMHA, an IMCA and an unstated-kind candidate awaiting review in its
        ICB, said "2 candidates await review" for the 3; one whose kind no source states is a candidate of each, so
        a sum would count it thrice. Counted from the held points; never fewer than the kind most awaited (`kinds`:
        each kind's answer), whose count holds those without a point too: IMHA not covered, none awaiting, beside
        2 IMCA candidates, said "Not yet covered" with no candidate."""
        together = self._coverage._held_together(kinds)
        in_icb = together.in_icb.get(self._icb, frozenset())
        count, where = len(in_icb), IN_ICB
        if self._reach is not None:
            lat, lon, km = self._reach
            if km is None:
                count, where = together.services, NO_LIMIT
            else:
                beyond = len(self._beyond(kinds, lat, lon, km) - in_icb)
                count, where = len(in_icb) + beyond, _where(km, len(in_icb), beyond)
        most = max(kinds.values(), key=lambda a: a.pending_review)
        if count <= most.pending_review:
            count, where = most.pending_review, most.pending_where
        return answer._replace(pending_review=count, pending_where=where)

    def parts(self, service_type: ServiceType) -> dict[str, Coverage]:
        """Each part of a type here with its own answer, candidates awaiting review counted per part (`with_parts`'
        parts): its kinds ("type:subtype") where the type is not covered as a whole and some kind of it is held
        somewhere, else the type. A public page names what is held, being checked and not held of each: near
        Mansfield, with a supported housing candidate awaiting review, `for_request`'s answer (the type's, not
        covered, a candidate awaiting review) made /find/housing say "We do not hold information about supported
        accommodation" beside the care homes CQC lists every one of."""
        return dict(self.with_parts(service_type)[1])

    def for_request(self, service_type: ServiceType, subtypes: Collection[str] | None = ()) -> Coverage:
        """`with_parts`' answer alone: the pages, `rehabmap match` and the browse say no parts."""
        return self.with_parts(service_type, subtypes)[0]

    def with_parts(self, service_type: ServiceType, subtypes: Collection[str] | None = ()) -> TypeAnswer:
        """For a type as a request asks for it, and its parts (`parts`), worked out together: the one statement of
        both (POST /match gives both).

        The answer: each subtype asked of this type must be covered. `subtypes` are the request's, of any type:
        each narrows only its own type, as in the match. Where only some of the kinds asked (or, none asked, of the
        type's kinds) are covered and none awaits review, it is partly covered, and says by which: CQC's listing is
        complete for the care homes it registers, not for supported housing or floating support, and a search for
        supported accommodation near Mansfield said "the directory holds no Supported accommodation data for this
        area" beside those care homes.

        A type of which nothing (nor any kind) is claimed anywhere and no candidate awaits review has the same
        answer and parts at every home, made once for these claims (`CoverageMap._type`): the same objects each
        request, which the reply's JSON is then kept by."""
        facts = self._coverage._type(service_type)
        own = request_kinds(service_type, subtypes)
        if facts.everywhere is not None and not own:
            return facts.everywhere
        whole = self.for_category(facts.category)
        split = None if whole.covered or not facts.split else {kind: self.for_category(kind) for kind in facts.kinds}
        if own:
            known = split or {}
            asked = {kind: known.get(kind) or self.for_category(kind) for kind in own}
            answer = self._of_kinds(service_type, own, asked, None)
            if len(asked) > 1 and any(a.pending_review for a in asked.values()):
                answer = self._each_once(asked, answer)
        else:
            answer = whole if split is None or whole.pending_review else self._of_kinds(service_type, own, split, whole)
        return answer, ((facts.category, whole),) if split is None else tuple(split.items())

    def _of_kinds(self, service_type: ServiceType, own: list[str], kinds: dict[str, Coverage],
                  whole: Coverage | None) -> Coverage:
        """The request's answer from its kinds' (`own`: those it asked, as "type:subtype"; none: the type's, whose
        own answer is `whole`)."""
        answers = list(kinds.values())
        if whole is not None and not any(a.covered for a in answers):
            return whole
        partly = by_kinds(kinds, share=0.0)
        if partly is not None:
            return partly
        # One kind asked is named as that kind: 'complete Supported accommodation data', where CQC lists only care
        # homes, told an API user that floating support and supported housing were all there too.
        return _from_kinds(answers[0].category if len(own) == 1 else service_type.value, answers)


def _from_kinds(category: str, answers: Collection[Coverage]) -> Coverage:
    """A category's answer from its kinds' where `by_kinds` does not say it (every kind covered, none, or some
    awaiting review): the least covered kind's (of those, the one most awaiting review: IMHA and IMCA asked, both
    covered, an IMCA candidate awaiting review, said "None found … complete" as the first kind's), with every kind's
    bases, and where all are covered the oldest of their dates, as data complete "as of" it. One rule for a home
    (`HomeCoverage.for_request`) and an area (`CoverageMap.for_area`): an ICB every advocacy kind of which was
    claimed, advocacy as a whole not, was "not covered" in the gaps rows and the clinicians' count, while a search
    from a home in it said "complete"."""
    worst = min(answers, key=lambda a: (a.share, -a.pending_review))
    as_of = min(str(a.as_of) for a in answers) if worst.covered else worst.as_of
    bases = tuple(dict.fromkeys(b for a in answers for b in a.bases))
    return Coverage(category, worst.status, worst.share, as_of, bases, worst.pending_review, worst.pending_where)


def request_kinds(service_type: ServiceType, subtypes: Iterable[str] | None) -> list[str]:
    """Of a request's subtypes (of any type), this type's, as its kinds ("type:subtype")."""
    return [f"{service_type.value}:{s}" for s in subtypes or () if s in SUBTYPES.get(service_type, ())]


def none_found_lines(answers: Mapping[ServiceType, Coverage], listed: Iterable[ServiceType],
                     left_out: Mapping[ServiceType, str]) -> list[str]:
    """For each type asked for (`answers`: its coverage at the home, as the search asks for it,
    `HomeCoverage.for_request`) of which an answer lists none: what the search's options left out of it
    (`left_out`, in words), and whether none means there are none (the home's area is covered), none where part
    is, or nothing at all (not yet covered)."""
    shown = set(listed)
    return [f"{t.value}: {answer.none_shown(left_out.get(t))}" for t, answer in answers.items()
            if t not in shown]


def by_kinds(kinds: Mapping[str, Coverage], *, share: float) -> Coverage | None:
    """A type (`kinds`: each of its kinds' answers, "type:subtype") partly covered because only some of its kinds
    are, none awaiting review; None otherwise. `share`: of adults covered for the type as a whole (0 at a home).
    One rule for a home (`HomeCoverage.for_request`) and an area (`CoverageMap.for_area`)."""
    covered = [k for k, a in kinds.items() if a.covered]
    if not covered or len(covered) == len(kinds) or any(a.pending_review for a in kinds.values()):
        return None
    return Coverage(next(iter(kinds)).partition(":")[0], "partly_covered", share,
                    min(str(kinds[k].as_of) for k in covered),
                    tuple(dict.fromkeys(b for k in covered for b in kinds[k].bases)),
                    kinds_covered=tuple(covered), kinds_not_covered=tuple(k for k in kinds if k not in covered))


def _answer(category: str, status: Status, share: float, claims: Sequence[Claim], *, pending_review: int,
            pending_where: str = "here") -> Coverage:
    """Dated by the oldest of the claims it rests on, at a home as in an area: "complete … (as of …)" is then true
    of every basis it names. A home's was its newest claim's: a Leeds home covered by West Yorkshire's IPS table,
    verified on 1 October, and a sync of November read "as of" November, where Leeds itself read October."""
    dates = [c.as_of for c in claims]
    as_of = min(dates) if dates else None
    return Coverage(category, status, share, as_of, tuple(dict.fromkeys(c.basis for c in claims)), pending_review,
                    pending_where)


class Snapshot(NamedTuple):
    """What the coverage store holds, read together: the claims, the review queue's counts per (category,
    area code), and its held candidates' points per category."""

    claims: list[Claim]
    pending: dict[tuple[str, str], int]
    held: dict[str, HeldPoints]


# sync_meta: a revision the writes to the synced records outside a run move, in their transaction, where what the
# stalled listings read (a record's problem, whether it has a usable version) can change with no run recorded:
# preparing the records again on upgrade (`SyncStore.write_reprepared`), at a sync's start or a server's catch-up.
# With the last run's id, it is what `CoverageStore.read` gives the listings to be kept on (`ListingsKey`). (A review
# decision writes its records' live revision alone: no listing changes.)
LISTINGS_REVISION = "listings_revision"
BUMP_LISTINGS = (f"INSERT INTO sync_meta (key, value) VALUES ('{LISTINGS_REVISION}', '1') ON CONFLICT (key) DO UPDATE "
                 "SET value = CAST(CAST(sync_meta.value AS INTEGER) + 1 AS TEXT)")


class ListingsKey(NamedTuple):
    """What the stalled listings read is kept on (`CoverageStore.read`): the sync store's last run and the revision
    its records' writes outside a run move (`LISTINGS_REVISION`); (0, 0) for none, or no store. Before, their sum:
    right only while both move on, and saying neither."""

    run_id: int
    listings_revision: int


NO_LISTINGS = ListingsKey(0, 0)


class CoverageStore:
    """The claims, in the maintainers' store (an SQLite file's path, or an open PostgreSQL database). Reads
    are cached until `coverage_revision` moves, which every write that changes the claims or the review queue's
    counts bumps in its transaction: one query a read on PostgreSQL; on SQLite asked only once the file has changed
    (one stat, no query, per read otherwise: `_WalKeeper`). The same query reads the sync store's last run (`read`),
    on which the stalled listings are kept apart (`AppState.unconfirmed_listings`): every run that applies or retires
    records its row in `sync_runs` in the transaction of its success, committed before its coverage is published
    (`indexer.sync.publish`), and a run that changes nothing moves it on and not the claims; with it, the revision
    the records' writes outside a run move (`LISTINGS_REVISION`). Keyed on both (session 51), every run dropped the
    claims on PostgreSQL, and the next searches paid their rebuild. Not on the sources' latest success: stored to the
    second, a run committing in the second of another's already read left it as it was, and a retirement does not
    move it."""

    def __init__(self, store: Path | Database) -> None:
        self.store = store
        self._cache: tuple[int, Snapshot] | None = None  # the revision read, and what was read at it
        # SQLite: the file's stamp, and the revision and last sync run read while it held.
        self._seen: tuple[tuple[int, ...], tuple[int, ListingsKey]] | None = None
        self._lock = threading.Lock()
        self._database: Database | None = None
        self._wal = _WalKeeper(store) if isinstance(store, Path) else None
        # No store yet: the same empty snapshot every time, so that what is made from it can be kept.
        self._none = Snapshot([], {}, {})

    def _opened(self) -> Database:
        # Opened (migrated) once: opening writes, which changed the SQLite file on every read, so the cache
        # below never held and each /match paid a write and an fsync.
        if self._database is None:
            from rehabmap.maintain.migrations import opened

            self._database = opened(self.store)
        return self._database

    def replace(self, basis: str, claims: Iterable[Claim], *, prefix: bool = False) -> None:
        """Every claim on this basis (with `prefix`: on every basis starting so) gives way to these, in one
        transaction; nothing is written where they are the claims already held (a complete listing that lists what
        it did on the day: the revision left, readers keep what they read)."""
        rows = [(c.basis, c.category, c.area_code, c.as_of, c.verified_by) for c in claims]
        where, given = ("substr(basis, 1, ?) = ?", (len(basis), basis)) if prefix else ("basis = ?", (basis,))
        with self._opened().transaction() as conn:
            held = conn.execute("SELECT basis, category, area_code, as_of, verified_by FROM coverage_claims WHERE "
                                + where, given).fetchall()
            if _claimed(held) == _claimed(rows):
                return
            conn.execute("DELETE FROM coverage_claims WHERE " + where, given)
            conn.executemany("INSERT INTO coverage_claims VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                             "(basis, category, area_code) DO UPDATE SET as_of = excluded.as_of, "
                             "verified_by = excluded.verified_by", rows)
            conn.execute(BUMP_REVISION)

    def replace_pending(self, counts: Mapping[tuple[str, str], int]) -> None:
        """The candidates awaiting review, per (category, area code), all at once."""
        with self._opened().transaction() as conn:
            write_pending(conn, counts)

    def touch(self, basis: str, as_of: str) -> None:
        """A source synced successfully again: its claims hold as of `as_of`. The revision moves on only where a
        claim's day did: a second run on a day changes no claim, and every reader would read them all again."""
        with self._opened().transaction() as conn:
            if conn.execute("UPDATE coverage_claims SET as_of = ? WHERE basis = ? AND as_of <> ?",
                            (as_of, basis, as_of)).rowcount:
                conn.execute(BUMP_REVISION)

    def claims(self) -> list[Claim]:
        return self.snapshot()[0]

    def snapshot(self) -> Snapshot:
        """The claims and the candidates awaiting review, read together (and again only once a write has moved the
        coverage revision: a run that changes no claim leaves them as read)."""
        return self.read()[0]

    def read(self) -> tuple[Snapshot, ListingsKey]:
        """The snapshot, and the sync store's last run and `LISTINGS_REVISION` as the same query read them
        (`ListingsKey`): what the stalled listings read after it are kept on, handed to the caller and
        not kept here, where another thread's older read could overwrite it. Before, the last run's id alone: a
        record an upgrade prepared again at a sync's start, its problem cleared, stayed out of the listings until
        the next run, and a match read its stalled source's listing as current."""
        stamp = self._stamp()
        if stamp is None:
            return self._none, NO_LISTINGS
        revision, listings = stamp
        with self._lock:
            if self._cache is not None and self._cache[0] == revision:
                return self._cache[1], listings
        with self._opened().snapshot() as conn:
            rows = conn.execute("SELECT category, area_code, basis, as_of, verified_by FROM coverage_claims "
                                "ORDER BY basis, category, area_code").fetchall()
            pending = {(t, a): n for t, a, n in conn.execute("SELECT category, area_code, count "
                                                             "FROM coverage_pending")}
            held = held_points(read_held(conn)) if pending else {}
        found = Snapshot([Claim(*row) for row in rows], pending, held)
        with self._lock:
            self._cache = (revision, found)
        return found, listings

    def _stamp(self) -> tuple[int, ListingsKey] | None:
        """The coverage revision and the sync store's last run with its listings' revision, in one query (the
        revision a key's lookup); on SQLite read again only once the file has changed (its stamp taken first, so a
        commit between the two is read at the next). None: no store file."""
        file = None
        if self._wal is not None:
            file = self._wal.stamp()
            if file is None:
                return None
            seen = self._seen
            if seen is not None and seen[0] == file:
                return seen[1]
        with self._opened().connect() as conn:
            revision, run_id, listings_revision = conn.execute(
                "SELECT (SELECT coalesce(max(n), 0) FROM coverage_revision), (SELECT coalesce(max(id), 0) FROM "
                "sync_runs), coalesce((SELECT CAST(value AS INTEGER) FROM sync_meta WHERE key = ?), 0)",
                (LISTINGS_REVISION,)).fetchone()
        stamp = (int(revision), ListingsKey(int(run_id), int(listings_revision)))
        if file is not None:
            self._seen = (file, stamp)
        return stamp


def _claimed(rows: Iterable[Sequence[Any]]) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    """Claims' rows by their key (basis, category, area), a later row of a key standing, as the write's
    `ON CONFLICT` has it."""
    return {(basis, category, area): (as_of, by) for basis, category, area, as_of, by in rows}


class _WalKeeper:
    """What changes when the SQLite store is written, asked on every search in one `stat`.

    In WAL mode every commit writes the `-wal` file (the main file changes only when a checkpoint copies
    pages over, which changes no content); but the last connection to close deletes the `-wal`, and a process
    whose threads keep no connection open (a sync, a CLI call) may be the last, so a reader could find no
    `-wal` between writes and had to stat both files, the missing one by an exception (~23 µs of CPU a request
    with cold caches; bench/RESULTS.md, "POST /match, ninth pass"). One idle connection, held once the file
    exists, keeps the `-wal` in place: its inode, time and size then change with every commit, whichever
    process makes it. Without a `-wal` (a file not in WAL mode, or one replaced under the held connection) the
    file itself is stamped, and the connection opened again whenever that stamp changes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wal_path = f"{path}-wal"
        self._held: sqlite3.Connection | None = None
        self._held_at: tuple[int, ...] | None = None  # the file's stamp when the connection was opened
        self._lock = threading.Lock()

    def stamp(self) -> tuple[int, ...] | None:
        """None when there is no store file."""
        wal = self._wal_stamp()
        if wal is not None:
            return wal
        try:
            main = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not S_ISREG(main.st_mode):
            return None
        stamp = (main.st_mtime_ns, main.st_size, 0, 0)
        if stamp != self._held_at:
            self._hold(stamp)
            return self._wal_stamp() or stamp
        return stamp

    def _wal_stamp(self) -> tuple[int, ...] | None:
        try:
            wal = os.stat(self._wal_path)
        except FileNotFoundError:
            return None
        return (wal.st_ino, wal.st_mtime_ns, wal.st_size)

    def _hold(self, stamp: tuple[int, ...]) -> None:
        """Open the idle connection (again): reading a page makes SQLite open the `-wal`; the new one is open
        before the old one closes, so a `-wal` in place stays."""
        held = sqlite3.connect(self.path, check_same_thread=False)
        try:
            held.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:  # not a store: the claims' read says why; stamping the file needs nothing held
            held.close()
            return
        with self._lock:
            old, self._held, self._held_at = self._held, held, stamp
        if old is not None:
            old.close()


def coverage_map(store: CoverageStore, data_dir: Path) -> CoverageMap:
    claims, pending, held = store.snapshot()
    return CoverageMap(claims, SmallAreaTable.load(data_dir), pending, held)
