"""The county names people write that no council has, and the counties each authority lies in: one home for the
hand tables of county names.

People write a county after a town the way their address does: "Plymouth, Devon", "Reading, Berkshire", "Bolton,
Greater Manchester", "Bristol, Avon". The small-area file names each district's council only (Plymouth, Reading,
Bolton, Bristol): the ceremonial counties (Lieutenancies Act 1997), the metropolitan counties (no council since
1986) and the former counties still in addresses and in the NHS's own names (Avon and Wiltshire Mental Health
Partnership, Cleveland, Humber, NHS Sussex), and the counties districts lay in before 1965 and 1974, which postal
addresses kept until 1996 ("Harrow, Middlesex"), are in no file here, so they are listed below, each by its
members: a county council by its name (its districts, as the small-area file gives them) or a district by its ONS
code. `tests/geodata/test_geodata_counties.py` holds every district of the small-area file to a ceremonial county,
and every member to an area of the file.
"""

from __future__ import annotations

from collections.abc import Iterable

from geodata.downloads import NamedPlace, SmallArea, population_centre

_LONDON_BOROUGHS = tuple(f"E09{n:06}" for n in range(1, 34))  # the City of London and the 32 boroughs

# The six metropolitan counties, by their districts' codes (ONS numbers the metropolitan districts, E08, county by
# county): no council since 1986, but the names people use ('Greater Manchester').
METROPOLITAN_COUNTIES = {
    "Greater Manchester": tuple(f"E080000{n:02}" for n in range(1, 11)),
    "Merseyside": tuple(f"E080000{n:02}" for n in range(11, 16)),
    "South Yorkshire": tuple(f"E080000{n:02}" for n in range(16, 20)),
    "Tyne and Wear": ("E08000021", "E08000022", "E08000023", "E08000024", "E08000037"),
    "West Midlands": tuple(f"E080000{n:02}" for n in range(25, 32)),
    "West Yorkshire": tuple(f"E080000{n:02}" for n in range(32, 37)),
}

# The ceremonial counties, each by its county council (by name) and its unitary authorities (E06, by code); the
# metropolitan counties and Greater London are ceremonial counties too. Stockton-on-Tees lies in two (the Tees
# divides it). A county council's own districts lie in the ceremonial county of its name.
CEREMONIAL_COUNTIES: dict[str, tuple[str, ...]] = {
    "Bedfordshire": ("E06000032", "E06000055", "E06000056"),
    "Berkshire": ("E06000036", "E06000037", "E06000038", "E06000039", "E06000040", "E06000041"),
    "Bristol": ("E06000023",),
    "Buckinghamshire": ("E06000042", "E06000060"),
    "Cambridgeshire": ("Cambridgeshire", "E06000031"),
    "Cheshire": ("E06000006", "E06000007", "E06000049", "E06000050"),
    "Cornwall": ("E06000052", "E06000053"),
    "County Durham": ("E06000001", "E06000004", "E06000005", "E06000047"),
    "Cumbria": ("E06000063", "E06000064"),
    "Derbyshire": ("Derbyshire", "E06000015"),
    "Devon": ("Devon", "E06000026", "E06000027"),
    "Dorset": ("E06000058", "E06000059"),
    "East Riding of Yorkshire": ("E06000010", "E06000011"),
    "East Sussex": ("East Sussex", "E06000043"),
    "Essex": ("Essex", "E06000033", "E06000034"),
    "Gloucestershire": ("Gloucestershire", "E06000025"),
    "Greater London": _LONDON_BOROUGHS,
    "Hampshire": ("Hampshire", "E06000044", "E06000045"),
    "Herefordshire": ("E06000019",),
    "Hertfordshire": ("Hertfordshire",),
    "Isle of Wight": ("E06000046",),
    "Kent": ("Kent", "E06000035"),
    "Lancashire": ("Lancashire", "E06000008", "E06000009"),
    "Leicestershire": ("Leicestershire", "E06000016"),
    "Lincolnshire": ("Lincolnshire", "E06000012", "E06000013"),
    "Norfolk": ("Norfolk",),
    "North Yorkshire": ("E06000002", "E06000003", "E06000004", "E06000014", "E06000065"),
    "Northamptonshire": ("E06000061", "E06000062"),
    "Northumberland": ("E06000057",),
    "Nottinghamshire": ("Nottinghamshire", "E06000018"),
    "Oxfordshire": ("Oxfordshire",),
    "Rutland": ("E06000017",),
    "Shropshire": ("E06000020", "E06000051"),
    "Somerset": ("E06000022", "E06000024", "E06000066"),
    "Staffordshire": ("Staffordshire", "E06000021"),
    "Suffolk": ("Suffolk",),
    "Surrey": ("Surrey",),
    "Warwickshire": ("Warwickshire",),
    "West Sussex": ("West Sussex",),
    "Wiltshire": ("E06000030", "E06000054"),
    "Worcestershire": ("Worcestershire",),
    **METROPOLITAN_COUNTIES,
}

