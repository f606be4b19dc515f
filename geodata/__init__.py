"""Geography for rehabmap, offline: postcodes and place names to points, points to NHS and council areas,
and distances. Everything is read from a folder built once from official ONS files (`geodata.build`).
"""

from geodata.areas import Area, AreaCodes, AreaIndex
from geodata.build import BuildSummary, build_geodata
from geodata.distance import great_circle_km, haversine_km, haversine_km_pairs
from geodata.geography import Geography, Home
from geodata.places import PlaceGazetteer, PlacePoint
from geodata.postcodes import ParsedPostcode, PostcodeDirectory, PostcodePoint, parse_postcode

__all__ = [
    "Area",
    "AreaCodes",
    "AreaIndex",
    "BuildSummary",
    "Geography",
    "Home",
    "ParsedPostcode",
    "PlaceGazetteer",
    "PlacePoint",
    "PostcodeDirectory",
    "PostcodePoint",
    "build_geodata",
    "great_circle_km",
    "haversine_km",
    "haversine_km_pairs",
    "parse_postcode",
]
