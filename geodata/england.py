"""England's ONS code, named once for every layer: a national source (CQC) covers it, a review count is kept
for it beside each local area, and the gaps pages and exports take it as the whole country. And its extent in
degrees, where a service's point and its catchment must lie."""

from __future__ import annotations

from typing import NamedTuple

ENGLAND = "E92000001"


class Extent(NamedTuple):
    """A box in WGS 84 degrees (longitude west to east, latitude south to north)."""

    west: float
    south: float
    east: float
    north: float

    def holds(self, bounds: tuple[float, float, float, float]) -> bool:
        """Whether `bounds` (min x, min y, max x, max y, as shapely gives them) lie inside the box."""
        west, south, east, north = bounds
        return self.west <= west and east <= self.east and self.south <= south and north <= self.north


# England's land reaches -6.38..1.76 across and 49.88..55.81 up (the ICB boundaries: the Isles of Scilly to Lowestoft,
# the Lizard to the Scottish border); a service's point must lie in this, a little more.
ENGLAND_EXTENT = Extent(west=-6.5, south=49.8, east=2.0, north=55.9)
# The British Isles, where a catchment may reach: a service in England may take people from across a border, or from
# all of the United Kingdom (a national specialist service: Shetland lies at 60.9 N, Fermanagh at 8.2 W). Latitudes
# and longitudes written the other way round (England's 49.9..55.8 as longitudes) lie far outside it.
BRITISH_ISLES_EXTENT = Extent(west=-11.0, south=49.0, east=2.5, north=61.0)
