"""Build the geodata folder (SQLite tables, English boundaries, manifest) from the official source files.

Everything is written into a fresh folder beside the target and swapped in at the end, so a reader never
sees half a build and a failed build leaves the previous one in place.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from geodata.areas import AreaIndex
from geodata.counties import ASKED_AMONG, SHORT_FORMS, counties_of, county_councils, read_county_centres
from geodata.distance import great_circle_km
from geodata.errors import GeodataNotBuilt, OutsideEngland
from geodata.layout import AREA_LEVELS, FORMAT_VERSION, MANIFEST_NAME, SQLITE_NAME, boundary_path
from geodata.neighbourhoods import neighbourhood_places
from geodata.populations import unsupported
from geodata.places import ALIAS_SOURCE, LONDON_COUNTY, SAME_PLACE_KM, SHORT_FORM_SOURCE, TOWN_SOURCE, place_key
from geodata.shapes import write_binary
from geodata.downloads import (
    Centroid,
    NamedPlace,
    PostcodeRows,
    SmallArea,
    Sources,
    find_sources,
    lad_recodes,
    read_boundary_features,
    read_centroids,
    read_geonames,
    read_lad_centres,
    read_lad_regions,
    read_msoa21_names,
    read_msoa_names,
    read_small_areas,
    read_terminations,
)

_BATCH = 50_000
_SCHEMA = """
CREATE TABLE postcodes (
    key TEXT PRIMARY KEY, pcds TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL, lad TEXT, doterm TEXT
) WITHOUT ROWID;
CREATE TABLE sectors (
    sector TEXT PRIMARY KEY, lat REAL NOT NULL, lon REAL NOT NULL, lad TEXT, n_postcodes INTEGER
) WITHOUT ROWID;
CREATE TABLE districts (
    district TEXT PRIMARY KEY, lat REAL NOT NULL, lon REAL NOT NULL, lad TEXT, n_postcodes INTEGER
) WITHOUT ROWID;
CREATE TABLE gb_areas (key TEXT PRIMARY KEY, lad TEXT) WITHOUT ROWID;
CREATE TABLE places (
    key TEXT NOT NULL, name TEXT NOT NULL, county TEXT, lat REAL NOT NULL, lon REAL NOT NULL,
    population INTEGER NOT NULL, source TEXT NOT NULL, lad TEXT
);
CREATE TABLE counties (lad TEXT NOT NULL, county TEXT NOT NULL, PRIMARY KEY (lad, county)) WITHOUT ROWID;
"""
_PLACES_INDEX = "CREATE INDEX places_by_key ON places (key, population DESC)"

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
# ONS official LAD names put the title last: 'Bristol, City of'; people type 'Bristol'.
_TITLED_NAME = re.compile(r"^(?P<place>.+), (?P<title>City of|County of)$")
_LONDON_BOROUGH = "E09"  # the ONS code prefix of the 33 London authorities


# Each boundary level as the build's summary names it.
_AREA_WORDS = {"icb": "ICBs", "sub_icb": "sub-ICB locations", "lad": "local authorities", "region": "regions"}


@dataclass(frozen=True)
class BuildSummary:
    out_dir: Path
    postcodes: int
    terminated: int
    skipped_no_grid: int
    skipped_other_countries: int
    sectors: int
    districts: int
    places: int
    neighbourhoods: int  # names of neighbourhoods (per local authority)
    msoas_unmatched: int  # MSOAs (2011 codes) of the HoC names no 2021 MSOA has: their names are left out
    # GeoNames towns whose stated population the small areas around them cannot hold, counted as unknown
    # (`geodata.populations`; the manifest names them)
    populations_unsupported: tuple[str, ...]
    areas: dict[str, int]
    seconds: float

    def text(self) -> str:
        """What `rehabmap geodata build` prints: where the files went and what they hold, in words an operator reads
        (it printed the dataclass's repr, `BuildSummary(out_dir=PosixPath(…), …)`, on one line)."""
        areas = ", ".join(f"{n:,} {_AREA_WORDS.get(level, level)}" for level, n in self.areas.items())
        skipped = [f"{self.skipped_other_countries:,} outside England"] if self.skipped_other_countries else []
        skipped += [f"{self.skipped_no_grid:,} with no grid reference"] if self.skipped_no_grid else []
        lines = [f"Built the lookup files in {self.out_dir} in {self.seconds:g} s:",
                 f"  postcodes: {self.postcodes:,} ({self.terminated:,} of them terminated)"
                 + (f"; left out {' and '.join(skipped)}" if skipped else ""),
                 f"  postcode sectors: {self.sectors:,}; postcode districts: {self.districts:,}",
                 f"  places: {self.places:,}; neighbourhood names: {self.neighbourhoods:,}",
                 f"  areas: {areas}"]
        if self.msoas_unmatched:
            lines.append(f"  {self.msoas_unmatched:,} MSOA names left out: their 2011 MSOAs have no 2021 MSOA")
        if self.populations_unsupported:
            lines.append(f"  towns whose stated population the small areas around them cannot hold (counted as "
                         f"unknown): {', '.join(self.populations_unsupported)}")
        return "\n".join(lines)


def build_geodata(
    source_dir: Path, out_dir: Path, progress: bool = True, *, all_countries: bool = False
) -> BuildSummary:
    """Build `out_dir` from `source_dir`; `all_countries` keeps Welsh, Scottish and NI postcodes too."""
    started = time.perf_counter()
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if out_dir.is_symlink():
        if not out_dir.exists():
            # A link to a folder not there (a volume not mounted): the build cannot be renamed onto it, and
            # replacing the link would put the build where the operator did not mean it to live.
            raise GeodataNotBuilt("The geodata folder is a link to a folder that is not there: create or mount that "
                                  "folder, or remove the link, then run `rehabmap geodata build`.",
                                  where=f"{out_dir} -> {out_dir.readlink()}")
        # A link to a folder (a volume, a shared build): the build replaces that folder, built beside it (the swap's
        # renames stay on its file system), and the link keeps pointing there. Before, the link itself was replaced
        # by a folder in the home, and the old link, renamed aside, was left there (`shutil.rmtree` refuses a link).
        out_dir = out_dir.resolve()
    sources = find_sources(source_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-building-", dir=out_dir.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the API may run as another user
    try:
        small_areas = read_small_areas(sources.small_areas)
        area_counts, lad_names = _write_boundaries(sources, work, small_areas)
        areas = AreaIndex.load(work)
        recodes = lad_recodes(sources.district_names, lad_names)
        rows = PostcodeRows(
            sources.postcodes, all_countries=all_countries, lad_recodes=recodes, progress=progress
        )
        db = sqlite3.connect(work / SQLITE_NAME)
        try:
            db.executescript(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;"
            )
            db.executescript(_SCHEMA)
            _insert_batches(db, "INSERT OR REPLACE INTO postcodes VALUES (?, ?, ?, ?, ?, ?)", rows)
            terminated = rows.terminated + _lay_terminations(db, sources)
            sectors, districts = _write_centroids(db, sources, recodes, areas)
            places, neighbourhoods, unmatched, doubtful = _write_places(db, sources, areas, small_areas)
            db.commit()
        finally:
            db.close()
        summary = BuildSummary(
            out_dir=out_dir,
            postcodes=rows.kept,
            terminated=terminated,
            skipped_no_grid=rows.skipped_no_grid,
            skipped_other_countries=rows.skipped_other_countries,
            sectors=sectors,
            districts=districts,
            places=places,
            neighbourhoods=neighbourhoods,
            msoas_unmatched=unmatched,
            populations_unsupported=doubtful,
            areas=area_counts,
            seconds=round(time.perf_counter() - started, 1),
        )
        _write_manifest(work, sources, source_dir, summary, recodes, all_countries)
        _swap_into_place(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


def _write_boundaries(sources: Sources, work: Path,
                      small_areas: list[SmallArea]) -> tuple[dict[str, int], dict[str, str]]:
    """Copy the English features of each level; LADs also carry their region from the ONS lookup, and a
    district of a county council that council (`county_councils`): a service may serve a county, whose people's
    homes the boundaries alone do not place in it."""
    lad_regions = read_lad_regions(sources.lad_regions)
    councils = county_councils(small_areas)
    counts: dict[str, int] = {}
    lad_names: dict[str, str] = {}
    for level in AREA_LEVELS:
        features = read_boundary_features(sources.boundaries[level], level)
        if level == "lad":
            for feature in features:
                properties = feature["properties"]
                properties["region"] = lad_regions.get(properties["code"])
                properties["county"], properties["county_name"] = councils.get(properties["code"], (None, None))
                lad_names[properties["code"]] = properties["name"]
        with boundary_path(work, level).open("w", encoding="utf-8") as handle:
            json.dump({"type": "FeatureCollection", "features": features}, handle, separators=(",", ":"))
        write_binary(work, level)
        counts[level] = len(features)
    return counts, lad_names


def _insert_batches(db: sqlite3.Connection, statement: str, rows: Iterable[tuple[object, ...]]) -> None:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, _BATCH)):
        db.executemany(statement, batch)


def _lay_terminations(db: sqlite3.Connection, sources: Sources) -> int:
    """Mark the stored postcodes that an ONSPD-format file beside a directory without termination dates
    says are terminated. Returns how many were marked (before the sector and district means are taken,
    which count live postcodes only)."""
    marked = 0
    for file in sources.termination_files:
        for key, doterm in read_terminations(file):
            marked += db.execute("UPDATE postcodes SET doterm = ? WHERE key = ? AND doterm IS NULL",
                                 (doterm, key)).rowcount
    return marked


def _write_centroids(db: sqlite3.Connection, sources: Sources, recodes: dict[str, str],
                     areas: AreaIndex) -> tuple[int, int]:
    """Sector and district points: the ONS-derived centroid files where they have the area, else the mean
    of the area's current postcodes; a point in no English area of an English district's area is moved onto land
    (`_on_land`). Only areas holding at least one current stored postcode are kept,
    so the sector table covers what the postcode table covers. Every sector and district of the files, of
    Great Britain, goes to `gb_areas` with its modal local authority: a postcode England's tables lack, in an
    area that crosses the border (CH, SY, TD, …), is told as Welsh or Scottish by it
    (`PostcodeDirectory.lookup`)."""
    computed = _centroids_from_postcodes(db)
    counts = []
    for table, key_column, path in (
        ("sectors", "sector", sources.sector_centroids),
        ("districts", "outcode", sources.district_centroids),
    ):
        points = computed[table]
        if path is not None:
            centroids = read_centroids(path, key_column, recodes)
            db.executemany("INSERT OR REPLACE INTO gb_areas VALUES (?, ?)", [(c.key, c.lad) for c in centroids])
            for centroid in centroids:
                if centroid.key in points:
                    points[centroid.key] = centroid
        points = {key: _on_land(db, table, centroid, areas) for key, centroid in points.items()}
        db.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)",
            [(c.key, c.lat, c.lon, c.lad, c.n_postcodes) for c in points.values()],
        )
        counts.append(len(points))
    return counts[0], counts[1]


