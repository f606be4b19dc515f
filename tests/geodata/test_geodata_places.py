import pytest

from geodata import Geography
from geodata.places import place_key
from geodata.errors import UnknownPlace


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("St. Albans", "st albans"),
        ("Saint Albans", "st albans"),
        ("NEWCASTLE-UPON-TYNE", "newcastle upon tyne"),
        ("King's Lynn", "kings lynn"),
        ("  Stoke-on-Trent ", "stoke on trent"),
        ("Brighton & Hove", "brighton and hove"),
    ],
)
def test_place_key_ignores_case_and_punctuation(given: str, key: str) -> None:
    assert place_key(given) == key


def test_town(geography: Geography) -> None:
    leeds = geography.places.lookup("leeds")
    assert (leeds.name, leeds.lat, leeds.lon) == ("Leeds", 53.79648, -1.54785)


@pytest.mark.parametrize("name", ["Newcastle upon Tyne", "newcastle-upon-tyne"])
def test_multi_word_town(geography: Geography, name: str) -> None:
    assert geography.places.lookup(name).name == "Newcastle upon Tyne"


@pytest.mark.parametrize("name", ["St Albans", "St. Albans", "saint albans"])
def test_abbreviated_saint(geography: Geography, name: str) -> None:
    place = geography.places.lookup(name)
    assert (place.name, place.county) == ("St Albans", "Hertfordshire")


def test_shared_name_goes_to_the_most_populous(geography: Geography) -> None:
    # Richmond (London, 21k) over Richmond (North Yorkshire, 8k).
    assert geography.places.lookup("Richmond").county == "Greater London"
    assert geography.places.lookup("Newport").county == "Isle of Wight"


def test_local_authority_names_at_their_population_weighted_centre(geography: Geography) -> None:
    kirklees = geography.places.lookup("Kirklees")
    assert kirklees.name == "Kirklees"
    assert (kirklees.lat, kirklees.lon) == pytest.approx((53.6627, -1.7298), abs=1e-3)
    assert geography.places.lookup("County Durham").name == "County Durham"
    assert geography.places.lookup("City of Bristol").name == "City of Bristol"


def test_unknown_place_is_named(geography: Geography) -> None:
    with pytest.raises(UnknownPlace, match="'Atlantis'"):
        geography.places.lookup(" Atlantis ")
