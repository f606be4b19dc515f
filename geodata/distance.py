"""Great-circle distances in kilometres, and how a distance reads to a person.

The scalar and the vectorised forms use the same sphere as geopy's `great_circle`, so a distance shown for
one service and the distances used to rank thousands of services never disagree. Every distance a person
reads (pages, the clinicians' explanation, the command line) is in miles with km in brackets, as NHS.UK
writes them, from `miles_and_km`; machine fields stay numbers in km, with the unit in the field's name.
"""

from __future__ import annotations

import math
from math import floor, pi

import numpy as np

# geopy's mean radius (`geopy.distance.EARTH_RADIUS`, which tests/geodata checks it against), written here so
# that importing the distances does not import geopy (and requests, urllib3...): ~0.3 s of CPU in each process.
EARTH_RADIUS_KM: float = 6371.009
KM_PER_MILE = 1.609344
# A degree of latitude on that sphere, to the metre: what the maps draw their scale bars and spans with.
KM_PER_DEGREE = round(pi * EARTH_RADIUS_KM / 180, 3)
# "0.0" to "100.0" by the count of tenths: a distance's figures below 10 miles (`miles_and_km`), the miles' with
# their words and the bracket opened, the km's with theirs and it closed: one concatenation a distance.
_TENTHS = [f"{n // 10}.{n % 10}" for n in range(1001)]
_MILES_OPEN = [f"{tenths} {'mile' if n == 10 else 'miles'} (" for n, tenths in enumerate(_TENTHS[:101])]
_KM_CLOSE = [f"{tenths} km)" for tenths in _TENTHS]
# Up to this many points, `haversine_km` works in plain floats (`_haversine_km_few`): they cost as much as
# NumPy's steps at ~25.
_FEW = 24
# What `math.radians` and NumPy's `radians` multiply by: the double nearest pi / 180.
_TO_RADIANS = pi / 180.0
_SAFETY = 1e-6  # a radius's box is widened by this much (relative), and a hair: `radius_box`


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    from geopy.distance import great_circle

    return float(great_circle((lat1, lon1), (lat2, lon2)).km)


def haversine_km_pairs(
    lats1: np.ndarray | float, lons1: np.ndarray | float, lats2: np.ndarray | float, lons2: np.ndarray | float
) -> np.ndarray:
    """Element-wise distances (arrays broadcast), for bulk work where a geopy call per pair is too slow."""
    return haversine_km_radians(*radians_and_cosines(lats1, lons1), *radians_and_cosines(lats2, lons2))


def radians_and_cosines(lats: np.ndarray | float,
                        lons: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points as `haversine_km_radians` takes them: latitudes and longitudes in radians, the latitudes' cosines."""
    phi = np.radians(np.asarray(lats, dtype=float))
    return phi, np.radians(np.asarray(lons, dtype=float)), np.cos(phi)


def point_radians(lat: float, lon: float) -> tuple[float, float, float]:
    """One point as `haversine_km_radians` takes it, in plain floats: the same floats as `radians_and_cosines`
    gives (one multiplication by the same constant, the C library's cosine, which NumPy calls too), without
    NumPy's five steps on one value (~5k instructions each: a match measures its few candidates this way)."""
    phi = math.radians(lat)
    return phi, math.radians(lon), math.cos(phi)


def haversine_km_radians(phi1: np.ndarray | float, lam1: np.ndarray | float, cos_phi1: np.ndarray | float,
                         phi2: np.ndarray, lam2: np.ndarray, cos_phi2: np.ndarray) -> np.ndarray:
    """`haversine_km_pairs` from latitudes and longitudes already in radians, with the latitudes' cosines:
    an index keeps these per row, so a query computes none of them again. The same floats, bit for bit."""
    a = np.sin((phi2 - phi1) / 2.0) ** 2 + cos_phi1 * cos_phi2 * np.sin((lam2 - lam1) / 2.0) ** 2
    distances: np.ndarray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a.clip(0.0, 1.0)))
    return distances


