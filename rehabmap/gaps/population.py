"""Small areas (LSOA 2021): their population, population-weighted centroids and boundaries, loaded once.

The source is `smallareas/england_lsoa21_pwc_population_icb_lad.csv` in the data folder: every English
LSOA with the ONS population-weighted centroid (2021), its ICB, sub-ICB and local authority (2024 codes)
and Census 2021 usual residents by age band. Gap indicators weight by the **adult population, defined as
everyone aged 16 and over** (`pop_total_c2021 - pop_15_under`): the census bands split at 15/16, so 16+
is the nearest adult population the file gives.

Areas are grouped by code, not by polygon: an LSOA belongs to the ICB, local authority and upper-tier authority
(a county council, or the unitary authority itself) the official ONS lookup says (the same ICB and district codes
the built geodata boundaries carry; they hold no counties). The simplified LSOA polygons
(`boundaries/lsoa21_simplified.geojson`) are read only to draw maps and export shapes.
"""

from __future__ import annotations

import re

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geodata.england import ENGLAND
from geodata.areas import another_nations_code, other_kind_of_code
from geodata.counties import SHORT_FORMS
from geodata.errors import UnknownArea
from rehabmap.small_areas import in_data, small_area_columns, small_area_file
from rehabmap.errors import DataFileMissing, InvalidValue

LSOA_BOUNDARIES_FILE = Path("boundaries") / "lsoa21_simplified.geojson"
ENGLAND_NAME = "England"

GapLevel = Literal["icb", "la", "county"]
GAP_LEVELS: tuple[GapLevel, ...] = ("icb", "la", "county")
LEVEL_LABELS: dict[str, str] = {"icb": "integrated care board", "la": "local authority", "county": "county council",
                                "england": "country"}
# Their plurals, written out: an "s" added made "All local authoritys" (`rehabmap gaps la`).
LEVEL_PLURALS: dict[str, str] = {"icb": "integrated care boards", "la": "local authorities",
                                 "county": "county councils"}
_CODES_TOLD = ("an ICB code (E54…), a local authority code (E06…, E07…, E08…, E09…) or a county council's "
               "(E10…)")
# England's other areas a person may hold a code of, told apart from a typo (a region read as "a sub-ICB or region
# code", which said neither what it was nor what it is).
_OTHER_AREAS = {"E38": "a sub-ICB location's code (E38…, a part of an ICB: give its ICB's code)",
                "E12": "a region's code (E12…, one of England's nine regions, larger than any ICB)",
                "E40": "an NHS England region's code (E40…, one of its seven regions, larger than any ICB)"}
_LEVELS_TOLD = "ICB (E54…), local authority (E06…, E07…, E08…, E09…) or county council (E10…)"
_LEVEL_ALIASES: dict[str, GapLevel] = {"icb": "icb", "la": "la", "lad": "la", "ltla": "la", "local_authority": "la",
                                       "county": "county", "utla": "county", "county_council": "county"}


def names_england(text: str) -> bool:
    """Whether an area typed names England (its code or its name, any case): what `SmallAreas.find` gives England
    for, and what the command line tells apart before it loads anything."""
    key = (text or "").strip()
    return key.upper() == ENGLAND or key.lower() == ENGLAND_NAME.lower()


def parse_level(value: str) -> GapLevel:
    """`icb`, `la` (local authority district or unitary authority, LTLA 2024) or `county` (county council,
    UTLA 2023 E10…); anything else is an InvalidValue."""
    key = (value or "").strip().lower()
    if key not in _LEVEL_ALIASES:
        raise InvalidValue(f"Unknown area level '{value}'. Use 'icb' (integrated care boards), 'la' (local "
                           "authorities) or 'county' (county councils).", field="level")
    return _LEVEL_ALIASES[key]


def unit_vectors(lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """WGS84 degrees → points on the unit sphere, shape (n, 3): chord length is monotone in great-circle
    distance, so a Euclidean k-d tree over these answers exact great-circle nearest-neighbour queries."""
    phi = np.radians(np.asarray(lats, dtype=float))
    lam = np.radians(np.asarray(lons, dtype=float))
    cos_phi = np.cos(phi)
    return np.column_stack((cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)))