def _on_land(db: sqlite3.Connection, table: str, centroid: Centroid, areas: AreaIndex) -> Centroid:
    """The centroid, or, where it lies more than 5 km from any English area (where `AreaIndex.locate` refuses a
    point) although its modal local authority is English, its current postcode nearest it. A mean is no place where
    the postcodes are spread over islands or some lie far off: 16 of St Mary's (TR21, Isles of Scilly) 103
    postcodes lie at one point at Penzance, 57–60 km from the others, and its mean lay in the sea 7 km east of the
    island, so `TR21` and `TR21 0` were refused as outside England while every full postcode there was found."""
    if not (centroid.lad or "").startswith("E"):
        return centroid
    try:
        areas.locate(centroid.lat, centroid.lon, centroid.lad)
        return centroid
    except OutsideEngland:
        pass
    like = centroid.key + ("%" if table == "sectors" else " %")
    postcodes = db.execute("SELECT lat, lon FROM postcodes WHERE doterm IS NULL AND pcds LIKE ?", (like,)).fetchall()
    if not postcodes:
        return centroid
    lat, lon = min(postcodes, key=lambda p: great_circle_km(centroid.lat, centroid.lon, p[0], p[1]))
    return replace(centroid, lat=lat, lon=lon)


def _centroids_from_postcodes(db: sqlite3.Connection) -> dict[str, dict[str, Centroid]]:
    """Mean position and modal local authority of the live postcodes in each sector and district."""
    groups = db.execute(
        """SELECT substr(pcds, 1, length(pcds) - 2) AS sector, lad, count(*), sum(lat), sum(lon)
           FROM postcodes WHERE doterm IS NULL GROUP BY sector, lad"""
    ).fetchall()
    sums: dict[str, dict[str, list[float]]] = {"sectors": {}, "districts": {}}
    lads: dict[str, dict[str, Counter[str | None]]] = {"sectors": {}, "districts": {}}
    for sector, lad, n, lat_sum, lon_sum in groups:
        for table, key in (("sectors", sector), ("districts", sector.split(" ")[0])):
            total = sums[table].setdefault(key, [0, 0.0, 0.0])
            total[0] += n
            total[1] += lat_sum
            total[2] += lon_sum
            lads[table].setdefault(key, Counter())[lad] += n
    return {
        table: {
            key: Centroid(key, lat_sum / n, lon_sum / n, lads[table][key].most_common(1)[0][0], int(n))
            for key, (n, lat_sum, lon_sum) in sums[table].items()
        }
        for table in sums
    }


