import csv
import sqlite3
from pathlib import Path

import pytest

from geodata.geography import Geography
from geodata.postcodes import ParsedPostcode, parse_postcode
from geodata.errors import InvalidPostcode, UnknownPostcode, OutsideEngland


@pytest.mark.parametrize("text", ["LS9 7TF", "ls97tf", " LS9  7TF ", "ls9 7tf", "LS97TF", "Ls9\t7tF"])
def test_full_postcode_in_any_case_and_spacing(text: str) -> None:
    assert parse_postcode(text) == ParsedPostcode("full", "LS9 7TF", "LS9")


@pytest.mark.parametrize(
    ("text", "value", "district"),
    [
        ("M1 1AA", "M1 1AA", "M1"),  # A9
        ("M11 1AA", "M11 1AA", "M11"),  # A99
        ("W1A 0AX", "W1A 0AX", "W1A"),  # A9A
        ("SE1 2DL", "SE1 2DL", "SE1"),  # AA9
        ("DN55 1PT", "DN55 1PT", "DN55"),  # AA99
        ("SW1A 1AA", "SW1A 1AA", "SW1A"),  # AA9A
        ("EC1A1BB", "EC1A 1BB", "EC1A"),
    ],
)
def test_every_outward_code_shape(text: str, value: str, district: str) -> None:
    assert parse_postcode(text) == ParsedPostcode("full", value, district)


@pytest.mark.parametrize("text", ["ls9 7", "LS9 7", " LS9   7 "])
def test_sector(text: str) -> None:
    assert parse_postcode(text) == ParsedPostcode("sector", "LS9 7", "LS9")


@pytest.mark.parametrize("text", ["LS9", "ls9", " ls9 ", "SW1A"])
def test_district(text: str) -> None:
    parsed = parse_postcode(text)
    assert parsed.kind == "district"
    assert parsed.value == text.strip().upper()


def test_unspaced_sector_reads_as_district() -> None:
    assert parse_postcode("LS97") == ParsedPostcode("district", "LS97", "LS97")


@pytest.mark.parametrize("text", ["", "   ", "LS9 7TFX", "9LS 7TF", "LS 7TF", "LS9 TTF", "hello", "LS9-7TF"])
def test_malformed_postcode_is_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidPostcode) as raised:
        parse_postcode(text)
    # A blank one is named as blank (before: "'' is not a valid UK postcode", quoting nothing).
    said = f"'{text.strip()}'" if text.strip() else "The postcode given is blank, which names no place."
    assert said in raised.value.message
    assert raised.value.field == "postcode"


def test_long_junk_is_cut_in_the_message() -> None:
    with pytest.raises(InvalidPostcode) as raised:
        parse_postcode("x" * 500)
    assert len(raised.value.message) < 200


def test_full_postcode_lookup(geography: Geography) -> None:
    point = geography.postcodes.lookup("ls97tf")
    assert (point.lat, point.lon) == (53.806869, -1.520359)
    assert point.lad_code == "E08000035"
    assert point.precision == "postcode"
    assert point.query.value == "LS9 7TF"


def test_sector_and_district_lookup(geography: Geography) -> None:
    sector = geography.postcodes.lookup("LS9 7")
    district = geography.postcodes.lookup("ls9")
    assert sector.precision == "sector" and district.precision == "district"
    assert sector.lad_code == district.lad_code == "E08000035"
    # ONS-derived centroids: means of the postcodes in the sector / district.
    assert (sector.lat, sector.lon) == pytest.approx((53.803172, -1.519848))
    assert (district.lat, district.lon) == pytest.approx((53.79852, -1.51127))


def test_retired_outward_codes_still_resolve(geography: Geography) -> None:
    assert geography.postcodes.lookup("W1M 0AA").lad_code == "E09000033"


def test_2025_lad_codes_are_expressed_in_the_boundary_vintage(geography: Geography) -> None:
    # The Nov 2025 directory codes Sheffield E08000039; the 2024 boundaries know it as E08000019.
    assert geography.postcodes.lookup("S1 2HE").lad_code == "E08000019"
    assert geography.manifest["lad_recodes"] == {"E08000038": "E08000016", "E08000039": "E08000019"}


@pytest.mark.parametrize(
    ("text", "shown"), [("ZZ1 1ZZ", "ZZ1 1ZZ"), ("ls9 9zz", "LS9 9ZZ"), ("LS9 4", "LS9 4"), ("ZZ9", "ZZ9")]
)
def test_unknown_postcode_sector_or_district(geography: Geography, text: str, shown: str) -> None:
    with pytest.raises(UnknownPostcode) as raised:
        geography.postcodes.lookup(text)
    assert f"'{shown}'" in raised.value.message
    assert raised.value.code == "unknown_postcode"  # the API makes it a 404 (tests/api/test_match.py)