# Counties abolished since 1974 whose names addresses and the NHS still use: Avon (1996; Avon and Wiltshire Mental
# Health Partnership NHS Trust), Cleveland (1996; Cleveland Police), Humberside (1996; Humberside Police) and Sussex
# (one county until 1889, one ICB today: NHS Sussex).
FORMER_COUNTIES: dict[str, tuple[str, ...]] = {
    "Avon": ("E06000022", "E06000023", "E06000024", "E06000025"),
    "Cleveland": ("E06000001", "E06000002", "E06000003", "E06000004"),
    "Humberside": ("E06000010", "E06000011", "E06000012", "E06000013"),
    "Sussex": ("East Sussex", "West Sussex", "E06000043"),
}

# Districts that addresses still file under a county they have left: the counties before London's (1965) and the
# metropolitan counties' (1974) reorganisations, which Royal Mail's postal counties kept until 1996 ('Harrow,
# Middlesex', 'Croydon, Surrey', 'Bolton, Lancashire', 'Coventry, Warwickshire', 'Hull, North Humberside'). Of the
# NHS website's 2019 hospitals and clinics in `../shared/data/services`, 129 of 875 towns and counties were so
# written. A district is filed under each county it lay in, wholly or in part. These tell a place apart by the county
# typed after it, never make a county's place: Kent's centre is its council's.
OLD_COUNTIES: dict[str, tuple[str, ...]] = {
    "Cheshire": ("E08000007", "E08000008", "E08000009", "E08000015"),  # Stockport, Tameside, Trafford, Wirral
    "County Durham": ("E08000023", "E08000024", "E08000037"),  # South Tyneside, Sunderland, Gateshead
    # Barking and Dagenham, Havering, Newham, Redbridge, Waltham Forest
    "Essex": ("E09000002", "E09000016", "E09000025", "E09000026", "E09000031"),
    "Hertfordshire": ("E09000003",),  # Barnet
    "Kent": ("E09000004", "E09000006", "E09000011", "E09000023"),  # Bexley, Bromley, Greenwich, Lewisham
    # Greater Manchester but Stockport; Knowsley, Liverpool, St Helens, Sefton; Halton, Warrington; Furness
    "Lancashire": tuple(f"E080000{n:02}" for n in (1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14))
    + ("E06000006", "E06000007", "E06000064"),
    # Barnet, Brent, Camden, the City, Ealing, Enfield, Hackney, Hammersmith and Fulham, Haringey, Harrow,
    # Hillingdon, Hounslow, Islington, Kensington and Chelsea, Richmond upon Thames (Twickenham), Tower Hamlets,
    # Westminster; and Spelthorne (Staines, Ashford, Sunbury), in Surrey since 1965
    "Middlesex": tuple(f"E09{n:06}" for n in (3, 5, 7, 1, 9, 10, 12, 13, 14, 15, 17, 18, 19, 20, 27, 30, 33))
    + ("E07000213",),
    "North Humberside": ("E06000010", "E06000011"),  # Kingston upon Hull, East Riding of Yorkshire
    "Northumberland": ("E08000021", "E08000022"),  # Newcastle upon Tyne, North Tyneside
    "South Humberside": ("E06000012", "E06000013"),  # North East Lincolnshire, North Lincolnshire
    "Staffordshire": ("E08000028", "E08000030", "E08000031"),  # Sandwell, Walsall, Wolverhampton
    # Croydon, Kingston upon Thames, Lambeth, Merton, Richmond upon Thames, Southwark, Sutton, Wandsworth
    "Surrey": tuple(f"E09{n:06}" for n in (8, 21, 22, 24, 27, 28, 29, 32)),
    "Warwickshire": ("E08000025", "E08000026", "E08000029"),  # Birmingham, Coventry, Solihull
    # West and South Yorkshire, and the districts its parts went to: North Yorkshire (Harrogate, Craven, Selby), the
    # East Riding (Goole), Oldham (Saddleworth), Pendle (Barnoldswick), Ribble Valley (Bowland), Westmorland and
    # Furness (Sedbergh). Old NHS addresses write it 'Yorkshire(West Riding)', as 'Yorkshire(East Riding)' for the
    # East Riding, whose council keeps its name. Loose by design: those councils are taken whole, so a town of theirs
    # never in the Riding ('Scarborough, Yorkshire(West Riding)') is placed without a word; the county written only
    # chooses among a name's namesakes, and the town named is the one there is.
    "West Riding of Yorkshire": METROPOLITAN_COUNTIES["West Yorkshire"] + METROPOLITAN_COUNTIES["South Yorkshire"]
    + ("E06000065", "E06000011", "E08000004", "E07000122", "E07000124", "E06000064"),
    "Worcestershire": ("E08000027",),  # Dudley
}