def _write_places(db: sqlite3.Connection, sources: Sources, areas: AreaIndex,
                  small_areas: list[SmallArea]) -> tuple[int, int, int, tuple[str, ...]]:
    """Towns, and local authorities and county councils by name; towns also under the short names of
    `_known_as`; then the neighbourhood names (`geodata.neighbourhoods`), which rank below all of those, and the
    counties each local authority lies in (`geodata.counties`). Returns the number
    of places (not of names), of neighbourhood names, of MSOAs whose name could not be placed, and the towns
    whose population is counted as unknown (`geodata.populations`).

    A county council is a place like a unitary authority (Kent, at its population-weighted centre, as Cornwall
    is): before format 6 none was, so its name was matched by spelling to another place, taken when one was close
    enough ('Kent' as Kenton, Devon; 'Hertfordshire' as Herefordshire; 'Surrey' as Sturry, Kent). So is each
    county no council is named after (`geodata.counties`: 'Greater Manchester', 'Berkshire', 'Avon'); and the
    `counties` table files each local authority under its own name and the counties it lies in, which a place's
    county may be typed as ('Plymouth, Devon', `PlaceGazetteer.lookup`).

    A local authority named after a town in it (Leeds, Wakefield) is left to the town: its
    population-weighted centre can sit kilometres from the town a person means. Places that do not land
    in England are dropped (GeoNames files the odd Crown Dependency place under England). A town's county,
    which tells apart the places that share a name, is the authority it lands in; a town whose stated population
    the small areas around its point cannot hold is of unknown size (`geodata.populations`: Loughton, Shropshire
    took Loughton, Essex's 33,346 people, and so its searches). The places of Wales,
    Scotland, Northern Ireland and the Crown Dependencies are kept apart (`ELSEWHERE_SOURCE`, the county their
    nation), so that a name only they have is told where it is.
    """
    towns, elsewhere = read_geonames(sources.places)
    found = areas.locate_many(np.array([t.lat for t in towns]), np.array([t.lon for t in towns]))
    doubtful = unsupported(towns, small_areas)
    misplaced = {id(d.town) for d in doubtful}
    centres = read_lad_centres(small_areas)
    counties = _counties(centres)
    # A district GeoNames files at a point on a moor (High Peak) leaves the district its name and centre.
    towns_in_lads = {(place_key(town.name), lad) for town, lad in zip(towns, found["lad"], strict=True)
                     if id(town) not in misplaced}
    towns = [replace(town, population=0) if id(town) in misplaced else town for town in towns]
    lad_names = {centre.lad_code: _plain_name(centre.name) for centre in centres if centre.lad_code}
    authorities = [
        centre
        for centre in _with_plain_names(centres)
        if (place_key(centre.name), centre.lad_code) not in towns_in_lads
    ] + read_county_centres(small_areas, set(lad_names.values()))
    kept = _told_apart([
        replace(town, county=counties.get(lad), lad_code=lad)
        for town, lad, icb in zip(towns, found["lad"], found["icb"], strict=True)
        if icb is not None
    ], lad_names) + authorities
    rows: list[PlaceRow] = [_row(place_key(p.name), p) for p in kept]
    rows += _alias_rows(kept)
    rows += [_row(place_key(SHORT_FORMS[p.name]), p, SHORT_FORM_SOURCE)
             for p in kept if p.source in ("county", "lad") and p.name in SHORT_FORMS]
    rows += [_row(place_key(name), p, SHORT_FORM_SOURCE) for name, parts in ASKED_AMONG.items()
             for p in kept if p.source in ("county", "lad") and p.name in parts]
    neighbourhoods = neighbourhood_places(
        read_msoa_names(sources.msoa_names), read_msoa21_names(sources.msoa_boundaries), small_areas, lad_names)
    rows += [_row(place_key(p.name), p) for p in neighbourhoods.places + elsewhere]
    db.executemany("INSERT INTO places VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute(_PLACES_INDEX)
    db.executemany("INSERT OR IGNORE INTO counties VALUES (?, ?)",
                   [(code, place_key(name)) for code, within in counties_of(small_areas).items()
                    for name in (lad_names[code], *within)])
    return len(kept), len(neighbourhoods.places), len(neighbourhoods.unmatched), tuple(d.describe() for d in doubtful)


PlaceRow = tuple[str, str, str | None, float, float, int, str, str | None]


def _told_apart(towns: list[NamedPlace], lad_names: dict[str, str]) -> list[NamedPlace]:
    """Towns that share a name and a county yet lie apart (Hayes in Hillingdon and in Bromley, both 'Greater
    London'; Stone near Dartford and near Ashford, both 'Kent') are shown with their local authority instead
    ('Hayes, Hillingdon'): offered as choices, 'Hayes, Greater London' twice told the person nothing, and typed
    back, asked again."""
    groups: dict[tuple[str, str | None], list[NamedPlace]] = {}
    for town in towns:
        groups.setdefault((place_key(town.name), town.county), []).append(town)
    apart = {id(town) for group in groups.values() for town in group
             if any(great_circle_km(town.lat, town.lon, other.lat, other.lon) > SAME_PLACE_KM for other in group)}
    return [replace(town, county=lad_names.get(town.lad_code or "", town.county)) if id(town) in apart else town
            for town in towns]


def _row(key: str, place: NamedPlace, source: str | None = None) -> PlaceRow:
    """A row of the places table: `place` filed under `key`, by its own source or `source`."""
    return (key, place.name, place.county, place.lat, place.lon, place.population, source or place.source,
            place.lad_code)


def _alias_rows(kept: list[NamedPlace]) -> list[PlaceRow]:
    """The places rows of every short name a place is known by, and of its fuller official name, in an order
    fixed by the input alone: two places that share a short name and a population are returned by the lookup in
    the order they were written, so a build must not write them in a set's (hash-seeded) order."""
    short_names = {alias for place in kept for alias in _aliases(place)}
    return [_row(alias, p, ALIAS_SOURCE) for p in kept
            for alias in sorted(_known_as(p, short_names) | _fuller_names(p))]


# The words that join a town's name to the river, sea or district of its fuller name, as keys write them
# ('upon' as 'on'): Staines-upon-Thames, Portslade-by-Sea, Skelton-in-Cleveland, Burley-on-the-Hill.
_JOINING_WORDS = frozenset({"on", "by", "in", "under"})


def _fuller_names(place: NamedPlace) -> set[str]:
    """The keys of the fuller names GeoNames lists for a town it files under the short one, which people also
    type: 'Staines-upon-Thames' (Staines' name since 2012), 'Abingdon-on-Thames', 'Portslade-by-Sea',
    'Billingham-on-Tees'. Only a hyphenated name that goes on from the town's whole name with a joining word:
    GeoNames' other longer alternates are other languages' ('Rugby i Warwickshire', 'Newport pa Isle of Wight')
    or name another place ('Swindon Village', 'Walton on the Hill')."""
    official = place_key(place.name).split()
    fuller = set()
    for name in place.alternate_names:
        words = place_key(name).split()
        if ("-" in name and len(words) > len(official) + 1 and words[:len(official)] == official
                and words[len(official)] in _JOINING_WORDS):
            fuller.add(" ".join(words))
    return fuller


def _aliases(place: NamedPlace) -> list[str]:
    """The keys of the shorter names GeoNames lists for a town that people in England use for it: 'Hull'
    for Kingston upon Hull, 'Southend' for Southend-on-Sea, 'Leamington Spa' for Royal Leamington Spa.

    GeoNames' alternate names are mostly other languages' ('Lids' for Leeds, 'Braiton' for Brighton) and
    airport codes ('LBA'); a name made of whole words of the official one, in order, is the same name cut
    short, which is what people type. (The lookup never lets one outrank a place officially so named.)
    """
    official = place_key(place.name).split()
    keys = []
    for name in place.alternate_names:
        words = place_key(name).split()
        if (words and words != official
                and any(official[i:i + len(words)] == words for i in range(len(official) - len(words) + 1))):
            keys.append(" ".join(words))
    return sorted(set(keys))


def _known_as(place: NamedPlace, short_names: set[str]) -> set[str]:
    """The short names (of `_aliases`) a place is found by: its own, and, for a town, any its official name
    starts with.

    GeoNames lists 'Newcastle' for Newcastle upon Tyne only, and 'Newton' for Newton Regis only; a person
    typing either may mean Newcastle-under-Lyme or Newton Abbot, so those are found by it too, and the lookup
    asks which. (A local authority is left out: 'Newark' is the town, not Newark and Sherwood.)"""
    key = place_key(place.name)
    starts = {alias for alias in short_names if key.startswith(alias + " ")} if place.source == TOWN_SOURCE else set()
    return set(_aliases(place)) | starts


def _counties(centres: list[NamedPlace]) -> dict[str, str]:
    """The county a town in each local authority is known by: the upper-tier authority (Huntingdonshire →
    Cambridgeshire), the unitary authority itself (Cornwall), or Greater London for a London borough (people
    say 'Richmond, London', not 'Richmond, Richmond upon Thames')."""
    return {
        centre.lad_code: LONDON_COUNTY if centre.lad_code.startswith(_LONDON_BOROUGH)
        else centre.county or _plain_name(centre.name)
        for centre in centres
        if centre.lad_code is not None
    }


def _plain_name(name: str) -> str:
    match = _TITLED_NAME.match(name)
    return match["place"] if match else name


def _with_plain_names(centres: list[NamedPlace]) -> list[NamedPlace]:
    """'Bristol, City of' is also found as 'Bristol' and 'City of Bristol', and shown as 'Bristol'."""
    result = []
    for centre in centres:
        match = _TITLED_NAME.match(centre.name)
        if match is None:
            result.append(centre)
            continue
        for name in (match["place"], f"{match['title']} {match['place']}"):
            result.append(
                NamedPlace(
                    name, centre.county, centre.lat, centre.lon, centre.population, "lad", centre.lad_code
                )
            )
    return result


def _write_manifest(
    work: Path,
    sources: Sources,
    source_dir: Path,
    summary: BuildSummary,
    recodes: dict[str, str],
    all_countries: bool,
) -> None:
    vintage = re.search(rf"({_MONTHS})[_-]?(\d{{4}})", sources.postcodes.path.name, re.IGNORECASE)
    manifest = {
        "format": FORMAT_VERSION,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "vintage": {
            "postcodes": f"ONSPD {vintage[1].title()} {vintage[2]}" if vintage else None,
            "boundaries": {level: sources.boundaries[level].stem for level in AREA_LEVELS},
        },
        "sources": sources.describe(source_dir),
        "all_countries": all_countries,
        "counts": {
            "postcodes": summary.postcodes,
            "terminated": summary.terminated,
            "skipped_no_grid": summary.skipped_no_grid,
            "skipped_other_countries": summary.skipped_other_countries,
            "sectors": summary.sectors,
            "districts": summary.districts,
            "places": summary.places,
            "neighbourhoods": summary.neighbourhoods,
            "msoas_unmatched": summary.msoas_unmatched,
            "areas": summary.areas,
        },
        "populations_unsupported": list(summary.populations_unsupported),
        "lad_recodes": recodes,
        "seconds": summary.seconds,
    }
    (work / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _swap_into_place(work: Path, out_dir: Path) -> None:
    """Replace `out_dir` by `work`. A folder cannot be renamed over a non-empty one, so the old build is
    moved aside first; between the two renames (microseconds) there is no build at all."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}-old-{uuid.uuid4().hex[:8]}")
        out_dir.rename(old)
        work.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        work.rename(out_dir)
