"""Which rows can matter to a nearest-first answer, told from unit vectors instead of great-circle distances.

A match reads every passing row of its radius's box (~1.7k at 100k services) to cut the radius, count and
rank them, though it shows ten: the haversine's two sines and an arcsine a row were a sixth of its
instructions. The cosine of the angle between two points is the dot product of their unit vectors (three
products and two sums a row), and it orders points as the distance does, up to rounding. So it only decides
which rows cannot matter, with a margin (`MARGIN`) far above any rounding; the rows it cannot decide get
their distances as before (`haversine_km`), and those distances alone cut, rank and are shown. The answers
are the ones distances alone give, by construction.

Why the margin holds. Let θ be the true angle between the two points the stored degrees name. A computed
cosine c (a component of a unit vector is within ~5e-16 of the true one: a conversion to radians, a cosine
or sine and a product, each within an ulp; the dot of two such vectors with its sums within ~2e-15) and a
computed distance h (the haversine is well conditioned below a quarter of the globe, and a match's radius is
at most 1000 km; its inputs, in radians, are within an ulp, so h is within ~1e-11 km of R·θ, R·2e-15 rad)
give, with δ = 1e-12 ≫ both, and as |d cos θ / dθ| ≤ 1:
- c ≥ cos(r/R) + δ means cos θ ≥ cos(r/R) + δ - 2e-15, so R·θ ≤ r - 6e-9 km and h ≤ r; c ≤ cos(r/R) - δ
  likewise means h > r; only the rows between are measured (`ServiceColumns._near`);
- if k rows have c ≥ c_k, the k-th smallest h is at most that of an angle of cosine c_k - 2e-15, so a row
  whose h is at most it has c ≥ c_k - δ (`search._pass.reach`): every row among the k nearest, ties at the k-th
  distance included, is a candidate.
"""

from __future__ import annotations

import math

import numpy as np

from geodata.distance import EARTH_RADIUS_KM

MARGIN = 1e-12


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points (degrees) as unit vectors from the Earth's centre: their x, y and z."""
    phi, lam = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    return cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)


def unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    """The point (degrees) as a unit vector (x, y, z): a row's cosine with it is the row's x times its x, then plus
    y times its y, then plus z times its z, in that order (`search._pass.near`)."""
    phi, lam = math.radians(lat), math.radians(lon)
    return math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)


def cosine_of_km(radius_km: float) -> float:
    """The cosine of the angle a great-circle distance spans (-1 from half the globe's circumference on)."""
    return math.cos(min(radius_km / EARTH_RADIUS_KM, math.pi))
