"""Great-circle distances in kilometres.

The scalar and the vectorised forms use the same sphere as geopy's `great_circle`, so a distance shown for
one service and the distances used to rank thousands of services never disagree.
"""

from __future__ import annotations

import numpy as np
from geopy.distance import EARTH_RADIUS, great_circle

EARTH_RADIUS_KM: float = EARTH_RADIUS


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(great_circle((lat1, lon1), (lat2, lon2)).km)


def haversine_km_pairs(
    lats1: np.ndarray | float, lons1: np.ndarray | float, lats2: np.ndarray | float, lons2: np.ndarray | float
) -> np.ndarray:
    """Element-wise distances (arrays broadcast), for bulk work where a geopy call per pair is too slow."""
    phi1 = np.radians(np.asarray(lats1, dtype=float))
    phi2 = np.radians(np.asarray(lats2, dtype=float))
    dphi = phi2 - phi1
    dlam = np.radians(np.asarray(lons2, dtype=float)) - np.radians(np.asarray(lons1, dtype=float))
    a = np.sin(dphi / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2.0) ** 2
    distances: np.ndarray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distances


def haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Distances from one point to many."""
    return haversine_km_pairs(lat, lon, lats, lons)
