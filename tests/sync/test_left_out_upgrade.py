"""A store synced before each record kept the contact details it left out (migration 19) lists them after the
upgrade, on the SQLite file and on a real PostgreSQL: the real CQC connector syncs the replay of the 103 real
recorded CQC locations, Ashton Lodge's phone given as words. The upgrade adds the column and asks for one
re-preparation (as migration 14 did), so a record its source has not changed since is listed too: no sync would
prepare it again, and its detail was said only in the report of the run that first read it. A store from before
each detail was kept with its field (migration 20) has the field filled from the words, once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.sync.status import sync_status
from indexer.sync.store import REPREPARE_DUE, LeftOutDetail, SyncStore
from rehabmap.maintain.store import open_database, store_of
from tests.conftest import database_url
from tests.cqc_records import ASHTON
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import cqc_connector, make_home, rehabmap, runner_for, settings_for, table_rows

LEFT_OUT = "SELECT left_out FROM sync_records WHERE left_out IS NOT NULL"


@pytest.fixture
def replay(data_dir: Path) -> Iterator[Replay]:
    yield from running(data_dir / "feeds")


def test_a_store_from_before_migration_19_lists_the_details_its_records_left_out(
        request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography):
    url = database_url(request, store_kind)
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False,
                            **({"database_url": url} if url else {}))
    replay.cqc.alter(ASHTON, mainPhoneNumber="Ask for the manager")
    first = runner_for(settings, geography).run(cqc_connector(settings))
    said = [line.note for line in first.left_out]
    assert [line.service_id for line in first.left_out] == [f"cqc:{ASHTON}"] and first.stopped is None
    with open_database(settings).transaction() as conn:  # the store as the code before migration 19 left it
        conn.execute("DROP INDEX sync_records_left_out")  # migration 20's, over the column, and its column
        conn.execute("ALTER TABLE sync_runs DROP COLUMN summary")
        conn.execute("ALTER TABLE sync_records DROP COLUMN left_out")
        conn.execute("DELETE FROM schema_migrations WHERE version IN (19, 20)")  # the later ones change no column here

    store = SyncStore(store_of(settings))  # migrated as it opens: the column, and the re-preparation asked for
    assert store.meta(REPREPARE_DUE) is not None and sync_status(store, "cqc")[0].left_out == ()
    again = runner_for(settings, geography).run(cqc_connector(settings))  # CQC changed nothing since

    assert again.stopped is None and again.changed == [] and again.left_out == []
    assert store.meta(REPREPARE_DUE) is None, "prepared again, once"
    [status] = sync_status(store, "cqc")
    assert [(r.service_id, r.name, r.details) for r in status.left_out] == [
        (f"cqc:{ASHTON}", "Ashton Lodge Residential Home", tuple(said))]
    shown = rehabmap(settings.home, data_dir, None, "sync-status", "--source", "cqc",
                     **({"REHABMAP_DATABASE_URL": url} if url else {}))
    assert shown.returncode == 0, shown.stderr
    assert ("  1 shown without a contact detail the source gave (refused; the source's to correct):\n"
            f"    cqc:{ASHTON} Ashton Lodge Residential Home: {said[0]}\n") in shown.stdout


def test_a_store_from_before_migration_20_keeps_each_left_out_detail_with_its_field(
        request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography):
    """Migration 19's column held each left-out detail's words alone, and the field a maintainer may have added was
    read back from them on every visit; since migration 20 the sync keeps the field beside them, and a store
    from before is rewritten once on its first open: the words as they were, the field from them. A run recorded
    before has no summary of its report (each list as its length, its warnings whole: what `sync-status` reads of a
    last run): its report is read whole, and says the same."""
    url = database_url(request, store_kind)
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False,
                            **({"database_url": url} if url else {}))
    replay.cqc.alter(ASHTON, mainPhoneNumber="Ask for the manager")
    [said] = [line.note for line in runner_for(settings, geography).run(cqc_connector(settings)).left_out]
    stored = json.dumps({"field": "phone", "said": said}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert table_rows(settings, LEFT_OUT) == [(f"[{stored}]",)], "kept with its field by the sync itself"
    [(report, summary)] = table_rows(settings, "SELECT report, summary FROM sync_runs")
    assert json.loads(summary) == {k: len(v) if isinstance(v, list) and k != "warnings" else v
                                   for k, v in json.loads(report).items()}
    assert json.loads(summary)["added"] == 6
    [last_run] = [r.last_run for r in sync_status(SyncStore(store_of(settings)), "cqc")]
    assert last_run is not None and last_run.said.startswith("fetched 78, added 6, changed 0, retired 0, held 1")
    with open_database(settings).transaction() as conn:  # the rows as the code before migration 20 wrote them
        conn.execute("UPDATE sync_records SET left_out = ? WHERE left_out IS NOT NULL", (json.dumps([said]),))
        conn.execute("ALTER TABLE sync_runs DROP COLUMN summary")
        conn.execute("DELETE FROM schema_migrations WHERE version = 20")

    store = SyncStore(store_of(settings))  # migrated as it opens
    assert table_rows(settings, LEFT_OUT) == [(f"[{stored}]",)]
    [record] = [r for r in store.records() if r.left_out]
    assert record.left_out == (LeftOutDetail("phone", said),)
    [status] = sync_status(store, "cqc")
    assert [(r.service_id, r.details, r.fields) for r in status.left_out] == [(f"cqc:{ASHTON}", (said,), ("phone",))]
    assert table_rows(settings, "SELECT summary FROM sync_runs") == [(None,)] and status.last_run == last_run
