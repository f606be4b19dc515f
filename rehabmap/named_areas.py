"""An ONS area by its code, as rehabmap names and draws it, at every level it answers for: the geography's own
(ICB, sub-ICB location, local authority district, region), and a county council, which the boundaries do not hold.
A county's name is the small-area table's, its outline its districts' (`SmallAreas.drawn_districts`), and a
service is located in it when it is located in one of its districts.

Before, a county council was an unknown code wherever only the geography was asked: `GET /areas/E10000003` said
"No ICB, sub-ICB, local authority or region has the code 'E10000003'", and a county's advocacy service (a curated
table's `utla_code`) "served people living in E10000003"; the gap analysis alone knew counties.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from shapely.geometry.base import BaseGeometry

from geodata.errors import GeodataError, UnknownArea
from geodata.geography import Geography
from geodata.layout import AreaLevel
from rehabmap.gaps.population import SmallAreas

COUNTY: Literal["county"] = "county"


@dataclass(frozen=True)
class NamedArea:
    code: str
    name: str
    level: AreaLevel | Literal["county"]
    located_codes: frozenset[str]    # a service located in the area carries one of these: its own, or its districts'
    outline: Callable[[], BaseGeometry] = field(repr=False, compare=False)

    @cached_property
    def geometry(self) -> BaseGeometry:
        """The area's outline, made when first asked: a county's is the union of its districts' (~2-3 ms the first
        time a process draws it), which naming the county does not need."""
        return self.outline()


def named_area(geography: Geography, small_areas: Callable[[], SmallAreas], code: str) -> NamedArea:
    """The area of `code` (any case, spaces around it ignored); UnknownArea, the geography's own error, for a code
    that is neither the geography's nor a county council's whose districts the boundaries hold (so its outline can
    be drawn). `small_areas` is asked only for a code the geography does not know (its first load is ~0.3 s)."""
    key = code.strip().upper()
    try:
        area = geography.areas.get(key)
    except UnknownArea as unknown:
        table = small_areas()
        districts = table.drawn_districts(geography.areas, key)
        if districts is None:
            raise unknown
        return NamedArea(key, table.area_name(key), COUNTY, frozenset(districts),
                         lambda: geography.areas.union(districts))
    return NamedArea(area.code, area.name, area.level, frozenset({area.code}), lambda: area.geometry)


def area_name(geography: Geography, small_areas: Callable[[], SmallAreas], code: str) -> str:
    """An area as a person reads it (`named_area`), and its code where no area has it."""
    try:
        return named_area(geography, small_areas, code).name
    except GeodataError:
        return code