@pytest.mark.parametrize(
    ("text", "where"),
    [("EH1 1YZ", "Scotland"), ("G1 1XQ", "Scotland"), ("CF10 1EP", "Wales"), ("LL11", "Wales"),
     ("BT1 5GS", "Northern Ireland")],
)
def test_a_postcode_in_another_nation_is_told_england_only(geography: Geography, text: str, where: str) -> None:
    """Before: 'not found in the ONS Postcode Directory for England. Check it', which sent people round."""
    with pytest.raises(OutsideEngland) as raised:
        geography.postcodes.lookup(text)
    assert f"is a postcode in {where}. rehabmap lists services in England only" in raised.value.message
    assert "Check it" not in raised.value.message


def test_a_border_area_and_an_english_g_area_are_not_taken_for_scotland(geography: Geography) -> None:
    with pytest.raises(UnknownPostcode):
        geography.postcodes.lookup("TD15 9ZZ")  # TD crosses the border: the directory decides
    assert geography.postcodes.lookup("GL1 2EH").lad_code  # Gloucester: GL is not G


def test_a_lookup_takes_no_file_lock_on_the_build(tmp_path) -> None:
    """A build is never changed in place, so it is read as immutable: no lock, no change check, no journal
    look-up per query (~10 system calls a lookup before). Seen from outside: a lookup answers while another
    connection holds the file's exclusive lock (before: 'database is locked' after the 5 s busy wait)."""
    import sqlite3

    from geodata.build import _SCHEMA
    from geodata.postcodes import PostcodeDirectory

    path = tmp_path / "geodata.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA)
        db.execute("INSERT INTO postcodes VALUES ('LS97TF', 'LS9 7TF', 53.79648, -1.54785, 'E08000035', NULL)")
    directory = PostcodeDirectory(path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        point = directory.lookup("LS9 7TF")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        directory.close()
    assert (point.lat, point.lon, point.lad_code, point.precision) == (53.79648, -1.54785, "E08000035", "postcode")


_SHROPSHIRE, _NORTH_EAST, _HEREFORDSHIRE = ("NHS Shropshire, Telford and Wrekin Integrated Care Board",
                                             "NHS North East and North Cumbria Integrated Care Board",
                                             "NHS Herefordshire and Worcestershire Integrated Care Board")


@pytest.mark.parametrize(("text", "nation", "english", "full", "icb"), [
    ("LL14", "Wales", "28 of its postcodes are", "LL14 5DA", _SHROPSHIRE),
    ("TD9", "Scotland", "6 of its postcodes are", "TD9 0TJ", _NORTH_EAST),
    ("TD5", "Scotland", "1 of its postcodes is", "TD5 8AR", _NORTH_EAST),
    ("SY22 5", "Wales", "1 of its postcodes is", "SY22 5WD", _SHROPSHIRE),
    # Their points lie in England, within 5 km of the border.
    ("LL14 5", "Wales", "28 of its postcodes are", "LL14 5BU", _SHROPSHIRE),
    ("LD7", "Wales", "24 of its postcodes are", "LD7 1DY", _SHROPSHIRE),
    ("NP16", "Wales", "208 of its postcodes are", "NP16 7AA", "NHS Gloucestershire Integrated Care Board"),
    ("NP25", "Wales", "37 of its postcodes are", "NP25 3SR", _HEREFORDSHIRE),
    ("DG16", "Scotland", "5 of its postcodes are", "DG16 5HT", _NORTH_EAST),
    ("TD12", "Scotland", "98 of its postcodes are", "TD12 4FH", _NORTH_EAST),
])
def test_a_district_across_the_border_asks_for_the_full_postcode(geography: Geography, text: str, nation: str,
                                                                 english: str, full: str, icb: str) -> None:
    """Most of LL14's postcodes are in Wrexham, and its point (their mean) lies in Wales, but 28 of them are in
    Shropshire. Before, "That location is outside England (more than 5 km from any English NHS area)", as of a place
    wholly elsewhere, though LL14 5DA is found in Shropshire. Now the answer says the district (or sector) crosses
    the border and asks for the full postcode, which tells the side; one English postcode "is" (it read "1 of its
    postcodes are"). Where such a point lies in England, within 5 km of the border (LD7, `LL14 5`, NP16, NP25, DG16,
    TD12), the answer was a search from it, in Shropshire, the Forest of Dean or Northumberland, for a person who
    may live in Wales or Scotland: now the same answer, whatever the point."""
    with pytest.raises(OutsideEngland) as raised:
        geography.resolve(postcode=text)
    helped = {"Wales": "NHS 111 Wales (111.wales.nhs.uk), or call 111",
              "Scotland": "NHS inform (www.nhsinform.scot), or call NHS 24 on 111"}[nation]
    assert raised.value.message == (
        f"'{text}' is a postcode {'sector' if ' ' in text else 'district'} that crosses the border between England "
        f"and {nation}: its main local authority is in {nation}, and {english} in England. Give the full postcode, "
        "so that rehabmap can tell which side of the border it is on (rehabmap lists services in England only: for "
        f"services in {nation}, see {helped}).")
    assert raised.value.field == "postcode"
    assert geography.resolve(postcode=full).areas.icb_name == icb


# Of the Nov 2025 directory: every sector and district whose main local authority is Welsh or Scottish (each also
# holds English postcodes), and so every one refused.
_ACROSS_THE_BORDER = {
    "sectors": {"CH4 0", "DG16 5", "HR3 5", "LD7 1", "LD8 2", "LL14 5", "NP25 3", "NP25 4", "NP25 5", "NP5 3", "NP5 4",
                "NP6 6", "NP7 8", "SY10 0", "SY13 3", "SY15 6", "SY21 8", "SY22 5", "SY22 6", "TD12 4", "TD5 8",
                "TD9 0"},
    "districts": {"DG16", "LD7", "LD8", "LL14", "NP16", "NP25", "NP5", "NP6", "NP7", "SY15", "SY21", "SY22", "TD12",
                  "TD5", "TD9"},
}


@pytest.mark.parametrize("table", ["sectors", "districts"])
def test_a_sector_or_district_is_refused_only_where_its_main_local_authority_is_not_english(
        geography: Geography, geodata_dir: Path, table: str) -> None:
    """Every sector and district of the build, resolved: those refused are the 22 sectors and 15 districts whose main
    local authority is Welsh or Scottish, each told that it crosses the border; every one whose main local authority
    is English is found, at its point, however many Welsh or Scottish postcodes it also holds (CH4: 687 English of
    ONS's 1,159). Before, 17 of those sectors and 8 of those districts (`LL14 5`, LD7, NP16, …), whose points lie in
    England, were searched from them."""
    with sqlite3.connect(geodata_dir / "geodata.sqlite") as db:
        keys = [key for (key,) in db.execute(f"SELECT {table[:-1]} FROM {table}")]
    refused = {}
    for key in keys:
        try:
            geography.resolve(postcode=key)
        except OutsideEngland as error:
            refused[key] = error.message
    assert set(refused) == _ACROSS_THE_BORDER[table]
    assert all("crosses the border" in message for message in refused.values())


@pytest.mark.parametrize(("text", "english", "counted", "council"), [
    ("HR3", 267, 502, "Herefordshire, County of"), ("CH4", 687, 1159, "Cheshire West and Chester"),
    ("CA6 5", 195, 312, "Cumberland")])
def test_an_area_whose_main_local_authority_is_english_is_searched_from_its_point(
        geography: Geography, geodata_dir: Path, data_dir: Path, text: str, english: int, counted: int,
        council: str) -> None:
    """Decided in session 53, and kept: a district or sector that crosses the border but whose most common local
    authority is English is searched from its point, the mean of its postcodes, asking no full postcode. README
    (Geography) gives these counts: of the postcodes ONS's centroid file counts, those in the build's England."""
    home, point = geography.resolve(postcode=text), geography.postcodes.lookup(text)
    assert ((home.lat, home.lon), home.areas.lad_name) == ((point.lat, point.lon), council)
    key = text.replace(" ", "")
    with sqlite3.connect(geodata_dir / "geodata.sqlite") as db:  # a full postcode's key: the area's and 2 or 3 more
        [(found,)] = db.execute("SELECT count(*) FROM postcodes WHERE key LIKE ? AND length(key) = ? AND lad LIKE 'E%'",
                                (f"{key}%", len(key) + (2 if " " in text else 3)))
    column = "sector" if " " in text else "outcode"
    with (data_dir / "postcodes" / f"gb_{column}_centroids_onspd_nov2025.csv").open(newline="") as rows:
        [total] = [int(row["n_postcodes"]) for row in csv.DictReader(rows) if row[column] == text]
    assert (found, total) == (english, counted)
