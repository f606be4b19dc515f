"""Point → ICB, sub-ICB, local authority and region, by point-in-polygon on the built boundary files.

Trees are built on geometries whose longitudes are multiplied by cos(52.5°), so that across England one
unit is close to the same distance east-west as north-south: the nearest-polygon fallback for points
just off super-generalised coasts then picks the truly nearest polygon. Containment is unaffected (the
scaling is affine).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geodata.cells import NO_CELL, WholeCells
from geodata.distance import KM_PER_DEGREE, haversine_km_pairs
from geodata.errors import InvalidCoordinates, OutsideEngland, UnknownArea
from geodata.layout import AREA_LEVELS, AreaLevel
from geodata.shapes import read_boundaries

# Super-generalised boundaries cut corners off coasts and estuaries; points this close still belong.
NEAREST_WITHIN_KM = 5.0

_X_SCALE = math.cos(math.radians(52.5))
# Across 50 to 56°N the scaled x unit is within ±12% of a latitude degree; search a little wider and let
# the exact great-circle check decide.
_SEARCH_RADIUS = NEAREST_WITHIN_KM / KM_PER_DEGREE * 1.2
_MADE_AT_MOST = 65_536  # `AreaIndex.locate`'s AreaCodes kept, by their areas' positions


# The first letter of another nation's ONS codes (W06… a Welsh local authority, S12… a Scottish council area,
# N09… a Northern Irish district): such a code is told as that nation's, since rehabmap covers England only.
_NATION_CODE = re.compile(r"([WSN])\d{8}")
_NATIONS = {"W": "Wales", "S": "Scotland", "N": "Northern Ireland"}


def another_nations_code(code: str) -> str | None:
    """The first words for another nation's ONS code, to which each face that looks areas up adds the kinds of
    English code it takes; None for any other code."""
    nation = _NATION_CODE.fullmatch(code.strip().upper())
    if nation is None:
        return None
    return f"'{code}' is the ONS code of an area in {_NATIONS[nation[1]]}. rehabmap covers England only"


# England's ONS codes of a kind no face here looks areas up by, each named as what it is: a small area's code, or a
# grouping of local authorities, read "No ICB … has the code", as a typo would.
_OTHER_KINDS = {"E01": "a lower layer super output area's code (LSOA, E01…, one small area of about 1,500 people)",
                "E02": "a middle layer super output area's code (MSOA, E02…, a small area of about 8,000 people)",
                "E11": "a metropolitan county's code (E11…, which has no county council: its metropolitan boroughs "
                       "are local authorities, E08…)",
                "E13": "Inner or Outer London's code (E13…, a grouping of London boroughs: each borough is a local "
                       "authority, E09…)"}
_ENGLISH_CODE = re.compile(r"E\d{8}")


def other_kind_of_code(code: str) -> str | None:
    """What an English ONS code of a kind no face looks areas up by is, in words ("a lower layer super output area's
    code (LSOA, …)"), to which each face adds the kinds it takes; None for any other code."""
    key = code.strip().upper()
    return _OTHER_KINDS.get(key[:3]) if _ENGLISH_CODE.fullmatch(key) else None


_AREAS_TAKEN = ("an ICB (E54…), a sub-ICB location (E38…), a local authority (E06–E09…), a county council (E10…) or "
                "a region (E12…)")


def _unknown_code(code: str) -> str:
    nation, kind = another_nations_code(code), other_kind_of_code(code)
    if nation:
        return f"{nation}: an area here is {_AREAS_TAKEN}."
    if kind:
        return f"'{code}' is {kind}; an area here is {_AREAS_TAKEN}."
    return f"No ICB, sub-ICB, local authority, county council or region has the code '{code}'."


@dataclass(frozen=True)
class AreaCodes:
    icb_code: str | None = None
    icb_name: str | None = None
    sub_icb_code: str | None = None
    sub_icb_name: str | None = None
    lad_code: str | None = None
    lad_name: str | None = None
    region_code: str | None = None
    region_name: str | None = None
    # The county council (E10…) of a district that has one: a service may serve the county (IMHA, IMCA and Care Act
    # advocacy are commissioned by it), so a home is in its catchment through its district's county.
    county_code: str | None = None
    county_name: str | None = None

    def codes(self) -> tuple[str, ...]:
        return tuple(
            code
            for code in (self.icb_code, self.sub_icb_code, self.lad_code, self.region_code, self.county_code)
            if code is not None
        )


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    level: AreaLevel
    geometry: BaseGeometry


def outside_england() -> OutsideEngland:
    """The error for a point in no English NHS area (nor within 5 km of one)."""
    return OutsideEngland(
        "That location is outside England (more than "
        f"{NEAREST_WITHIN_KM:g} km from any English NHS area). rehabmap covers England only.",
        field="location",
    )


def check_coordinates(lat: float, lon: float) -> tuple[float, float]:
    """Reject what cannot be a WGS84 point before it reaches geometry code."""
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        raise InvalidCoordinates("Latitude and longitude must be numbers.", field="lat") from None
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidCoordinates("Latitude must be a number between -90 and 90.", field="lat")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidCoordinates("Longitude must be a number between -180 and 180.", field="lon")
    return lat, lon


class _LevelIndex:
    """The polygons of one level and the tree over their scaled copies."""

    def __init__(self, areas: list[Area]) -> None:
        self.areas = areas
        self.codes = np.array([area.code for area in areas] + [None], dtype=object)
        self.names = np.array([area.name for area in areas] + [None], dtype=object)
        # The same, as plain tuples for one point: reading object arrays item by item cost a request ~2 µs
        # each with cold caches.
        self.labels: list[tuple[str | None, str | None]] = [(a.code, a.name) for a in areas] + [(None, None)]
        self.position = {area.code: i for i, area in enumerate(areas)}
        self._scaled = np.array([_scale(area.geometry) for area in areas], dtype=object)
        shapely.prepare(self._scaled)
        # A prepared polygon builds its point-in-area index lazily, and that first build is not
        # thread-safe; testing one point inside each envelope now builds them all before the API's
        # threads share them.
        centres = shapely.get_coordinates(shapely.centroid(self._scaled))
        shapely.intersects_xy(self._scaled, centres[:, 0], centres[:, 1])
        self._tree = shapely.STRtree(self._scaled)
        self._bounds = shapely.bounds(self._scaled).T.copy()  # minx, miny, maxx, maxy rows

    @functools.cached_property
    def _cells(self) -> WholeCells:
        """Made on the first single point, not at load: a batch (the import's `locate_all`) never reads it and
        would pay its build (~0.05–0.07 s of CPU and ~4 MB a level). The server's warm-up locates a home before
        the first request (`app.warmup`), so no request pays it either. It is made from the boundaries alone,
        whichever point asks first."""
        return WholeCells(self._scaled, self._first_holding)

    def match_one(self, x: float, lat: float) -> int:
        """What `match` gives for one scaled point, without the array work a batch needs: a request locates
        one home, most often in a cell that settles it (`WholeCells`: arithmetic and one array read), else
        ~25 µs a level here against ~60 through `match`."""
        at = self._cells.at(x, lat)
        if at != NO_CELL:
            return at
        # The envelopes from arrays rather than the tree: for a few hundred polygons that is quicker than
        # making a shapely point to query with. Either way the exact test below decides.
        minx, miny, maxx, maxy = self._bounds
        candidates = np.flatnonzero((minx <= x) & (x <= maxx) & (miny <= lat) & (lat <= maxy))
        inside = candidates[shapely.intersects_xy(self._scaled[candidates], x, lat)]
        if inside.size:
            return int(inside[0])  # on a shared edge the lower index wins, as in `match`
        # Off a generalised coast, or outside England: the nearest-polygon fallback of the batch path.
        xs, lats = np.array([x]), np.array([lat])
        return int(self.match(np.asarray(shapely.points(xs, lats)), xs, lats)[0])

    def match(self, points: np.ndarray, xs: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Per scaled point, the polygon holding it (or the nearest within 5 km); len(areas) if none."""
        found = self._holding(points, xs, lats)
        missing = np.flatnonzero((found == len(self.areas)) & np.isfinite(xs) & np.isfinite(lats))
        if missing.size:
            near_point, near_area = self._tree.query_nearest(
                points[missing], max_distance=_SEARCH_RADIUS, all_matches=False
            )
            if near_point.size:
                lines = shapely.shortest_line(points[missing][near_point], self._scaled[near_area])
                ends = shapely.get_coordinates(lines).reshape(-1, 2, 2)
                km = haversine_km_pairs(
                    ends[:, 0, 1], ends[:, 0, 0] / _X_SCALE, ends[:, 1, 1], ends[:, 1, 0] / _X_SCALE
                )
                close = km <= NEAREST_WITHIN_KM
                found[missing[near_point[close]]] = near_area[close]
        return found

    def _holding(self, points: np.ndarray, xs: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Per scaled point, the first polygon holding it; len(areas) if none."""
        found = np.full(len(points), len(self.areas), dtype=np.int64)
        # Boxes from the tree, then the exact test on the prepared polygons: the tree's own predicate
        # prepares the query points rather than the polygons and is ~50 times slower for this.
        point_idx, area_idx = self._tree.query(points)
        inside = shapely.intersects_xy(self._scaled[area_idx], xs[point_idx], lats[point_idx])
        point_idx, area_idx = point_idx[inside], area_idx[inside]
        if point_idx.size:
            # A point on a shared edge touches two polygons: the lower index wins, the same every time.
            order = np.lexsort((area_idx, point_idx))
            first_points, first = np.unique(point_idx[order], return_index=True)
            found[first_points] = area_idx[order][first]
        return found

    def _first_holding(self, xs: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """`WholeCells`' rule: per scaled point, the first polygon holding it, or -1 (no nearest fallback)."""
        found = self._holding(np.asarray(shapely.points(xs, lats)), xs, lats)
        return np.where(found == len(self.areas), NO_CELL, found)


class _ManyPoints:
    """The points `AreaIndex._positions` places, scaled once; each level's polygon test made for the points
    a rule leaves open."""

    def __init__(self, lats: np.ndarray, lons: np.ndarray) -> None:
        self._points, self._xs, self._lats = _scaled_points(lats, lons)

    def polygon(self, level: _LevelIndex) -> np.ndarray:
        return level.match(self._points, self._xs, self._lats)

    def unless(self, given: np.ndarray, level: _LevelIndex) -> np.ndarray:
        """`given` where it is a position (≥ 0), else the level's polygon (tested for those points only)."""
        open_ = np.flatnonzero(given < 0)
        if not open_.size:
            return given
        found = given.copy()
        found[open_] = level.match(self._points[open_], self._xs[open_], self._lats[open_])
        return found


def _coordinates(lats: Sequence[float] | np.ndarray,
                 lons: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Many points' latitudes and longitudes as flat float arrays, refused unless they pair up."""
    lats, lons = np.asarray(lats, dtype=float).ravel(), np.asarray(lons, dtype=float).ravel()
    if lats.shape != lons.shape:
        raise InvalidCoordinates("Give as many longitudes as latitudes.", field="lon")
    return lats, lons


def _scaled_points(lats: np.ndarray, lons: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = lons * _X_SCALE
    # Arrays in, an array of points out (the stubs also allow scalars, which give one Point); asarray
    # returns that array itself.
    return np.asarray(shapely.points(xs, lats)), xs, lats


def _scale(geometry: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geometry, lambda coords: coords * (_X_SCALE, 1.0))


class AreaIndex:
    """All four levels of English areas.

    The local authority decides the region (via the ONS LAD→region lookup written into the LAD file at
    build time), so a point's LAD and region always agree; region polygons only answer for points whose
    LAD has no region in the lookup.
    """

    def __init__(self, areas: dict[AreaLevel, list[Area]], lad_regions: dict[str, str],
                 lad_counties: dict[str, tuple[str, str]] | None = None) -> None:
        self._levels = {level: _LevelIndex(areas[level]) for level in AREA_LEVELS}
        self._ordered = tuple(self._levels[level] for level in AREA_LEVELS)  # icb, sub-ICB, LAD, region
        self._by_code = {area.code: area for level in AREA_LEVELS for area in areas[level]}
        lad_index = self._levels["lad"]
        region_position = {area.code: i for i, area in enumerate(self._levels["region"].areas)}
        # For each LAD position (plus the 'none' slot), the position of its region; -1 when unmapped: an array
        # for many points, a list for one (a NumPy item read costs a point more).
        self._lad_region_position = np.array(
            [region_position.get(lad_regions.get(area.code, ""), -1) for area in lad_index.areas] + [-1],
            dtype=np.int64,
        )
        self._lad_region_of: list[int] = self._lad_region_position.tolist()
        # For each LAD position (and the 'none' slot), its county council's code and name, or two Nones.
        no_county: tuple[str | None, str | None] = (None, None)
        counties: dict[str, tuple[str | None, str | None]] = dict(lad_counties or {})
        self._lad_county = [counties.get(area.code, no_county) for area in lad_index.areas] + [no_county]
        self._unions: dict[tuple[str, ...], BaseGeometry] = {}
        # `locate`'s answers by the positions of their four areas: a frozen AreaCodes of ten fields cost ~13k
        # instructions to make (`object.__setattr__` a field), a third of a home's areas in a `POST /match`
        # (bench/RESULTS.md). Only combinations some point falls in occur (a few thousand in England at most);
        # `_MADE_AT_MOST` bounds it whatever the boundaries. Area codes and names only: nothing of a person.
        self._made: dict[tuple[int, int, int, int], AreaCodes] = {}

    @classmethod
    def load(cls, geodata_dir: Path) -> AreaIndex:
        areas: dict[AreaLevel, list[Area]] = {}
        lad_regions: dict[str, str] = {}
        lad_counties: dict[str, tuple[str, str]] = {}
        for level in AREA_LEVELS:
            properties, geometries = read_boundaries(geodata_dir, level)
            areas[level] = [Area(feature["code"], feature["name"], level, geometry)
                            for feature, geometry in zip(properties, geometries, strict=True)]
            if level == "lad":
                lad_regions = {feature["code"]: feature["region"] for feature in properties if feature.get("region")}
                lad_counties = {feature["code"]: (feature["county"], feature["county_name"]) for feature in properties
                                if feature.get("county")}
        return cls(areas, lad_regions, lad_counties)

    def locate(self, lat: float, lon: float, lad_code: str | None = None) -> AreaCodes:
        """Areas of one point; `lad_code` (from the postcode directory) beats the generalised LAD polygons."""
        lat, lon = check_coordinates(lat, lon)
        x = lon * _X_SCALE
        icb, sub_icb, lad, region = self._ordered
        icb_at = icb.match_one(x, lat)
        if icb_at == len(icb.areas):
            raise outside_england()
        sub_icb_at = sub_icb.match_one(x, lat)
        # `_positions`' rules, for one point in scalars: through that helper (an object for the point, a call
        # a level) a home cost ~6 µs more of CPU with a request's cold caches (bench/RESULTS.md, "POST /match,
        # ninth pass"). The polygon tests a rule overrides are skipped here too.
        lad_at = self._directory_lad(lad_code)
        if lad_at < 0:
            lad_at = lad.match_one(x, lat)
        region_at = self._lad_region_of[lad_at]
        if region_at < 0:
            region_at = region.match_one(x, lat)
        key = (icb_at, sub_icb_at, lad_at, region_at)
        made = self._made.get(key)
        if made is None:
            made = AreaCodes(*icb.labels[icb_at], *sub_icb.labels[sub_icb_at], *lad.labels[lad_at],
                             *region.labels[region_at], *self._lad_county[lad_at])
            if len(self._made) < _MADE_AT_MOST:
                self._made[key] = made
        return made

    def locate_all(
        self, lats: Sequence[float] | np.ndarray, lons: Sequence[float] | np.ndarray,
        lad_codes: Sequence[str | None] | None = None,
    ) -> list[AreaCodes | None]:
        """What `locate` gives for each point, in one vectorised pass; None where `locate` would raise
        OutsideEngland (including points that are not numbers). The caller checks the coordinates."""
        lats, lons = _coordinates(lats, lons)
        if not lats.size:
            return []
        given = None
        if lad_codes is not None:
            if len(lad_codes) != len(lats):
                raise InvalidCoordinates("Give as many LAD codes as points.", field="lad_code")
            given = np.array([self._directory_lad(code) for code in lad_codes], dtype=np.int64)
        icb, sub_icb, lad, regions = self._ordered
        found = self._positions(_ManyPoints(lats, lons), given)
        # One AreaCodes per combination of areas, shared by the points in it (it is frozen): the import's
        # chunk of 2,000 points falls in ~300, and making one was ~13k instructions (a frozen dataclass sets
        # its eight fields through `object.__setattr__`), a third of placing a row.
        combination = found[0]
        for index, at in zip(self._ordered[1:], found[1:]):
            combination = combination * (len(index.areas) + 1) + at
        _distinct, first, of_point = np.unique(combination, return_index=True, return_inverse=True)
        made = [AreaCodes(*icb.labels[a], *sub_icb.labels[b], *lad.labels[c], *regions.labels[d],
                          *self._lad_county[c]) if a != len(icb.areas) else None
                for a, b, c, d in zip(*(at[first].tolist() for at in found))]
        return list(map(made.__getitem__, of_point.tolist()))

    def locate_many(self, lats: np.ndarray, lons: np.ndarray) -> dict[AreaLevel, np.ndarray]:
        """Codes per level for many points: object arrays, None where a point is in no area of that level
        (nor within 5 km of one), including points that are not numbers."""
        lats, lons = _coordinates(lats, lons)
        found = self._positions(_ManyPoints(lats, lons), None)
        return {level: index.codes[at] for level, index, at in zip(AREA_LEVELS, self._ordered, found)}

    def _directory_lad(self, code: str | None) -> int:
        """The position of the postcode directory's LAD, or -1: a code the boundaries do not know (a newer
        vintage) falls back to the polygon answer."""
        return self._levels["lad"].position.get(code, -1) if isinstance(code, str) else -1

    def _positions(self, points: _ManyPoints, directory_lad: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """The positions of the four levels, by the rules `locate` applies to one point: each level's polygon
        (or the nearest within 5 km), except that the directory's LAD beats the LAD polygons and the LAD's
        region (the ONS lookup) beats the region polygons. A level's polygon test is made only for the points
        a rule leaves open."""
        icb, sub_icb, lad, region = self._ordered
        lad_at = points.polygon(lad) if directory_lad is None else points.unless(directory_lad, lad)
        return (points.polygon(icb), points.polygon(sub_icb), lad_at,
                points.unless(self._lad_region_position[lad_at], region))

    def get(self, code: str) -> Area:
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownArea(_unknown_code(code), field="area") from None

    def union(self, codes: Iterable[str]) -> BaseGeometry:
        """The outline of several areas together (a county council's, of its districts: the boundaries hold no
        counties), made once a process: the county level's GeoJSON made all 21 again on every request (~60 ms of
        CPU of its ~130), and the maps at each new index generation."""
        key = tuple(codes)
        found = self._unions.get(key)
        if found is None:
            found = self._unions[key] = shapely.union_all([self.get(code).geometry for code in key])
        return found

    def areas(self, level: AreaLevel) -> list[Area]:
        if level not in self._levels:
            raise UnknownArea(
                f"'{level}' is not an area level; use one of {', '.join(AREA_LEVELS)}.", field="level"
            )
        return list(self._levels[level].areas)

    def level_of(self, code: str) -> AreaLevel:
        return self.get(code).level
