"""Neighbourhood names (Harehills, a part of Leeds) from the House of Commons Library's MSOA Names.

GeoNames lists towns and villages, not the parts of a city people live in and type. The HoC Library gives
every MSOA the name locals use for it ('Harehills South', 'Kingston & Southwick'); each name, and each part
of a combined name, is placed at the population-weighted centre of the MSOA's LSOAs, and labelled with its
local authority ('Harehills, Leeds'), which is what tells apart two neighbourhoods of one name.

These names rank below every town, city, village and local authority: a neighbourhood whose name a place also
has is found only with a county it lies in, which no place of the name does ('Loughton, Essex', where GeoNames
has only the Loughtons of Shropshire and Milton Keynes), or asked about beside the places when it is far bigger
than them, or a town split by compass points (`SPLIT_TOWN_SOURCE`) at least half as big; so one never outranks
or replaces a place silently (see `geodata.places`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from geodata.distance import great_circle_km
from geodata.downloads import NamedPlace, SmallArea, population_centre
from geodata.places import NEIGHBOURHOOD_SOURCE, SAME_PLACE_KM, SPLIT_TOWN_SOURCE, place_key

# 'Tadley East, Pamber & Silchester', 'Perry Common - College Road': each part is a name people use.
_PARTS = re.compile(r"\s*(?:,|&|\s-\s)\s*")
# 'Harehills North' and 'Harehills South' are both Harehills to a person who lives there.
_COMPASS = re.compile(r"^(?P<bare>.+?) (?:North|South|East|West|Central|North East|North West|South East|"
                      r"South West)$")
# Parts that name nothing by themselves ('Town Centre & Marlow Hill', 'Sutton Coldfield South & Central'),
# or nothing a person lives in ('Airport', in nine authorities).
_GENERIC_WORDS = frozenset({"the", "town", "city", "centre", "central", "north", "south", "east", "west",
                            "village", "villages", "university", "rural", "airport"})


@dataclass(frozen=True)
class Placed:
    """The neighbourhood names read and placed, and the MSOAs that could not be placed."""

    places: list[NamedPlace]
    unmatched: list[str]  # 2011 codes no 2021 MSOA has (split or merged in 2021): left out, never guessed


def neighbourhood_places(
    names: dict[str, str],
    msoa21_names: dict[str, str],
    small_areas: list[SmallArea],
    lad_names: dict[str, str],
) -> Placed:
    """One place per neighbourhood name and local authority, at the population-weighted centre of every MSOA
    of the authority that gives the name, sized by their residents.

    `names`: MSOA 2011 code → local name; `msoa21_names`: MSOA 2021 code → ONS name; `lad_names`: the name
    an authority is shown by ('Bristol' for 'Bristol, City of').
    """
    lsoas: dict[str, list[SmallArea]] = {}
    for area in small_areas:
        lsoas.setdefault(area.msoa_name, []).append(area)
    given: dict[tuple[str, str], tuple[str, list[SmallArea]]] = {}  # (key, lad code) → (name, LSOAs)
    bare: dict[str, dict[str, tuple[str, list[SmallArea]]]] = {}  # key → lad code → (name, LSOAs)
    unmatched = []
    for code, local_name in names.items():
        areas = lsoas.get(msoa21_names.get(code, ""))
        if not areas:
            unmatched.append(code)
            continue
        lad = areas[0].lad_code
        for name in _names(local_name):
            given.setdefault((place_key(name), lad), (name, []))[1].extend(areas)
            if not _PARTS.search(name) and (match := _COMPASS.match(name)):
                bare.setdefault(place_key(match["bare"]), {}).setdefault(lad, (match["bare"], []))[1].extend(areas)
    split = set()  # (key, lad code) of a town split into compass-named MSOAs, two or more
    for bare_key, by_lad in bare.items():
        for lad, (name, areas) in _apart(by_lad).items():
            given.setdefault((bare_key, lad), (name, []))[1].extend(areas)
            if len({area.msoa_name for area in areas}) > 1:
                split.add((bare_key, lad))
    places = []
    for (name_key, lad), (name, areas) in sorted(given.items()):
        centre = population_centre(_unique(areas))
        if name_key and centre is not None:
            places.append(NamedPlace(name, lad_names.get(lad, areas[0].lad_name), *centre,
                                     SPLIT_TOWN_SOURCE if (name_key, lad) in split else NEIGHBOURHOOD_SOURCE, lad))
    return Placed(places, unmatched)


def _apart(by_lad: dict[str, tuple[str, list[SmallArea]]]) -> dict[str, tuple[str, list[SmallArea]]]:
    """The authorities whose compass-named MSOAs of one name give it bare: each whose parts lie more than
    `SAME_PLACE_KM` from every other authority's. Tufnell Park East (Islington) and West (Camden) are one place
    astride a boundary, 0.8 km apart, so neither half is made 'Tufnell Park'; Wellington North and South (Somerset)
    and East and West (Telford) are two towns 197 km apart, and each is its authority's Wellington. (Measured
    on the 38 names in several authorities: 3.1 km apart at most astride a boundary, 24 km at least between
    two places.)"""
    centres = {lad: population_centre(_unique(areas)) for lad, (_, areas) in by_lad.items()}
    return {lad: named for lad, named in by_lad.items()
            if (here := centres[lad]) is not None and all(
                great_circle_km(here[0], here[1], there[0], there[1]) > SAME_PLACE_KM
                for other, there in centres.items() if other != lad and there is not None)}


def _names(local_name: str) -> list[str]:
    """The whole name and each part of a combined one, without parts that name nothing by themselves."""
    parts = [part for part in _PARTS.split(local_name) if part]
    named = [local_name] + (parts if len(parts) > 1 else [])
    return [name for name in dict.fromkeys(named)
            if not set(name.lower().replace("-", " ").split()) <= _GENERIC_WORDS]


def _unique(areas: Iterable[SmallArea]) -> list[SmallArea]:
    """Each LSOA once, though several names of one MSOA (or one name twice) brought it."""
    return list({area.name: area for area in areas}.values())
