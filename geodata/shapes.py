"""A boundary file's features in binary beside it, so that a process reads England's areas without parsing GeoJSON.

Every process that places a point (each worker, sync, `index`, `match` and `gaps` command) loads the four
boundary files: `json.loads` for the properties and GEOS's GeoJSON reader for the geometries were ~1.05G
instructions of its start. The build writes beside each `<level>.geojson` a `<level>.wkb`: the features'
properties, then their geometries as WKB (the same doubles, so the same shapes), headed by the SHA-256 of the
GeoJSON it was made from. A reader takes it only when that digest is the GeoJSON's own, so an edited or
replaced GeoJSON is never read stale; a folder built before (or a file without its binary form) is parsed as
before.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geodata.layout import AreaLevel, boundary_path, boundary_wkb_path

_MAGIC = b"rehabmap boundaries wkb 1\n"


def read_boundaries(geodata_dir: Path, level: AreaLevel) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The level's features: each one's properties, and their geometries, in the file's order."""
    text = boundary_path(geodata_dir, level).read_bytes()
    try:
        binary = boundary_wkb_path(geodata_dir, level).read_bytes()
    except FileNotFoundError:
        return _parsed(text)
    end = binary.find(b"\n", len(_MAGIC))
    if not binary.startswith(_MAGIC) or end < 0:
        return _parsed(text)
    header = json.loads(binary[len(_MAGIC):end])
    if header["geojson_sha256"] != hashlib.sha256(text).hexdigest():
        return _parsed(text)
    ends = np.cumsum([end + 1, *header["sizes"]]).tolist()
    return header["properties"], shapely.from_wkb([binary[a:b] for a, b in zip(ends[:-1], ends[1:])])


def write_binary(geodata_dir: Path, level: AreaLevel) -> None:
    """Write the binary form of the level's GeoJSON, from the file as a reader would parse it."""
    text = boundary_path(geodata_dir, level).read_bytes()
    properties, geometries = _parsed(text)
    wkbs = shapely.to_wkb(geometries).tolist()
    header = {"geojson_sha256": hashlib.sha256(text).hexdigest(), "properties": properties,
              "sizes": [len(wkb) for wkb in wkbs]}
    boundary_wkb_path(geodata_dir, level).write_bytes(
        _MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n" + b"".join(wkbs))


def _parsed(text: bytes) -> tuple[list[dict[str, Any]], np.ndarray]:
    # GEOS reads the whole file's geometries at once, in order (a collection of them): the same coordinates as
    # feature by feature in a quarter of the time.
    features = json.loads(text)["features"]
    return [feature["properties"] for feature in features], shapely.get_parts(shapely.from_geojson(text.decode()))