def to_latlon(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xyz = np.atleast_2d(xyz)
    norm = np.linalg.norm(xyz, axis=1)
    lat = np.degrees(np.arcsin(np.clip(xyz[:, 2] / norm, -1.0, 1.0)))
    lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    return lat, lon


@dataclass(frozen=True)
class LevelGroups:
    """The groups of one level and, per small area, the position of its group in `codes`. The first `areas`
    groups are the level's areas (sorted by code); at the county level the rest are the unitary authorities
    (E06, E08, E09), which hold the small areas no county council does, so that every small area is in one
    group and a unitary authority is its own 'outside' (as at the local authority level)."""

    level: str
    codes: np.ndarray  # (G,) str
    names: np.ndarray  # (G,) str
    of_small_area: np.ndarray  # (N,) int64 in 0..G-1
    position: dict[str, int]  # code → group; at the county level also each district's code → its county's
    areas: int  # the first `areas` groups are the level's areas

    def __len__(self) -> int:
        return len(self.codes)

    def named(self) -> list[tuple[str, str]]:
        """The level's own areas (not the unitary authorities after the counties), each code with its name."""
        return [(str(code), str(name)) for code, name in zip(self.codes[:self.areas], self.names[:self.areas])]

    def is_area(self, code: str) -> bool:
        """One of the level's own areas (a district's code is a position at the county level, not an area)."""
        return self.position.get(code, self.areas) < self.areas

    def others(self) -> list[str]:
        """The groups after the level's own areas: at the county level, the unitary authorities."""
        return [str(code) for code in self.codes[self.areas:]]


@dataclass(frozen=True)
class SmallAreas:
    """The 33,755 English LSOAs as columns (numpy arrays of equal length)."""

    codes: np.ndarray
    names: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    icb: np.ndarray
    icb_name: np.ndarray
    la: np.ndarray
    la_name: np.ndarray
    county: np.ndarray  # the upper-tier authority (2023): a county council, or the unitary authority itself
    county_name: np.ndarray
    adult_pop: np.ndarray  # int64, aged 16 and over
    total_pop: np.ndarray  # int64, all ages
    source: str = ""
    _groups: dict[str, LevelGroups] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.codes)

    @classmethod
    def load(cls, data_dir: Path) -> SmallAreas:
        """From a data folder (or the CSV itself); cached, so the API and the CLI read it once."""
        return _load(small_area_file(data_dir))

    @classmethod
    def from_columns(cls, columns: Mapping[str, np.ndarray], source: str = "") -> SmallAreas:
        """From the small-area file's columns (`rehabmap.small_areas`), which it shares: they are read-only."""
        return cls(
            codes=columns["lsoa21_code"], names=columns["lsoa21_name"], lat=columns["lat"], lon=columns["lon"],
            icb=columns["icb24_code"], icb_name=columns["icb24_name"], la=columns["ltla24_code"],
            la_name=columns["ltla24_name"], county=columns["utla23_code"], county_name=columns["utla23_name"],
            adult_pop=columns["adults"], total_pop=columns["pop_total_c2021"], source=source)

    def subset(self, mask: np.ndarray) -> SmallAreas:
        """A smaller table (for tests and examples); groups are recomputed for it."""
        return SmallAreas(self.codes[mask], self.names[mask], self.lat[mask], self.lon[mask], self.icb[mask],
                          self.icb_name[mask], self.la[mask], self.la_name[mask], self.county[mask],
                          self.county_name[mask], self.adult_pop[mask], self.total_pop[mask], self.source)

    @cached_property
    def xyz(self) -> np.ndarray:
        return unit_vectors(self.lat, self.lon)

    def groups(self, level: str) -> LevelGroups:
        """Small areas grouped by ICB (`icb`), local authority (`la`), county council (`county`) or all England
        (`england`)."""
        key = level
        if key not in self._groups:
            if level == "england":
                groups = LevelGroups("england", np.array([ENGLAND], dtype=object),
                                     np.array([ENGLAND_NAME], dtype=object),
                                     np.zeros(len(self), dtype=np.int64), {ENGLAND: 0}, 1)
            else:
                level = parse_level(level)
                code_col, name_col = {"icb": (self.icb, self.icb_name), "la": (self.la, self.la_name),
                                      "county": (self.county, self.county_name)}[level]
                codes, first, inverse = np.unique(code_col.astype(str), return_index=True, return_inverse=True)
                order = np.arange(len(codes))
                if level == "county":  # the county councils first, then the unitary authorities
                    order = np.argsort([code not in self._counties for code in codes], kind="stable")
                at = np.empty(len(codes), dtype=np.int64)
                at[order] = np.arange(len(codes))
                position = {str(c): int(i) for c, i in zip(codes, at)}
                if level == "county":  # a service is recorded by its district: it counts in its county
                    position.update({str(la): position[str(c)] for la, c in zip(self.la, self.county)})
                groups = LevelGroups(level, codes[order].astype(object), name_col[first[order]],
                                     at[inverse.ravel()], position,
                                     len(self._counties) if level == "county" else len(codes))
            self._groups[key] = groups
        return self._groups[key]

    def level_of(self, code: str) -> str:
        """`icb`, `la`, `county` or `england` for a code the table knows; UnknownArea (naming it) otherwise."""
        key = (code or "").strip().upper()
        if key == ENGLAND:
            return "england"
        for level in GAP_LEVELS:
            if self.groups(level).is_area(key):
                return level
        kind = _OTHER_AREAS.get(key[:3]) or other_kind_of_code(key)
        if kind:
            raise UnknownArea(f"'{code}' is {kind}; gap analysis takes {_CODES_TOLD}.", field="area_code")
        nation = another_nations_code(key)
        if nation:
            raise UnknownArea(f"{nation}: gap analysis is by {_LEVELS_TOLD}.", field="area_code")
        raise UnknownArea(f"No English ICB, local authority or county council has the code '{code}'. Use "
                          f"{_CODES_TOLD}.", field="area_code")

    def find(self, text: str) -> str:
        """An area code from a code or a name ('E54000054', 'Leeds', 'West Yorkshire', 'Nottinghamshire'): exact
        code, then exact name (ignoring case and the 'NHS … Integrated Care Board' wrapping), then whole words of one
        name alone; UnknownArea naming the text (and the candidates, when several match) otherwise."""
        key = (text or "").strip()
        if names_england(key):
            return ENGLAND
        if len(key) == 9 and key[0].upper() in "EWSN" and key[1:].isdigit():  # a code: England's, or told apart
            self.level_of(key)
            return key.upper()
        names = {code: name for level in GAP_LEVELS for code, name in self.groups(level).named()}
        # A county's short form is the county, as a place typed with it is: "Herts" was taken as part of the one
        # name holding it, Hertsmere, a district, where the person meant Hertfordshire.
        wanted = _plain(_COUNTIES_BY_SHORT_FORM.get(_plain(key), key))
        exact = [code for code, name in names.items() if _plain(name) == wanted]
        if len(exact) == 1:
            return exact[0]
        # A part of a name is whole words of it: "Hull" matched Solihull, "Stoke" Basingstoke and Deane.
        within = re.compile(rf"\b{re.escape(wanted)}\b")
        partial = exact or [code for code, name in names.items() if wanted and within.search(_plain(name))]
        if len(partial) == 1:
            return partial[0]
        if partial:
            listed = "; ".join(f"{names[c]} ({c})" for c in sorted(partial)[:8])
            raise UnknownArea(f"'{text}' matches several areas: {listed}. Give the code.", field="area")
        raise UnknownArea(f"No English ICB, local authority or county council is called or coded '{text}'.",
                          field="area")

    @cached_property
    def _counties(self) -> frozenset[str]:
        """The county councils (upper-tier authorities with districts): the others are their own district."""
        return frozenset(self.county[self.county != self.la].astype(str).tolist())

    def members(self, code: str) -> np.ndarray:
        """Positions of the small areas inside an area (sorted)."""
        key = code.strip().upper()
        level = self.level_of(key)
        groups = self.groups(level)
        return np.flatnonzero(groups.of_small_area == groups.position[key])

    def districts(self, code: str) -> list[str]:
        """The codes of the local authorities whose small areas make up an area (sorted)."""
        return sorted(set(self.la[self.members(code)].tolist()))

    def drawn_districts(self, areas: Any, code: str) -> list[str] | None:
        """The districts of county council `code` where the boundaries (`areas`, a geodata AreaIndex) hold each of
        them: the county's outline is their union (`AreaIndex.union`), as the boundaries hold no counties. None for
        a code that is no county council's, or a county the boundaries cannot outline. The one rule of a county's
        outline: `rehabmap.named_areas` names a county by it, `rehabmap.gaps.maps.area_geometry` draws one."""
        try:
            if self.level_of(code) != "county":
                return None
            districts = self.districts(code)
            for district in districts:
                areas.get(district)
        except UnknownArea:
            return None
        return districts

    def area_name(self, code: str) -> str:
        key = code.strip().upper()
        groups = self.groups(self.level_of(key))
        return str(groups.names[groups.position[key]])

    def weighted_centre(self, rows: np.ndarray) -> tuple[float, float]:
        """Adult-population-weighted centre of some small areas: the normalised weighted mean of their
        centroids' unit vectors (a point on the sphere), as lat/lon."""
        weights = self.adult_pop[rows].astype(float)
        if weights.sum() <= 0:
            weights = np.ones(len(rows))
        vector = (self.xyz[rows] * weights[:, None]).sum(axis=0)
        lat, lon = to_latlon(vector)
        return float(lat[0]), float(lon[0])


