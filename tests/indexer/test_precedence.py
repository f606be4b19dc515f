"""Which source's value a merged record shows where two of its records give a field (docs/adr/0017): the mappings'
`supersedes` and the live sources above the dated files (`indexer.precedence`), read by a rebuild and a live write
alike (tests/sync/test_one_service_one_record.py holds the two NHS hospital lists' merged records to it)."""

from __future__ import annotations

import pytest

from indexer.merge import Precedence
from indexer.pipeline import GeographyPlacer, build_index
from indexer.precedence import PrecedenceInvalid, source_precedence
from indexer.rows import Rejection
from indexer.sources import load_source
from indexer.sources.csv_mapping import MAPPINGS_DIR, MappingError, load_mapping
from search.embedded import EmbeddedIndex, EmbeddedWriter

# A council's dated list of care homes, mapped; its source's name sorts before CQC's, as the store orders sources.
HOMES = "Ref,Home,Postcode,Telephone,Web\nB7,Dovetail House,NG18 2AT,01623 000 000,https://dovetail.example.org\n"
HOMES_MAPPING = ('[source]\nname = "bassetlaw-homes-2019"\ndated = "March 2019"\n{more}[columns]\nid = "Ref"\n'
                 'name = "Home"\npostcode = "Postcode"\nphone = "Telephone"\nwebsite = "Web"\n'
                 '[constants]\nservice_type = "supported_accommodation"\nsubtype = "residential_24h"\n')


def mapping(folder, file: str, name: str, more: str = "") -> None:
    """A mapping of source `name` in `folder`, with `more` in its [source] table."""
    folder.mkdir(exist_ok=True)
    (folder / file).write_text(f'[source]\nname = "{name}"\n{more}[columns]\nname = "Name"\n', encoding="utf-8")


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
    (tmp_path / "homes.mapping.toml").write_text(HOMES_MAPPING.format(more='supersedes = ["nhs-hospitals-2015"]\n'),
                                                 encoding="utf-8")
    [refused] = load_source(tmp_path / "homes.csv")
    assert isinstance(refused, Rejection) and refused.origin.line == 0
    assert refused.reason.startswith("mapping homes.mapping.toml: [source] supersedes is read only from the mappings "
                                     "in mappings/")


def test_cqcs_record_of_a_location_supersedes_a_dated_files(tmp_path, data_dir, geography):
    """A council's dated list names Dovetail House (the real CQC recording's) with another phone and a website CQC
    does not give, and its source sorts before CQC's, so its record is the one kept (its id, as the store orders
    them). Before, its phone was shown, being first; CQC's is now, as CQC's record supersedes any dated file's, and
    the list's website still fills what CQC leaves empty; each field names the source that gave it."""
    (tmp_path / "homes.csv").write_text(HOMES, encoding="utf-8")
    (tmp_path / "homes.toml").write_text(HOMES_MAPPING.format(more=""), encoding="utf-8")
    rows = [*load_source(tmp_path / "homes.csv", mapping=tmp_path / "homes.toml"),
            *load_source(data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json")]
    index = tmp_path / "index.sqlite"

    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)

    assert [(note.kept, note.merged) for note in report.merged] == [("bassetlaw-homes-2019:B7", "cqc:1-112779585")]
    dovetail = EmbeddedIndex(index).get("bassetlaw-homes-2019:B7")
    assert dovetail is not None and [p.source for p in dovetail.provenance] == ["bassetlaw-homes-2019", "cqc"]
    assert (dovetail.phone, dovetail.website) == ("01623420690", "https://dovetail.example.org")
    assert [dovetail.field_sources[name] for name in ("phone", "website")] == [
        "cqc:mainPhoneNumber", "bassetlaw-homes-2019"], "as CQC's record names its field"
