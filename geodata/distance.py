"""Great-circle distances in kilometres, and how a distance reads to a person.

The scalar and the vectorised forms use the same sphere as geopy's `great_circle`, so a distance shown for
one service and the distances used to rank thousands of services never disagree. Every distance a person
reads (pages, the clinicians' explanation, the command line) is in miles with km in brackets, as NHS.UK
writes them, from `miles_and_km`; machine fields stay numbers in km, with the unit in the field's name.
"""

from __future__ import annotations

import numpy as np

# geopy's mean radius (`geopy.distance.EARTH_RADIUS`, which tests/geodata checks it against), written here so
# that importing the distances does not import geopy (and requests, urllib3...): ~0.3 s of CPU in each process.
EARTH_RADIUS_KM: float = 6371.009
KM_PER_MILE = 1.609344


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


def haversine_km_radians(phi1: np.ndarray, lam1: np.ndarray, cos_phi1: np.ndarray, phi2: np.ndarray,
                         lam2: np.ndarray, cos_phi2: np.ndarray) -> np.ndarray:
    """`haversine_km_pairs` from latitudes and longitudes already in radians, with the latitudes' cosines:
    an index keeps these per row, so a query computes none of them again. The same floats, bit for bit."""
    a = np.sin((phi2 - phi1) / 2.0) ** 2 + cos_phi1 * cos_phi2 * np.sin((lam2 - lam1) / 2.0) ** 2
    distances: np.ndarray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distances


def haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Distances from one point to many."""
    return haversine_km_pairs(lat, lon, lats, lons)


def format_km(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.1f} km" if value < 100 else f"{value:,.0f} km"


def miles_and_km(value_km: float) -> str:
    """'3.4 miles (5.5 km)': the one way a distance is written for people."""
    miles = value_km / KM_PER_MILE
    if miles < 0.1:
        return "less than 0.1 miles (160 m)"  # 0.1 miles is 161 m
    shown = f"{miles:.1f}" if miles < 10 else f"{miles:,.0f}"
    return f"{shown} {'mile' if shown == '1.0' else 'miles'} ({format_km(value_km)})"


def miles_and_km_figures(value_km: float) -> str:
    """'3.9 (6.3)': the same, as a table cell under a heading that names the units ('miles (km)')."""
    return f"{value_km / KM_PER_MILE:.1f} ({value_km:.1f})"