def radius_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float] | None:
    """A lat/lon box (south, north, west, east) holding every point within radius_km of the point (None: it may
    hold anything): what a search reads its rows from (`search.columns`) and counts the held candidates within
    (`rehabmap.coverage`). Widened by a millionth plus a hair, so rounding never leaves out a point whose computed
    distance is inside the radius."""
    angle = radius_km / EARTH_RADIUS_KM
    if not math.isfinite(angle) or angle >= math.pi / 2:
        return None
    dlat = math.degrees(angle) * (1 + _SAFETY) + 1e-9
    if abs(lat) + dlat >= 90.0:
        return None
    ratio = math.sin(angle) / math.cos(math.radians(abs(lat) + dlat))
    if ratio >= 1.0:
        return None
    dlon = math.degrees(math.asin(ratio)) * (1 + _SAFETY) + 1e-9
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def haversine_km_one(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """`haversine_km_pairs`' formula for one pair, in plain floats: where a request checks a few points, each
    numpy call on one costs more than the arithmetic (~108k instructions for one point, against ~1k). Within
    an ulp or two of the arrays' answer (the library's sine, not numpy's)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((phi2 - phi1) / 2.0) ** 2
         + math.cos(phi1) * math.cos(phi2) * math.sin((math.radians(lon2) - math.radians(lon1)) / 2.0) ** 2)
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


def haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Distances from one point to many: `haversine_km_pairs`' floats, the point taken in plain floats. A few
    points (a match measures ~10 candidates) are taken in plain floats too (`_haversine_km_few`)."""
    if len(lats) <= _FEW:
        return _haversine_km_few(*point_radians(lat, lon), lats.tolist(), lons.tolist())
    return haversine_km_radians(*point_radians(lat, lon), *radians_and_cosines(lats, lons))


def _haversine_km_few(phi1: float, lam1: float, cos_phi1: float, lats: list[float], lons: list[float]) -> np.ndarray:
    """`haversine_km_radians`' floats, bit for bit, for a few points in plain floats. Its ~20 NumPy steps cost
    ~88k instructions for 10 points (callgrind), this ~26k and ~2.8k a point: 51k (bench/RESULTS.md, session 25).
    The operations and their order are NumPy's: `math.radians` multiplies by the same double, the C library's
    sine and cosine give what NumPy's float64 `sin` and `cos` give, a square is a product (NumPy's `** 2`), the
    square root is exact in both. Not the arcsine: NumPy's (SIMD on this machine) differs from the C library's
    in the last bit for ~0.3% of the values a match meets, so the roots go to `np.arcsin`. Checked equal on
    every row of the 100k bench corpus from each of the 200 bench homes, 1 to 32 points a call, and in
    tests/geodata. That holds while NumPy's float64 sine and cosine call the C library, as the pinned 2.4 does: a
    NumPy with SIMD ones of its own (numpy/numpy#29699, proposed) fails that test, and this path must then go."""
    cos, sin, sqrt, to_radians = math.cos, math.sin, math.sqrt, _TO_RADIANS
    roots = []
    for lat2, lon2 in zip(lats, lons):
        phi2 = lat2 * to_radians
        s, t = sin((phi2 - phi1) / 2.0), sin((lon2 * to_radians - lam1) / 2.0)
        a = s * s + cos_phi1 * cos(phi2) * (t * t)  # never below 0: cosines of latitudes are not negative
        roots.append(1.0 if a > 1.0 else sqrt(a))  # NumPy's clip: 1 above it, a NaN kept
    distances: np.ndarray = np.arcsin(roots)
    distances *= 2.0 * EARTH_RADIUS_KM
    return distances


def format_km(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.1f} km" if value < 100 else f"{value:,.0f} km"


def miles_and_km(value_km: float) -> str:
    """'3.4 miles (5.5 km)': the one way a distance is written for people."""
    miles = value_km / KM_PER_MILE
    if miles < 0.1:
        return "less than 0.1 miles (160 m)"  # 0.1 miles is 161 m
    if miles < 10:  # so value_km < 100 too: both figures in tenths
        # The tenths from the table (`_TENTHS`) instead of two float formats (~2k instructions each; every
        # result's explanation writes a distance). The same strings: below 1000 the product x * 10 is within
        # 1.2e-13 of the exact one, so outside a band of 1e-4 around a half its nearest integer is the one
        # the format rounds the exact x * 10 to (a floor that misses an integer by that much rounds to it all
        # the same). A figure in the band (a tie, or near one) goes to the formats below.
        m, k = miles * 10.0, value_km * 10.0
        m_whole, k_whole = floor(m), floor(k)
        m_part, k_part = m - m_whole, k - k_whole  # exact: a double's fractional part is a double
        if not (0.4999 < m_part < 0.5001 or 0.4999 < k_part < 0.5001):
            return _MILES_OPEN[m_whole + (m_part > 0.5)] + _KM_CLOSE[k_whole + (k_part > 0.5)]
    shown = f"{miles:.1f}" if miles < 10 else f"{miles:,.0f}"
    return f"{shown} {'mile' if shown == '1.0' else 'miles'} ({format_km(value_km)})"


def miles_and_km_figures(value_km: float) -> str:
    """'3.9 (6.3)': the same, as a table cell under a heading that names the units ('miles (km)')."""
    return f"{value_km / KM_PER_MILE:.1f} ({value_km:.1f})"
