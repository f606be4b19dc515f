"""What if: a commissioner adds a hypothetical service (a type at a postcode, with beds if known) or removes
one, and sees every indicator of the area and of England change, before anything is real.

A scenario never touches the directory or the index: `Scenario.apply` makes a new `GapAnalysis` from the
current one (`GapAnalysis.with_changes`, which searches again only the categories the change touches) and
`what_if` reads the same typed reports from both, so the command line, the API and the pages give the
same figures as the plain gap analysis would if the change were real.

An addition is written `TYPE@POSTCODE`, then optionally `@BEDS` and `@CATCHMENT`, e.g.
`inpatient_rehab_level2@LS9 7TF@12` or `community_rehab_team@LS9 7TF@E08000035+E08000032`; a removal is a
service id. Hypothetical services are numbered `whatif:1`, `whatif:2`… in the order given.

A catchment limits the service to the people of some areas: ICB (E54…), local authority (E06–E09…) or small
area (LSOA 2021, E01…) codes. The analysis honours it exactly, small area by small area: the service is the
nearest only for small areas inside its catchment (people elsewhere keep the nearest they had); it is the
nearest provider to an area's population centre only for areas its catchment holds whole; it still counts in
the area it stands in. A catchment of a radius is not offered: the analysis's unit is the small area, and a
radius would cut through them.

Read with the directory's coverage, a type whose figures in the area are unknown (none there, and rehabmap holds
no such data there or candidates await review: `rehabmap.gaps.coverage`) has no "before" figure but the reason:
"0 → 1 services" would present a guess as the count now. What the scenario gives is "after" (with the reason
again where it is still unknown). England's figures of a type whose data are held for part of England only are
not national facts either (`coverage.national_figure_unknown`): a change the scenario makes to them is listed as
"no data" on both sides, with why, never "England mean_km 56.6 → 56.5".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import re

import numpy as np

from geodata.england import ENGLAND
from geodata.errors import UnknownArea
from rehabmap.coverage import CoverageMap
from rehabmap.errors import InvalidValue, blank, shorten
from rehabmap.gaps.analysis import GapAnalysis, LevelIndicators, ServiceAt, ServicePoints
from rehabmap.gaps.categories import Category, parse_category
from rehabmap.gaps.coverage import unknown_reason
from rehabmap.gaps.indicators import INDICATORS, indicator_value
from rehabmap.gaps.options import ADDITION_FORMAT, GapOptions
from rehabmap.gaps.population import SmallAreas
from rehabmap.record import Provenance, Service

_CODES = re.compile(r"[\s+,]+")
MAX_CHANGES = 20


@dataclass(frozen=True)
class Addition:
    """A hypothetical service as asked for: a type (or subtype), where, and its beds if stated."""

    category: Category
    postcode: str
    beds: int | None = None
    catchment: tuple[str, ...] = ()  # area codes; none: it serves everyone

    @classmethod
    def parse(cls, text: str) -> Addition:
        parts = [part.strip() for part in text.split("@")]
        if len(parts) not in (2, 3, 4) or not all(parts):
            raise InvalidValue(f"Cannot read the service to add '{shorten(text)}'. Write {ADDITION_FORMAT}.",
                               field="add")
        extras = parts[2:]
        beds: int | None = int(extras.pop(0)) if extras and extras[0].isdigit() else None
        catchment: tuple[str, ...] = ()
        if extras and extras[0][:1].upper() == "E":
            catchment = tuple(dict.fromkeys(c.upper() for c in _CODES.split(extras.pop(0)) if c))
        if extras:
            raise InvalidValue(f"Beds must be a count, like 12 (got '{shorten(extras[0])}') in '{shorten(text)}'; "
                               "a catchment is area codes joined by '+'.", field="add")
        return cls(parse_category(parts[0]), parts[1], beds, catchment)

    def spec(self) -> str:
        return "@".join([self.category.key, self.postcode] + ([str(self.beds)] if self.beds is not None else [])
                        + (["+".join(self.catchment)] if self.catchment else []))

    def served(self, small_areas: SmallAreas) -> np.ndarray | None:
        """The small areas the catchment serves, as a mask (None: no catchment, everyone)."""
        if not self.catchment:
            return None
        mask = np.zeros(len(small_areas), dtype=bool)
        lsoas = {str(code): i for i, code in enumerate(small_areas.codes)}
        for code in self.catchment:
            if code in lsoas:
                mask[lsoas[code]] = True
                continue
            try:
                if small_areas.level_of(code) == "england":
                    mask[:] = True
                else:
                    mask[small_areas.members(code)] = True
            except UnknownArea:
                raise InvalidValue(f"The catchment code '{shorten(code)}' is not an English ICB (E54…), local "
                                   "authority (E06–E09…), county council (E10…) or small area (E01…).",
                                   field="add") from None
        return mask


@dataclass(frozen=True)
class Scenario:
    """Services to add and service ids to remove; empty means the directory as it is."""

    additions: tuple[Addition, ...] = ()
    removals: tuple[str, ...] = ()

    @classmethod
    def from_input(cls, add: Iterable[str] | None = None, remove: Iterable[str] | None = None) -> Scenario:
        """Every face reads a scenario this way: repeated (or semicolon-separated) additions and removals."""
        additions = tuple(map(Addition.parse, _given(add, "add", "addition", "service to add",
                                                     f"Write {ADDITION_FORMAT}")))
        removals = tuple(dict.fromkeys(_given(remove, "remove", "service id", "service",
                                              "Give the id of an active service to leave out")))
        if len(additions) + len(removals) > MAX_CHANGES:
            raise InvalidValue(f"A scenario takes at most {MAX_CHANGES} changes (got "
                               f"{len(additions) + len(removals)}).", field="add")
        return cls(additions, removals)

    def __bool__(self) -> bool:
        return bool(self.additions or self.removals)

    def params(self) -> list[tuple[str, str]]:
        """As query parameters (`add`, `remove`), for links that keep the scenario."""
        return [("add", a.spec()) for a in self.additions] + [("remove", r) for r in self.removals]

    def apply(self, analysis: GapAnalysis, geography: Any) -> Applied:
        """The analysis with the scenario's changes: a new object; `analysis` and everything it was read
        from stay as they were. `geography` (geodata's Geography) places the postcodes; an unknown postcode
        raises geodata's own error, an id that is not an active service an InvalidValue."""
        points = analysis.points
        removed = np.zeros(len(points), dtype=bool)
        for service_id in self.removals:
            found = points.ids == service_id
            if not found.any():
                raise InvalidValue(f"No active service has the id '{shorten(service_id)}', so it cannot be "
                                   "removed.", field="remove")
            removed |= found
        services = [self._service(n, addition, geography) for n, addition in enumerate(self.additions, 1)]
        served = [addition.served(analysis.small_areas) for addition in self.additions]
        after = analysis.with_changes(removed, ServicePoints.from_services(services), served)
        return Applied(after, [after.points.describe(len(after.points) - len(services) + i)
                               for i in range(len(services))],
                       [points.describe(int(row)) for row in np.flatnonzero(removed)], self)

    @staticmethod
    def _service(n: int, addition: Addition, geography: Any) -> Service:
        home = geography.resolve(postcode=addition.postcode)
        category = addition.category
        return Service(id=f"whatif:{n}", name=f"Hypothetical {category.label.lower()} ({home.label})",
                       service_type=category.service_type, subtype=category.subtype, lat=home.lat,
                       lon=home.lon, areas=home.areas, postcode=home.label, beds=addition.beds,
                       provenance=[Provenance(source="whatif", source_id=str(n), fetched_at=datetime.now(UTC))])


def _given(values: Iterable[str] | None, field: str, what: str, names: str, then: str) -> list[str]:
    """Each value's parts between semicolons, their ends trimmed. A blank one is refused, named as blank as a blank
    type is (`taxonomy.unknown_type`): before, `add=` or `remove=` (or a semicolon with nothing beside it) was read as
    nothing asked, a 200 answering a scenario other than the one sent."""
    parts: list[str] = []
    for value in values or ():
        split = [part.strip() for part in value.split(";")]
        if not all(split):
            said = blank(what, names) if len(split) == 1 else (f"'{shorten(value)}' has a blank {what} beside a "
                                                               f"semicolon, which names no {names}")
            raise InvalidValue(f"{said}. {then}.", field=field)
        parts += split
    return parts


@dataclass(frozen=True)
class Applied:
    """A scenario applied: the analysis as it would be, and the services it adds and removes."""

    analysis: GapAnalysis
    added: list[ServiceAt]
    removed: list[ServiceAt]
    scenario: Scenario


# --- what changes ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One indicator of one type that the scenario changes, in the area or in England."""

    scope: Literal["area", "england"]
    area_code: str
    category: str
    label: str
    indicator: str
    before: float | int | None
    after: float | int | None
    # Read with coverage: why the type's figures there are unknown before (after) the change, if they are; the
    # figure is then None.
    before_no_data: str | None = None
    after_no_data: str | None = None


@dataclass(frozen=True)
class WhatIf:
    """The scenario, its analysis, and every indicator it changes for the area and for England (as the API
    and the exports round them; unchanged ones are left out)."""

    applied: Applied
    area_code: str
    changes: list[Change]

    @property
    def analysis(self) -> GapAnalysis:
        return self.applied.analysis

    def no_data(self) -> list[tuple[str, str]]:
        """Each type (its label) with a figure unknown before or after, and why, once: the note under the
        changes."""
        return list(dict.fromkeys((c.label, reason) for c in self.changes
                                  for reason in (c.before_no_data, c.after_no_data) if reason))


def what_if(analysis: GapAnalysis, code: str, scenario: Scenario, geography: Any,
            options: GapOptions | None = None, categories: tuple[Category, ...] | None = None,
            coverage: CoverageMap | None = None) -> WhatIf:
    """Apply `scenario` and list every indicator of `categories` (default all) that changes in the area
    `code` and in England; with `coverage`, a figure that is not a fact on either side is none, with why."""
    options = options or GapOptions()
    key = code.strip().upper()
    level = analysis.small_areas.level_of(key)
    applied = scenario.apply(analysis, geography)
    cats = tuple(categories) if categories else analysis.categories
    changes: list[Change] = []
    scopes: list[tuple[Literal["area", "england"], str, str]] = [("england", "england", ENGLAND)]
    if level != "england":
        scopes.insert(0, ("area", level, key))
    for scope, scope_level, scope_code in scopes:
        before = analysis.indicators(scope_level, options, cats)
        after = applied.analysis.indicators(scope_level, options, cats)
        changes += _changes(scope, scope_code, before, after, coverage)
    return WhatIf(applied, key, changes)


def _changes(scope: Literal["area", "england"], code: str, before: LevelIndicators, after: LevelIndicators,
             coverage: CoverageMap | None) -> list[Change]:
    g = before.codes.tolist().index(code)
    out = []
    for j, category in enumerate(before.categories):
        was, now = (None if coverage is None else
                    unknown_reason(coverage, code, category.key, bool(ind.values["count"][j, g] > 0))
                    for ind in (before, after))
        for name in INDICATORS:
            made = indicator_value(name, before.values[name][j, g]), indicator_value(name, after.values[name][j, g])
            old, new = None if was else made[0], None if now else made[1]
            if old != new or made[0] != made[1]:  # a change the scenario makes is told even where it is no data
                out.append(Change(scope, code, category.key, category.label, name, old, new, was, now))
    return out
