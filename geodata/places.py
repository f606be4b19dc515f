"""Place names (towns, cities, local authorities) → a point, from the table a geodata build writes."""

from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from geodata.errors import UnknownPlace

_APOSTROPHES = re.compile("['\u2019`]")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# People write 'St Albans', 'St. Albans' and 'Saint Albans' for one place; GeoNames uses all three.
_TOKEN_ALIASES = {"saint": "st"}


@dataclass(frozen=True)
class PlacePoint:
    name: str
    county: str | None
    lat: float
    lon: float


def place_key(name: str) -> str:
    """The form names are matched in, so case, accents and punctuation never decide a match."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _APOSTROPHES.sub("", text.replace("&", " and "))
    return " ".join(_TOKEN_ALIASES.get(token, token) for token in _NOT_ALNUM.sub(" ", text).split())


class PlaceGazetteer:
    """Looks names up in the `places` table; when a name is shared, the most populous place wins."""

    def __init__(self, sqlite_path: Path) -> None:
        uri = f"{Path(sqlite_path).resolve().as_uri()}?mode=ro"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def lookup(self, name: str) -> PlacePoint:
        key = place_key(name)
        with self._lock:
            row = self._db.execute(
                "SELECT name, county, lat, lon FROM places WHERE key = ? ORDER BY population DESC LIMIT 1",
                (key,),
            ).fetchone()
        if row is None:
            raise UnknownPlace(name.strip())
        return PlacePoint(row[0], row[1], float(row[2]), float(row[3]))

    def close(self) -> None:
        self._db.close()
