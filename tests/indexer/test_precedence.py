"""Which source's value a merged record shows where two of its records give a field (docs/adr/0017): the mappings'
`supersedes` and the live sources above the dated files (`indexer.precedence`), read by a rebuild and a live write
alike (tests/sync/test_one_service_one_record.py holds the two NHS hospital lists' merged records to it)."""

from __future__ import annotations

import itertools
import random

import pytest

from indexer.merge import Precedence, merge_duplicates
from indexer.pipeline import GeographyPlacer, build_index, prepare_all
from indexer.precedence import PrecedenceInvalid, source_precedence
from indexer.rows import Candidate, Rejection
from indexer.sources import load_source
from indexer.sources.csv_mapping import MAPPINGS_DIR, MappingError, load_mapping
from rehabmap.index.base import ServiceQuery
from rehabmap.record import Service
from search.embedded import EmbeddedIndex, EmbeddedWriter

# A council's dated list of care homes, mapped; its source's name sorts before CQC's, as the store orders sources.
HOMES = "Ref,Home,Postcode,Telephone,Web\nB7,Dovetail House,NG18 2AT,01623 000 000,https://dovetail.example.org\n"
HOMES_MAPPING = ('[source]\nname = "bassetlaw-homes-2019"\ndated = "March 2019"\n{more}[columns]\nid = "Ref"\n'
                 'name = "Home"\npostcode = "Postcode"\nphone = "Telephone"\nwebsite = "Web"\n{columns}'
                 '[constants]\nservice_type = "supported_accommodation"\nsubtype = "residential_24h"\n')
# The list's Dovetail House with its CQC location id, at an older place in Worksop (a real postcode, in Bassetlaw;
# the address made up): CQC's record of the location (the real recording's) is at NG18 2AT, in Mansfield.
MOVED = ("Ref,Home,CQC,Address,Postcode,Telephone,Web\n"
         "B7,Dovetail House,1-112779585,Carlton Road,S80 1AA,01623 000 000,https://dovetail.example.org\n")
MOVED_COLUMNS = 'cqc_location_id = "CQC"\naddress = "Address"\n'
MANSFIELD = "E07000174"  # the district of NG18 2AT; S80 1AA's is Bassetlaw, E07000171


def mapping(folder, file: str, name: str, more: str = "") -> None:
    """A mapping of source `name` in `folder`, with `more` in its [source] table."""
    folder.mkdir(exist_ok=True)
    (folder / file).write_text(f'[source]\nname = "{name}"\n{more}[columns]\nname = "Name"\n', encoding="utf-8")


