"""An import prepared in worker processes (`indexer.workers`, issue 18) writes the index and the report one
process does, byte for byte, on real files: the sample directory given twice (every record merged into its
first reading, read back from its stored form), the NHS website's hospital list of 2018 and ODS's trust sites
of 2018 (30,616 rows: rejections with their lines, rows held for review, one row held twice)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench.build_identity import fingerprint
from indexer.merge import Keyed, Merging, Precedence, merge_duplicates
from rehabmap.index.base import ServiceQuery
from rehabmap.record import Service
from rehabmap.record_keys import merge_keys
from indexer.pipeline import GeographyPlacer, ImportRefused, IndexReport, build_index, chain, prepare_rows
from indexer.sources import load_source
from indexer.workers import FORK_FROM, Workers, prepare_in_workers
from rehabmap.maintain.audit import Change
from rehabmap.maintain.edits import OverlayWriter
from rehabmap.maintain.store import Directory
from search.embedded import EmbeddedIndex, EmbeddedWriter
from tests.maintain.conftest import ROOT, SAMPLE

HOSPITALS, SITES = "nhs_website_hospitals_2018.csv", "ods_trusts_and_sites_2018_geocoded.csv"


def rows(data_dir: Path):
    services = data_dir / "services"
    return chain(load_source(SAMPLE), load_source(SAMPLE), load_source(services / HOSPITALS),
                 load_source(services / SITES))


def built(data_dir: Path, geography, path: Path, workers: int) -> tuple[list[str], list[str], list[dict]]:
    """The report, the fingerprint of every table but the records', and the records with the time each row of a
    file without one was read (the import's clock, `fetched_at`) left out."""
    report = build_index(rows(data_dir), GeographyPlacer(geography), EmbeddedWriter(path), progress=False,
                         workers=Workers(workers) if workers > 1 else None)
    with sqlite3.connect(path) as db:
        docs = [json.loads(doc) for (doc,) in db.execute("SELECT doc FROM services ORDER BY rowid")]
    for doc in docs:
        for provenance in doc["provenance"]:
            if provenance["source"] != "sample":
                del provenance["fetched_at"]
    return report.summary_lines(), [line for line in fingerprint(path) if not line.startswith("  services:")], docs


def test_the_index_and_report_are_those_of_one_process(data_dir, geography, tmp_path):
    one = built(data_dir, geography, tmp_path / "one.sqlite", workers=1)
    two = built(data_dir, geography, tmp_path / "two.sqlite", workers=2)
    assert two == one
    lines = one[0]
    assert lines[0].startswith("read 30736, indexed 75, merged 60, rejected ")
    # each record of the sample's second reading named by its file and record, the same row as the first's
    assert sum(line.startswith("merged sample/rehabmap-sample.oruk.json record ")
               and line.endswith(": the same row, nothing lost)") for line in lines) == 60
    assert any(line.startswith(f"rejected {HOSPITALS}:") for line in lines)


def test_rows_come_back_as_stored_records_in_order(data_dir, geography, tmp_path):
    """What the workers hand back is each record stored in a part file with its keys, in the rows' order, and the
    same report: the part `build_index` merges and writes. A record read back from its part is the record."""
    placer = GeographyPlacer(geography)
    alone = IndexReport()
    here = prepare_rows(rows(data_dir), placer, alone)
    across = IndexReport()
    parts = EmbeddedWriter(tmp_path / "index.sqlite").parts()
    try:
        prepared = list(prepare_in_workers(rows(data_dir), placer, across, parts, workers=2))
        assert across == alone and across.read > FORK_FROM
        stored = [p.record for p in prepared if isinstance(p, Keyed)]
        assert len(stored) == len(prepared) == len(here) == 135  # 75 records, the sample's 60 twice
        assert [(s.id, s.service_type) for s in stored] == [(h.id, h.service_type) for h in here]
        assert [p.keys for p in prepared if isinstance(p, Keyed)] == list(map(merge_keys, here))
        last = stored[-1].service()
        assert last.model_dump(exclude={"provenance"}) == here[-1].model_dump(exclude={"provenance"})
    finally:
        parts.remove()
    assert not list(tmp_path.iterdir())  # the part files are gone


def test_an_import_of_few_rows_is_prepared_here(geography, tmp_path):
    parts = EmbeddedWriter(tmp_path / "index.sqlite").parts()
    prepared = list(prepare_in_workers(load_source(SAMPLE), GeographyPlacer(geography), IndexReport(), parts,
                                       workers=2))
    assert len(prepared) == 60 and not any(isinstance(p, Keyed) for p in prepared)
    assert not list(tmp_path.iterdir())  # no part file written


@pytest.mark.parametrize("workers", [1, 2])
def test_a_maintainers_edit_is_laid_over_a_record_a_worker_prepared(data_dir, geography, tmp_path, workers):
    """The edit is laid over the record read back from its stored form: the index holds the edited record,
    with the directory as the field's source, as one process gives it."""
    directory = Directory(tmp_path / "directory.sqlite")
    service_id = "sample:truro-level-2-rehabilitation-unit"
    directory.overlay.record("test", "update", service_id, [Change("beds", 12, 17)], fields={"beds": 17})
    path = tmp_path / "index.sqlite"
    writer = OverlayWriter(EmbeddedWriter(path), directory)
    report = build_index(rows(data_dir), GeographyPlacer(geography), writer, progress=False,
                         workers=Workers(workers) if workers > 1 else None)
    assert report.indexed == 75 and not writer.warnings
    edited = EmbeddedIndex(path).get(service_id)
    assert edited is not None and edited.beds == 17 and edited.field_sources["beds"] == "directory"


def live_index(data_dir: Path, geography, path: Path) -> tuple[int, list[str]]:
    """A live index of the rows, built by one process: its file's inode and its ids."""
    build_index(rows(data_dir), GeographyPlacer(geography), EmbeddedWriter(path), progress=False)
    return path.stat().st_ino, EmbeddedIndex(path).ids()


def unchanged(path: Path, live: tuple[int, list[str]]) -> bool:
    """The live index as it was, and nothing left beside it by the refused import (no new file, no part)."""
    return (path.stat().st_ino, EmbeddedIndex(path).ids()) == live and \
        [p.name for p in path.parent.iterdir()] == [path.name]


def test_an_import_the_checks_refuse_once_written_leaves_the_live_index(data_dir, geography, tmp_path):
    """Across workers the new index is written before the checks against the live one (`before_swap`): a refused
    one is deleted, and the live index and its file stay as they were."""
    path = tmp_path / "index" / "index.sqlite"
    live = live_index(data_dir, geography, path)
    services = data_dir / "services"
    without_the_sample = chain(load_source(services / HOSPITALS), load_source(services / SITES))
    with pytest.raises(ImportRefused, match="would drop 60 of the 75 live services"):
        build_index(without_the_sample, GeographyPlacer(geography), EmbeddedWriter(path), live=EmbeddedIndex(path),
                    progress=False, workers=Workers(2))
    assert unchanged(path, live)


class KilledInAWorker(GeographyPlacer):
    """The real placer, whose copy in a worker process is killed (SIGKILL) as it places its first chunk: a worker
    that dies, say of the kernel's out-of-memory killer."""

    def forked(self) -> GeographyPlacer:
        return Killed(self.geography)


class Killed(GeographyPlacer):
    def area_codes_all(self, lats, lons, lads):
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("killed")


def test_a_worker_that_dies_stops_the_import_and_the_live_index_stays(data_dir, geography, tmp_path):
    path = tmp_path / "index" / "index.sqlite"
    live = live_index(data_dir, geography, path)
    with pytest.raises(ImportRefused, match="a worker process stopped") as refused:
        build_index(rows(data_dir), KilledInAWorker(geography), EmbeddedWriter(path), live=EmbeddedIndex(path),
                    progress=False, workers=Workers(2))
    assert "the live index is unchanged" in str(refused.value)
    assert unchanged(path, live)


def test_the_next_build_deletes_the_parts_of_an_import_that_was_killed(geography, tmp_path):
    """A part file is named by the importing process, so once that process is gone (killed part way), the next
    build of the index deletes its parts as it deletes its half-written file."""
    path = tmp_path / "index.sqlite"
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from search.embedded import "
                    "EmbeddedWriter; EmbeddedWriter(Path(sys.argv[1])).parts().write([])", str(path)],
                   cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert [p.name.startswith("index.sqlite.building-part") for p in tmp_path.iterdir()] == [True]
    build_index(load_source(SAMPLE), GeographyPlacer(geography), EmbeddedWriter(path), progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["index.sqlite"]


def test_records_merged_as_they_come_write_the_index_records_merged_first_write(geography, tmp_path):
    """A parallel import writes each record as it comes (`Merging.stream`), before it knows what comes later. Two
    records of the sample given one CQC location id (A, B), and a third given B's name and postcode (C), come A,
    C, B: A and C are each written as records of their own, then B shows them to be one service. Before, B went
    into A alone and C stayed listed on its own (merged when the records came A, B, C); now C's row is taken out,
    the rows after it moved up (before, the last row written took its place), and the index is the one the records
    merged first write: the same records at the same rows, each found by its id and its words, the count of rows
    as many."""
    sample = prepare_rows(load_source(SAMPLE), GeographyPlacer(geography), IndexReport())
    first, second, third = (s.model_dump() for s in sample[:3])
    a = {**first, "cqc_location_id": "1-000000001"}
    b = {**second, "cqc_location_id": "1-000000001"}
    c = {**third, "name": second["name"], "postcode": second["postcode"]}
    records = [Service.model_validate(s) for s in (a, c, b)] + sample[3:]

    EmbeddedWriter(tmp_path / "stream.sqlite").replace_all(Merging(Precedence()).stream(records))
    EmbeddedWriter(tmp_path / "first.sqlite").replace_all(merge_duplicates(records, Precedence())[0])

    streamed, whole = EmbeddedIndex(tmp_path / "stream.sqlite"), EmbeddedIndex(tmp_path / "first.sqlite")
    assert sorted(streamed.ids()) == sorted(whole.ids()) and len(whole.ids()) == len(records) - 2
    assert {s.id: s for s in streamed.all()} == {s.id: s for s in whole.all()}
    assert streamed.get(a["id"]).provenance == [origin for s in records[:3] for origin in s.provenance]
    assert streamed.info().count == len(whole.ids())
    for words in ("rehabilitation", "Leeds"):
        query = ServiceQuery(text=words)
        found = {s.id for s in streamed.find(query, limit=100).items}
        assert found and found == {s.id for s in whole.find(query, limit=100).items}, words
    rows = "SELECT rowid, id FROM services ORDER BY rowid"
    with sqlite3.connect(tmp_path / "stream.sqlite") as db, sqlite3.connect(tmp_path / "first.sqlite") as first_db:
        assert db.execute(rows).fetchall() == first_db.execute(rows).fetchall()
        assert db.execute("SELECT rowid, id FROM services WHERE rowid = 2").fetchone() == (2, sample[3].id)
        for words in ("chapel allerton", sample[3].name):  # the last row's words and the first moved's, at their rows
            match = f"SELECT rowid FROM services_fts WHERE services_fts MATCH '\"{words}\"'"
            assert db.execute(match).fetchall() == first_db.execute(match).fetchall() != [], words


# A council's list of three homes (the real postcodes of Dovetail House in Mansfield and of a street in Worksop; the
# rest made up), in the order that makes a parallel import write two records, then find them one: B shares Dovetail
# House's CQC location id (A's) and C's name and postcode.
THREE_HOMES = ("Ref,Home,CQC,Postcode\nA,Dovetail House,1-112779585,NG18 2AT\nC,Dovetail Annexe,,S80 1AA\n"
               "B,Dovetail Annexe,1-112779585,S80 1AA\n")
THREE_HOMES_MAPPING = ('[source]\nname = "homes"\n[columns]\nid = "Ref"\nname = "Home"\ncqc_location_id = "CQC"\n'
                       'postcode = "Postcode"\n[constants]\nservice_type = "supported_accommodation"\n'
                       'subtype = "residential_24h"\n')


def test_an_edited_record_found_one_with_an_earlier_one_is_warned_of_as_one_process_warns(data_dir, geography,
                                                                                         tmp_path):
    """A maintainer edited C, which B shows to be one service with A: merged into A, C is no longer in the sources,
    and both builds say so, with the same records at the same rows. Before, the parallel import had laid the edit
    over C's row, written before B came, and said nothing when it took the row out (one process warns:
    `OverlayWriter` never sees C), and it moved the last row written into C's place."""
    (tmp_path / "homes.csv").write_text(THREE_HOMES, encoding="utf-8")
    (tmp_path / "homes.toml").write_text(THREE_HOMES_MAPPING, encoding="utf-8")
    services = data_dir / "services"

    def build(workers: int) -> tuple[list[str], list[str], list[tuple[str, str]]]:
        """The report's lines, the edits' warnings and each row's id and name."""
        directory = Directory(tmp_path / f"directory-{workers}.sqlite")
        directory.overlay.record("test", "update", "homes:C", [Change("beds", None, 6)], fields={"beds": 6})
        path = tmp_path / f"index-{workers}.sqlite"
        writer = OverlayWriter(EmbeddedWriter(path), directory)
        rows = chain(load_source(tmp_path / "homes.csv", mapping=tmp_path / "homes.toml"),
                     load_source(services / HOSPITALS), load_source(services / SITES))
        report = build_index(rows, GeographyPlacer(geography), writer, progress=False,
                             workers=Workers(workers) if workers > 1 else None)
        with sqlite3.connect(path) as db:
            held = db.execute("SELECT id, json_extract(CAST(doc AS TEXT), '$.name') FROM services ORDER BY rowid")
            return report.summary_lines(), writer.warnings, held.fetchall()

    one, two = build(1), build(2)

    assert {"merged homes:B into homes:A (same cqc)", "merged homes:C into homes:A (same name+postcode)"} <= {
        line for line in one[0]}
    assert one[1] == ["directory: homes:C was edited but is no longer in the sources; its edits are kept and come "
                      "back if it does"]
    assert two[:2] == one[:2]
    assert two[2] == one[2] and one[2][0] == ("homes:A", "Dovetail House")
    assert "homes:C" not in {service_id for service_id, _ in one[2]}
