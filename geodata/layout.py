"""What a geodata build leaves on disk, named once so the builder and the readers cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

# Bump when the tables or files change shape or meaning: an older build is then rebuilt rather than misread.
# 2: places from GeoNames cities500, each town with the county of the authority it lands in.
# 3: a town also under the shorter names GeoNames lists for it (places rows of source 'alias').
# 4: neighbourhood names from the HoC Library's MSOA Names (places rows of source 'msoa').
FORMAT_VERSION = 4

SQLITE_NAME = "geodata.sqlite"
MANIFEST_NAME = "manifest.json"

AreaLevel = Literal["icb", "sub_icb", "lad", "region"]
AREA_LEVELS: tuple[AreaLevel, ...] = ("icb", "sub_icb", "lad", "region")


def boundary_path(geodata_dir: Path, level: AreaLevel) -> Path:
    return geodata_dir / f"{level}.geojson"