def homes_and_cqc(folder, data_dir, homes: str = HOMES, columns: str = "") -> list:
    """The council's dated list (`homes`, read by its mapping with `columns` more) and CQC's real recording, as
    read: the list's source sorts before CQC's, so its record is the one kept."""
    (folder / "homes.csv").write_text(homes, encoding="utf-8")
    (folder / "homes.toml").write_text(HOMES_MAPPING.format(more="", columns=columns), encoding="utf-8")
    return [*load_source(folder / "homes.csv", mapping=folder / "homes.toml"),
            *load_source(data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json")]


PLACE_FIELDS = ("address", "town", "county", "postcode", "lat", "lon")


def place(service: Service) -> tuple:
    """Where a record says the service is: what its page shows, and what distance, radius and coverage use."""
    return (*(getattr(service, name) for name in PLACE_FIELDS), service.areas)


def dovetails(folder, data_dir, geography) -> tuple[list, Service, Service]:
    """The rows of the list giving Dovetail House at its older place (`MOVED`) and CQC's, and the two records of
    Dovetail House as the import prepares them: the list's, CQC's."""
    rows = homes_and_cqc(folder, data_dir, MOVED, MOVED_COLUMNS)
    homes, cqc = (s for s in prepare_all([r for r in rows if isinstance(r, Candidate)], GeographyPlacer(geography))
                  if isinstance(s, Service) and s.name == "Dovetail House")
    return rows, homes, cqc


def test_the_2018_hospital_list_supersedes_the_2014_15_one_and_cqc_every_dated_file():
    """As the shipped mappings declare it: the 2014–15 mapping, based on the 2018 one, does not take its
    `supersedes` (it would supersede itself)."""
    assert source_precedence() == Precedence({"nhs-hospitals-2018": frozenset({"nhs-hospitals-2015"})},
                                             frozenset({"cqc"}))
    assert load_mapping(MAPPINGS_DIR / "nhs_website_hospitals_2015.toml").supersedes == ()


def test_a_source_supersedes_those_it_names_and_those_they_supersede(tmp_path):
    """A source name alone, or a list; a source superseded by one superseded in turn is superseded by both."""
    mapping(tmp_path, "a.toml", "a", 'supersedes = "b"\n')
    mapping(tmp_path, "b.toml", "b", 'supersedes = ["c"]\n')
    mapping(tmp_path, "c.toml", "c")

    assert source_precedence(tmp_path).supersedes == {"a": frozenset({"b", "c"}), "b": frozenset({"c"})}


@pytest.mark.parametrize("toml, message", [
    ('supersedes = "a"\n', "mapping a.toml: [source] supersedes names 'a', this mapping's own source: a source "
                           "supersedes others, never itself"),
    ("supersedes = 2015\n", "mapping a.toml: [source] supersedes names the sources whose values this one's replace "
                            "where a merged record has both: a source name or a list of them"),
    ("supersedes = []\n", "mapping a.toml: [source] supersedes names the sources"),
])
def test_a_supersedes_that_names_no_other_source_says_what_to_fix(tmp_path, toml, message):
    mapping(tmp_path, "a.toml", "a", toml)
    with pytest.raises(MappingError) as error:
        load_mapping(tmp_path / "a.toml")
    assert str(error.value).startswith(message)
    read = "cannot be read: " + message.replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(PrecedenceInvalid, match=read) as refused:
        source_precedence(tmp_path)
    assert refused.value.where == str(tmp_path)  # the folder: its message names the file


def test_a_supersedes_naming_a_source_no_mapping_gives_is_refused_naming_the_file_and_the_sources(tmp_path):
    mapping(tmp_path, "a.toml", "a", 'supersedes = ["nhs-hospitals-2105"]\n')
    mapping(tmp_path, "b.toml", "b")
    with pytest.raises(PrecedenceInvalid) as error:
        source_precedence(tmp_path)
    assert error.value.message == (f"mapping a.toml: [source] supersedes names 'nhs-hospitals-2105', which no mapping "
                                   f"in {tmp_path.name}/ gives; it names the sources of the mappings there (a, b)")
    assert error.value.where == str(tmp_path / "a.toml"), "the file the server's log names (`tell_operator`)"


def test_sources_that_supersede_each_other_are_refused_naming_the_cycle(tmp_path):
    mapping(tmp_path, "a.toml", "a", 'supersedes = ["b"]\n')
    mapping(tmp_path, "b.toml", "b", 'supersedes = ["c"]\n')
    mapping(tmp_path, "c.toml", "c", 'supersedes = ["a"]\n')
    with pytest.raises(PrecedenceInvalid) as error:
        source_precedence(tmp_path)
    assert error.value.message.startswith(
        "mapping c.toml: [source] supersedes 'a' makes a cycle (a supersedes b supersedes c supersedes a, in mappings "
        "a.toml, b.toml, c.toml): a source cannot be both above and below another")
    assert error.value.where == str(tmp_path / "c.toml")


def test_a_mapping_beside_its_file_may_not_say_what_it_supersedes(tmp_path):
    """Only the mappings of mappings/ are read for the precedence, by a rebuild and a live write alike: a sidecar's
    `supersedes` would be read by neither, so the file is refused rather than merged as if it were not there."""
    (tmp_path / "homes.csv").write_text(HOMES, encoding="utf-8")
    (tmp_path / "homes.mapping.toml").write_text(
        HOMES_MAPPING.format(more='supersedes = ["nhs-hospitals-2015"]\n', columns=""), encoding="utf-8")
    [refused] = load_source(tmp_path / "homes.csv")
    assert isinstance(refused, Rejection) and refused.origin.line == 0
    assert refused.reason.startswith("mapping homes.mapping.toml: [source] supersedes is read only from the mappings "
                                     "in mappings/")


def test_cqcs_record_of_a_location_supersedes_a_dated_files(tmp_path, data_dir, geography):
    """A council's dated list names Dovetail House (the real CQC recording's) with another phone and a website CQC
    does not give, and its source sorts before CQC's, so its record is the one kept (its id, as the store orders
    them). Before, its phone was shown, being first; CQC's is now, as CQC's record supersedes any dated file's, and
    the list's website still fills what CQC leaves empty; each field names the source that gave it."""
    rows = homes_and_cqc(tmp_path, data_dir)
    index = tmp_path / "index.sqlite"

    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)

    assert [(note.kept, note.merged) for note in report.merged] == [("bassetlaw-homes-2019:B7", "cqc:1-112779585")]
    dovetail = EmbeddedIndex(index).get("bassetlaw-homes-2019:B7")
    assert dovetail is not None and [p.source for p in dovetail.provenance] == ["bassetlaw-homes-2019", "cqc"]
    assert (dovetail.phone, dovetail.website) == ("01623420690", "https://dovetail.example.org")
    assert [dovetail.field_sources[name] for name in ("phone", "website")] == [
        "cqc:mainPhoneNumber", "bassetlaw-homes-2019"], "as CQC's record names its field"


def test_a_merged_records_place_is_all_of_one_records(tmp_path, data_dir, geography):
    """The list gives Dovetail House (its CQC location id) at an older place in Worksop; CQC's record supersedes it,
    so the record shows CQC's address and postcode in Mansfield, and is found, measured and counted there: its point
    and areas are CQC's too, each named by CQC's record, whichever record is kept (its areas, which a record of its own
    names by no source, by CQC's where they moved from it to the list's kept record). Before, the point and areas
    stayed the kept record's: the page said Mansfield, a search measured from Worksop and counted it in Bassetlaw."""
    rows, homes, cqc = dovetails(tmp_path, data_dir, geography)
    assert (homes.postcode, cqc.postcode) == ("S80 1AA", "NG18 2AT") and homes.areas != cqc.areas

    for records in ([homes, cqc], [cqc, homes]):
        [merged], _ = merge_duplicates(records, source_precedence())
        assert merged.id == records[0].id and place(merged) == place(cqc)
        assert {name: merged.field_sources.get(name) for name in (*PLACE_FIELDS, "areas")} == {
            "address": "cqc:postalAddressLine1..County", "town": "cqc:postalAddressTownCity",
            "county": "cqc:postalAddressCounty", "postcode": "cqc:postalCode", "lat": "cqc:onspdLatitude",
            "lon": "cqc:onspdLongitude", "areas": "cqc" if records[0] is homes else None}
        assert merged.website == "https://dovetail.example.org", "the list still gives what CQC leaves empty"

    index = tmp_path / "index.sqlite"
    build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    served = EmbeddedIndex(index)
    dovetail = served.get("bassetlaw-homes-2019:B7")
    assert dovetail is not None and place(dovetail) == place(cqc)
    [near] = served.nearest(cqc.lat, cqc.lon, ServiceQuery(), k=1, radius_km=1)
    assert (near.service.id, round(near.distance_km, 3)) == ("bassetlaw-homes-2019:B7", 0)
    found = served.find(ServiceQuery(area_codes=frozenset({MANSFIELD})), limit=100)
    assert "bassetlaw-homes-2019:B7" in [s.id for s in found.items]


def test_a_record_that_names_no_place_does_not_move_a_merged_record(tmp_path, data_dir, geography):
    """CQC's record supersedes the list's, but where it gave no postcode or address (placed by its coordinates
    alone), the list's place is kept, all of it, point and areas included, named as the list's record names them
    (its address and postcode by its source; its point and areas, as those of a record of its own, by none)."""
    _, homes, cqc = dovetails(tmp_path, data_dir, geography)
    unplaced = cqc.model_copy(update={"address": None, "town": None, "county": None, "postcode": None})

    [merged], _ = merge_duplicates([homes, unplaced], source_precedence())

    assert place(merged) == place(homes) and merged.phone == cqc.phone
    assert {name: merged.field_sources.get(name) for name in ("address", "postcode", "lat", "areas")} == {
        "address": "bassetlaw-homes-2019", "postcode": "bassetlaw-homes-2019", "lat": None, "areas": None}


def test_a_note_of_one_id_says_what_the_record_does_not_keep_where_the_later_supersedes(tmp_path, data_dir, geography):
    """CQC's own care directory, mapped as a dated file of the source `cqc`, gives Dovetail House (the real
    recording's location) under its CQC id with an older phone, and is read before CQC's record of it: one id, so one
    record, whose phone is CQC's (CQC's record supersedes any dated file's). The note says the phone shown is CQC's,
    in place of the file's (the file's website, which CQC leaves empty, is kept, and so not lost). Before, it was
    measured against the file's record as it was before the merge: "whose phone '01623420690' … the record does not
    keep", the phone the record shows."""
    (tmp_path / "directory.csv").write_text(
        "Ref,Home,Postcode,Telephone,Web\n1-112779585,Dovetail House,NG18 2AT,01623 000 000,"
        "https://dovetail.example.org\n", encoding="utf-8")
    (tmp_path / "directory.toml").write_text(HOMES_MAPPING.format(more="", columns="").replace(
        'name = "bassetlaw-homes-2019"', 'name = "cqc"'), encoding="utf-8")
    rows = [*load_source(tmp_path / "directory.csv", mapping=tmp_path / "directory.toml"),
            *load_source(data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json")]

    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(tmp_path / "index.sqlite"), progress=False,
                         precedence=source_precedence())

    dovetail = EmbeddedIndex(tmp_path / "index.sqlite").get("cqc:1-112779585")
    assert dovetail is not None
    assert (dovetail.phone, dovetail.website) == ("01623420690", "https://dovetail.example.org")
    assert [line for line in report.summary_lines() if line.startswith("merged ")] == [
        "merged locations_detail_2021.json record 75 into directory.csv:2 (same id cqc:1-112779585: the same service "
        "from another source, whose phone '01623420690' the record shows in place of the first's '01623 000 000')"]


def order_as_before(precedence: Precedence, services: list[Service]) -> list[Service]:
    """`Precedence.order` as it was stated before it took the records kind by kind: at each step the first record
    left that no record left supersedes (the first left, where each is), every record asked of every other."""
    def over(first: Service, second: Service) -> bool:
        return (second.source in precedence.supersedes.get(first.source, ())
                or (first.source in precedence.above_dated_files and second.provenance[0].edition is not None))
    left, ordered = list(services), []
    while left:
        first = next((s for s in left if not any(over(other, s) for other in left)), left[0])
        left.remove(first)
        ordered.append(first)
    return ordered


def test_the_order_records_win_in_is_the_one_every_record_asked_of_every_other_gave(tmp_path, data_dir, geography):
    """Dovetail House as the council's dated list and CQC give it, and copies of them as other sources' (the two NHS
    hospital lists, an ORUK feed, CQC's care directory read as a dated file of `cqc`), in 2,000 mixes of up to 14
    records (some given twice) and all 720 orders of six, under the shipped precedence, a chain, a cycle and none:
    the order taken kind by kind is the one the old statement gave, record for record."""
    _, homes, cqc = dovetails(tmp_path, data_dir, geography)
    def copy(of: Service, ident: str) -> Service:
        return of.model_copy(update={"id": ident})
    pool = [homes, cqc, copy(homes, "cqc:1-112779585"), copy(cqc, "nhs-hospitals-2015:NTN03"),
            copy(cqc, "nhs-hospitals-2018:NTN03"), copy(cqc, "oruk-feed:7"), copy(homes, "bassetlaw-homes-2019:B8"),
            copy(cqc, "nhs-hospitals-2018:NTN04")]
    precedences = [source_precedence(), Precedence(), Precedence(
        {"oruk-feed": frozenset({"nhs-hospitals-2018", "nhs-hospitals-2015"}),
         "nhs-hospitals-2018": frozenset({"nhs-hospitals-2015"})}, frozenset({"cqc", "oruk-feed"})),
        Precedence({"nhs-hospitals-2018": frozenset({"cqc"}), "cqc": frozenset({"nhs-hospitals-2018"})},
                   frozenset({"cqc"}))]
    draw = random.Random(17)
    mixes = [[draw.choice(pool) for _ in range(draw.randrange(15))] for _ in range(2000)]
    mixes += [list(order) for order in itertools.permutations(pool[:6])]
    for precedence in precedences:
        for mix in mixes:
            assert list(map(id, precedence.order(mix))) == list(map(id, order_as_before(precedence, mix))), (
                [s.id for s in mix], precedence)