# The short forms of county names that addresses and people use ('Notts', 'Herts'), found as typed, never by
# spelling: as spelling candidates 'Hants' stood nearer 'Atlantis' than any place. Before, 'Lincs' was taken by
# spelling as Lings, West Northamptonshire, and 'Oxon' as Oxton, Nottinghamshire.
SHORT_FORMS = {
    "Bedfordshire": "Beds", "Berkshire": "Berks", "Buckinghamshire": "Bucks", "Cambridgeshire": "Cambs",
    "County Durham": "Co Durham", "Derbyshire": "Derbys", "East Riding of Yorkshire": "East Yorkshire",
    "Gloucestershire": "Glos", "Hampshire": "Hants", "Hertfordshire": "Herts", "Lancashire": "Lancs",
    "Leicestershire": "Leics", "Lincolnshire": "Lincs", "Middlesex": "Middx", "Northamptonshire": "Northants",
    "Nottinghamshire": "Notts", "Oxfordshire": "Oxon", "Shropshire": "Shrops", "Staffordshire": "Staffs",
    "Warwickshire": "Warks", "Wiltshire": "Wilts", "Worcestershire": "Worcs"}


# Names of several counties at once, which a person typing one is asked to choose among: the three ridings'
# successors and the metropolitan counties that took the rest. Before, 'Yorkshire' was 'not a town, city or council
# area rehabmap knows', with the nearest names (three of the four) as an aside.
ASKED_AMONG = {"Yorkshire": ("North Yorkshire", "West Yorkshire", "South Yorkshire", "East Riding of Yorkshire")}


def _groups() -> dict[str, tuple[str, ...]]:
    return {**CEREMONIAL_COUNTIES, **FORMER_COUNTIES}


def _is_member(area: SmallArea, members: tuple[str, ...]) -> bool:
    return area.lad_code in members or (area.upper_tier != area.lad_name and area.upper_tier in members)


def county_councils(small_areas: Iterable[SmallArea]) -> dict[str, tuple[str, str]]:
    """Each district of a county council (E07…) → that council's code (E10…) and name: the upper tier whose
    services (statutory advocacy) serve the whole county. A unitary authority is its own upper tier: not here."""
    return {area.lad_code: (area.upper_tier_code, area.upper_tier) for area in small_areas
            if area.upper_tier_code != area.lad_code}


def counties_of(small_areas: Iterable[SmallArea]) -> dict[str, list[str]]:
    """Each district's code → the names of the counties it lies in that people write after a place there: its
    county council, its ceremonial, former and old counties, and their short forms. What lets "Plymouth, Devon"
    find Plymouth, whose council is Plymouth's own, and "Harrow, Middlesex" Harrow."""
    tables = (CEREMONIAL_COUNTIES, FORMER_COUNTIES, OLD_COUNTIES)
    within: dict[str, dict[str, None]] = {}
    for area in {area.lad_code: area for area in small_areas}.values():
        names = within.setdefault(area.lad_code, {})
        if area.upper_tier != area.lad_name:
            names[area.upper_tier] = None
        names.update((county, None) for table in tables for county, members in table.items()
                     if _is_member(area, members))
    return {code: [name for county in counties for name in (county, SHORT_FORMS.get(county)) if name]
            for code, counties in within.items()}


def read_county_centres(small_areas: list[SmallArea], councils: set[str]) -> list[NamedPlace]:
    """Each county council (an upper-tier authority with districts of its own: Kent, Hertfordshire), and each
    ceremonial or former county no council is named after (Greater Manchester, Berkshire, Avon), at the
    `population_centre` of its LSOAs. `councils`: the names of the local authorities, whose places they are
    already (Cornwall; Buckinghamshire is its council, not the ceremonial county that adds Milton Keynes)."""
    by_county: dict[str, list[SmallArea]] = {}
    for area in small_areas:
        if area.upper_tier != area.lad_name:
            by_county.setdefault(area.upper_tier, []).append(area)
    named = set(by_county) | councils
    for county, members in _groups().items():
        if county not in named:
            by_county[county] = [area for area in small_areas if _is_member(area, members)]
    return [NamedPlace(name, None, *centre, "county") for name, areas in by_county.items()
            if (centre := population_centre(areas)) is not None]