def short_name(name: str) -> str:
    """'NHS X Integrated Care Board' → 'X'; any other name as it is."""
    if name.startswith("NHS ") and name.endswith(" Integrated Care Board"):
        return name[4:-len(" Integrated Care Board")]
    return name


def _plain(name: str) -> str:
    name = name.strip().lower()
    name = name.removeprefix("nhs ")
    for suffix in (" integrated care board", " icb"):
        name = name.removesuffix(suffix)
    return " ".join(name.split())


_COUNTIES_BY_SHORT_FORM = {_plain(short): county for county, short in SHORT_FORMS.items()}


@lru_cache(maxsize=4)
def _load(path: Path) -> SmallAreas:
    areas = SmallAreas.from_columns(small_area_columns(path), str(path))
    if not (np.all(np.isfinite(areas.lat)) and np.all(np.isfinite(areas.lon))):
        raise ValueError(f"{path}: some small areas have no centroid")
    return areas


class LsoaBoundaries:
    """The simplified LSOA 2021 polygons (England and Wales), read once; a code → GeoJSON geometry map."""

    def __init__(self, geometries: dict[str, dict[str, Any]]) -> None:
        self._geometries = geometries

    @classmethod
    def load(cls, data_dir: Path) -> LsoaBoundaries:
        """From a data folder (or the GeoJSON itself); cached."""
        return _load_lsoa(in_data(data_dir, LSOA_BOUNDARIES_FILE))

    def __len__(self) -> int:
        return len(self._geometries)

    def __contains__(self, code: object) -> bool:
        return code in self._geometries

    def geometry(self, code: str) -> dict[str, Any] | None:
        """GeoJSON geometry of a small area (None if the file has no polygon for it)."""
        return self._geometries.get(code)

    def shape(self, code: str) -> BaseGeometry | None:
        geometry = self._geometries.get(code)
        return None if geometry is None else shape(geometry)


@lru_cache(maxsize=2)
def _load_lsoa(path: Path) -> LsoaBoundaries:
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileMissing(f"LSOA 2021 boundaries file ({LSOA_BOUNDARIES_FILE})", "to draw small areas on a map",
                              where=str(path)) from None
    with handle:
        features = json.load(handle)["features"]
    return LsoaBoundaries({f["properties"]["lsoa21_code"]: f["geometry"] for f in features})
