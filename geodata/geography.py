"""The one object the rest of rehabmap asks where a home is and which areas it lies in."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from geodata.areas import AreaCodes, AreaIndex, check_coordinates
from geodata.errors import GeodataNotBuilt, InvalidCoordinates, InvalidLocation
from geodata.layout import FORMAT_VERSION, MANIFEST_NAME, SQLITE_NAME
from geodata.places import PlaceGazetteer
from geodata.postcodes import PostcodeDirectory


@dataclass(frozen=True)
class Home:
    lat: float
    lon: float
    areas: AreaCodes
    label: str  # what the person gave, normalised ('LS9 7TF', 'Leeds', '53.79648, -1.54785')
    precision: str  # 'postcode' | 'sector' | 'district' | 'place' | 'point'
    district: str | None  # postcode district: the most that may be logged about a home

    @property
    def place(self) -> str | None:
        """The place a place name was read as ('Sheffield' for 'Sheffeld'; 'Preston, Lancashire' for 'Preston'),
        for the person to see which place was used; None for a postcode or a point, of which no more than the
        district is ever shown."""
        return self.label if self.precision == "place" else None


class Geography:
    """Postcodes, places and areas from one built geodata folder, each loaded on first use."""

    def __init__(self, geodata_dir: Path) -> None:
        self.geodata_dir = Path(geodata_dir)
        self.manifest: dict[str, Any] = _read_manifest(self.geodata_dir) or {}
        if self.manifest.get("format") != FORMAT_VERSION:
            raise GeodataNotBuilt(
                "No current geodata in the geodata folder. Run `rehabmap geodata build` to build it "
                "from the ONS source files.", where=str(self.geodata_dir)
            )

    @classmethod
    def open(cls, geodata_dir: Path, source_dir: Path | None = None, auto_build: bool = True) -> Geography:
        """Open a build, first building it from `source_dir` when there is none (or an outdated one)."""
        geodata_dir = Path(geodata_dir)
        manifest = _read_manifest(geodata_dir)
        current = manifest is not None and manifest.get("format") == FORMAT_VERSION
        if not current and auto_build and source_dir is not None:
            print(f"rehabmap: building geodata in {geodata_dir} from {source_dir} (once) …", file=sys.stderr)
            # Here, not at import: only a process that builds loads the builder and its readers (tqdm, the ONS
            # files'; ~20 ms of CPU), not every process that opens a build.
            from geodata.build import build_geodata

            try:
                build_geodata(Path(source_dir), geodata_dir, progress=False)
            except FileNotFoundError as error:
                raise GeodataNotBuilt(
                    "Geodata is not built and cannot be built automatically: ONS source files are missing from the "
                    "data folder (REHABMAP_DATA_DIR). Run `rehabmap geodata build` with them in place.",
                    where=str(error)) from error
        return cls(geodata_dir)

    def forked(self) -> Geography:
        """This geography for a forked child process: the boundaries loaded here are the child's too (its pages
        shared until written), and the SQLite connections, which must not cross a fork, are opened again there
        on first use."""
        child = Geography(self.geodata_dir)
        if "areas" in self.__dict__:
            child.__dict__["areas"] = self.__dict__["areas"]
        return child

    @cached_property
    def areas(self) -> AreaIndex:
        return AreaIndex.load(self.geodata_dir)

    @cached_property
    def postcodes(self) -> PostcodeDirectory:
        return PostcodeDirectory(self.geodata_dir / SQLITE_NAME)

    @cached_property
    def places(self) -> PlaceGazetteer:
        return PlaceGazetteer(self.geodata_dir / SQLITE_NAME)

    def locate(self, lat: float, lon: float, lad_code: str | None = None) -> AreaCodes:
        return self.areas.locate(lat, lon, lad_code)

    def locate_all(
        self, lats: Sequence[float], lons: Sequence[float], lad_codes: Sequence[str | None] | None = None
    ) -> list[AreaCodes | None]:
        return self.areas.locate_all(lats, lons, lad_codes)

    def resolve(
        self,
        *,
        postcode: str | None = None,
        place: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> Home:
        """Turn exactly one of a postcode, a place name or a lat/lon pair into a home in England."""
        if (postcode is not None) + (place is not None) + (lat is not None or lon is not None) != 1:  # no list made
            given = [name for name, value in (("postcode", postcode), ("place", place)) if value is not None]
            if lat is not None or lon is not None:
                given.append("lat/lon")
            raise InvalidLocation(
                "Give exactly one of a postcode, a place name, or a latitude and longitude"
                + (f" (got {' and '.join(given)})." if given else "."),
                field="location",
            )
        if postcode is not None:
            point = self.postcodes.lookup(postcode)
            if refused := self.postcodes.refusal_of(point):
                raise refused
            areas = self.areas.locate(point.lat, point.lon, point.lad_code)
            return Home(point.lat, point.lon, areas, point.query.value, point.precision, point.query.district)
        if place is not None:
            found = self.places.lookup(place)
            return Home(
                found.lat, found.lon, self.areas.locate(found.lat, found.lon), found.label, "place", None
            )
        if lat is None or lon is None:
            raise InvalidCoordinates(
                "Give both a latitude and a longitude.", field="lon" if lon is None else "lat"
            )
        lat, lon = check_coordinates(lat, lon)
        return Home(lat, lon, self.areas.locate(lat, lon), f"{lat:.5f}, {lon:.5f}", "point", None)

    def close(self) -> None:
        """Release the SQLite connections (those opened so far)."""
        for name in ("postcodes", "places"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()


def _read_manifest(geodata_dir: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((geodata_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return manifest
