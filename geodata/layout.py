"""What a geodata build leaves on disk, named once so the builder and the readers cannot drift apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

# Bump when the tables or files change shape or meaning: an older build is then rebuilt rather than misread.
# 2: places from GeoNames cities500, each town with the county of the authority it lands in.
# 3: a town also under the shorter names GeoNames lists for it (places rows of source 'alias').
# 4: neighbourhood names from the HoC Library's MSOA Names (places rows of source 'msoa').
# 5: the places of Wales, Scotland, Northern Ireland and the Crown Dependencies (places rows of source
#    'elsewhere'), so that a name only they have is told where it is rather than taken for an English one; and
#    every sector and district of Great Britain with its local authority (`gb_areas`), so that a postcode in an
#    area that crosses the border is told as Welsh or Scottish.
# 6: the county councils and the metropolitan counties as places (source 'county', at their population-weighted
#    centres), so that 'Kent' is Kent, not a place spelt close to it (Kenton, Devon); and the short forms of county
#    names ('Notts', 'Lincs') as aliases of the counties and unitary authorities so named (source 'short_form').
# 7: the ceremonial and former counties no council is named after as places ('Berkshire', 'Cumbria', 'Avon'); each
#    place's local authority (places column `lad`) and the counties each authority lies in (table `counties`), so
#    that a place may be typed with the county its address gives ('Plymouth, Devon', 'Bolton, Greater Manchester',
#    'Harrow, Middlesex'), which before matched no place; the neighbourhoods whose name a place also has, found with
#    a county no such place lies in ('Loughton, Essex'); a population GeoNames gives a point whose small areas
#    cannot hold it, as unknown (`geodata.populations`).
# 8: the fuller official names GeoNames lists for a town filed under its short one ('Staines-upon-Thames',
#    'Abingdon-on-Thames'), as aliases of the town; keys with 'upon' as 'on' ('Burton-on-Trent'); a compass-named
#    neighbourhood's bare name for each authority far from the others' ('Wellington, Somerset'), of source
#    'msoa_split_town' when two or more MSOAs make it (weighed beside the places of its name).
# 9: each district of a county council carries that council (LAD properties `county`, `county_name`; E10…), so a
#    home there is in the catchment of a service serving the county (before, a county's advocacy served no home).
# 10: the West Riding of Yorkshire among the counties its districts lie in ('Leeds, Yorkshire(West Riding)').
# 11: a sector or district point in no English area, of an English district's area, is its postcode nearest the mean
#     (`TR21`, St Mary's, lay in the sea and was refused as outside England).
FORMAT_VERSION = 11

SQLITE_NAME = "geodata.sqlite"
MANIFEST_NAME = "manifest.json"

AreaLevel = Literal["icb", "sub_icb", "lad", "region"]
AREA_LEVELS: tuple[AreaLevel, ...] = ("icb", "sub_icb", "lad", "region")


def boundary_path(geodata_dir: Path, level: AreaLevel) -> Path:
    return geodata_dir / f"{level}.geojson"


def boundary_wkb_path(geodata_dir: Path, level: AreaLevel) -> Path:
    """The boundary file's binary form (`geodata.shapes`); optional: a build made before it has none."""
    return geodata_dir / f"{level}.wkb"


def connect_built(sqlite_path: Path) -> sqlite3.Connection:
    """A reader's connection to a build's `geodata.sqlite`: read-only and immutable. A build is never changed
    in place (`geodata.build` renames a new folder over the old one), so SQLite can skip what it does for a
    file another process may write: a lock taken and released, the change counter read and the journal and
    WAL looked for, ~10 system calls on every query (a postcode's lookup cost ~60 µs in a request, with them;
    bench/RESULTS.md, "POST /match, seventh pass"). Shared between threads (the API's pool): callers lock."""
    return sqlite3.connect(f"{Path(sqlite_path).resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                           check_same_thread=False)
