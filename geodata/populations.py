"""A GeoNames town's population, checked against the people who live around its point.

GeoNames sometimes files a town's population under a namesake far off: Loughton, Essex's 33,346 people under the
hamlet of Loughton in Shropshire, Ryton, Gateshead's 16,093 under Ryton, Shropshire, Watton, Norfolk's under
Watton, East Yorkshire; and a former district can sit on a moor with its whole population (High Peak, 92,666). A
population decides which place of a name is taken without asking (`geodata.places.DOMINANT_RATIO`), so the hamlet
took the town's searches: 'Loughton' searched from Shropshire, shown as the place searched from. A stated population
the small areas around the point cannot hold is not that place's: the build counts it as unknown, as GeoNames
writes an unknown one (0), and lists it in the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geodata.distance import haversine_km, radius_box
from geodata.downloads import NamedPlace, SmallArea

# A town is checked when it is big enough to be told apart from how small areas happen to fall around a village
# (a rural small area of 1,500 people can have its centre kilometres from the village)...
CHECKED_FROM = 5_000
# ... against the people of the small areas whose centres lie within its reach: the radius of a town of its size
# at urban density, plus this margin (a rural small area's centre can lie kilometres from the town's point) ...
REACH_KM = 3.0
URBAN_DENSITY_PER_KM2 = 4_000.0
# ... and is not that place's when it is more than this many times those people. Measured on the 1,563 English
# towns of 5,000 or more in cities500: each is below 1.9 times but for the nine conflated or misplaced, from 2.9
# (Fylde, a district's whole population at one point) to 33,346 (Loughton: no one within reach).
SUPPORT_RATIO = 2.0


@dataclass(frozen=True)
class Unsupported:
    town: NamedPlace
    people_within_reach: int
    reach_km: float

    def describe(self) -> str:
        return (f"{self.town.name} ({self.town.lat}, {self.town.lon}): {self.town.population:,} stated, "
                f"{self.people_within_reach:,} live within {self.reach_km:.1f} km")


def unsupported(towns: Sequence[NamedPlace], small_areas: Sequence[SmallArea]) -> list[Unsupported]:
    """The towns whose stated population the small areas within their reach cannot hold, in the towns' order."""
    order = np.argsort([area.lat for area in small_areas], kind="stable")
    lats = np.array([small_areas[i].lat for i in order])
    lons = np.array([small_areas[i].lon for i in order])
    people = np.array([small_areas[i].population for i in order])
    found = []
    for town in towns:
        if town.population < CHECKED_FROM:
            continue
        reach = REACH_KM + math.sqrt(town.population / (URBAN_DENSITY_PER_KM2 * math.pi))
        box = radius_box(town.lat, town.lon, reach)
        south, north = (box[0], box[1]) if box else (-90.0, 90.0)
        band = slice(np.searchsorted(lats, south, "left"), np.searchsorted(lats, north, "right"))
        within = int(people[band][haversine_km(town.lat, town.lon, lats[band], lons[band]) <= reach].sum())
        if town.population > SUPPORT_RATIO * within:
            found.append(Unsupported(town, within, reach))
    return found
