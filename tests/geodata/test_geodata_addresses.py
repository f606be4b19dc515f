"""Places typed as real addresses write them: the town and county of each NHS website hospital and clinic (the
2019 exports in `../shared/data/services`, each with its own coordinates), looked up as "Town, County".

Before geodata format 7 (session 40), 551 of the 875 distinct pairs were found: a county after a comma had to be
the town's own council or county council, so "Plymouth, Devon", "Bolton, Greater Manchester", "Harrow, Middlesex"
and "Hull, North Humberside" were each "not a town, city or council area rehabmap knows"."""

import csv
from collections import Counter
from pathlib import Path

import pytest

from geodata.distance import great_circle_km
from geodata.errors import GeodataError, PlaceNotInCounty
from geodata.geography import Geography

FILES = ("nhs_website_hospitals_2019.csv", "nhs_website_clinics_2019.csv")


@pytest.fixture(scope="module")
def addresses(data_dir: Path) -> dict[str, tuple[float, float]]:
    """Each distinct "Town, County" (as the file spells it, first seen) → the point of the first service there."""
    found: dict[str, tuple[float, float]] = {}
    for name in FILES:
        with open(data_dir / "services" / name, newline="", encoding="utf-8-sig", errors="replace") as handle:
            for row in csv.DictReader(handle):
                town, county = row["City"].strip(), row["County"].strip()
                typed = f"{town}, {county}"
                if town and county and row["Latitude"] and typed.lower() not in {k.lower() for k in found}:
                    found[typed] = (float(row["Latitude"]), float(row["Longitude"]))
    return found


def test_real_addresses_town_and_county_find_the_town_and_never_another(
        geography: Geography, addresses: dict[str, tuple[float, float]]) -> None:
    """Every place found is within 25 km of the service whose address named it (never a namesake elsewhere), and
    at least 847 of the 875 are found (835 in session 40; 846 in session 41, with "Burton-On-Trent, Staffordshire",
    "Litchfield, Staffordshire", "Driffield, Yorkshire(East Riding)", "Wellington, Somerset", "Cheadle, Cheshire",
    "Staines-Upon-Thames, Middlesex" and five with a post town after the name, "Nailsea, Bristol"; 847 with "Leeds,
    Yorkshire(West Riding)", the county before 1974, as 22 of the clinics write Leeds). Those not found
    name a county the town is not in ("Brighton, West Sussex"), a post town of another county (Tidworth, Wiltshire,
    has "Hampshire"), a street, or a
    town neither GeoNames nor the MSOA names know by its name (Hockley, Essex): each is answered with what
    rehabmap knows of the name, or the names nearest in spelling."""
    outcomes: Counter[str] = Counter()
    far = []
    for typed, (lat, lon) in addresses.items():
        try:
            place = geography.places.lookup(typed)
        except PlaceNotInCounty as error:
            assert error.nearest, typed
            outcomes["not in that county"] += 1
            continue
        except GeodataError as error:
            outcomes[error.code] += 1
            continue
        outcomes["found"] += 1
        if great_circle_km(place.lat, place.lon, lat, lon) > 25:
            far.append((typed, place.label))
    assert len(addresses) == 875
    assert far == []
    assert outcomes["found"] >= 847, outcomes
