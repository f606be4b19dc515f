"""The sync store on either database (the SQLite file, or PostgreSQL): one run of a source at a time across
processes; a dry run's scratch copy holds what the store holds and none of its writes reach the store; an
SQLite home whose sync tables were made before migrations recorded them keeps every row; a server's probes read
the store it opened at its start."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from itertools import product
from typing import get_args

import pytest

from indexer.sync.items import MatchKey
from indexer.sync.publish import held
from indexer.sync.review import ReviewQueue
from indexer.sync.status import not_live, sync_status
from indexer.sync.store import SyncStore
from rehabmap.config import Settings
from rehabmap.coverage import Claim, CoverageStore
from rehabmap.maintain.migrations import ENRICHMENT_MATCH, ENRICHMENT_MATCH_KEYS, LATEST, MIGRATIONS
from rehabmap.maintain.store import Directory, store_of
from rehabmap.review_counts import HELD
from rehabmap.state import AppState
from rehabmap.taxonomy import ServiceType
from search.embedded import EmbeddedIndex, index_file
from tests.conftest import database_url
from tests.cqc_records import FIELD_HOUSE, FIELD_HOUSE_ID
from tests.sync.store_fixtures import ListedConnector, field_house_item, offline_runner, table_rows

CANDIDATE = "listed:" + FIELD_HOUSE
CLAIM = Claim("ips_employment", "E54000054", "curated:ips.csv", "2026-10-01", "Ann")


@pytest.fixture
def settings(request, store_kind, tmp_path, data_dir) -> Settings:
    return Settings(home=tmp_path / "home", data_dir=data_dir, database_url=database_url(request, store_kind))


def queued(store: SyncStore, geography, data_dir) -> None:
    """Field House queued for review, as a sync of a source proposing it as a level 1 unit leaves it."""
    item = field_house_item(data_dir / "feeds", type_status="inferred", service_type=ServiceType.inpatient_rehab_level1)
    offline_runner(store, geography).run(ListedConnector([item]))


def test_one_run_of_a_source_at_a_time_across_stores_opened_apart(settings):
    """Two processes (hosts) open the store each; a run of a source locks out the other's run of it only."""
    first, second = SyncStore(store_of(settings)), SyncStore(store_of(settings))
    with first.run_lock("cqc") as mine:
        assert mine
        with second.run_lock("cqc") as theirs, second.run_lock("ods") as other_source:
            assert not theirs and other_source
    with second.run_lock("cqc") as after:
        assert after  # released when the run ends


def test_a_servers_probes_read_the_store_it_opened_and_see_another_process_write(settings, geography, data_dir):
    """/health and /metrics read the sync store in the maintainers' store the server opened at its start, on the
    connection the probe's thread keeps: a run applied through another opening (a sync's process) is seen at the
    next probe, and a scrape's one row a source says what `sync-status` says."""
    directory = Directory.from_settings(settings)
    state = AppState(settings, geography, EmbeddedIndex(index_file(settings.home)), directory=directory)
    served = SyncStore.served(state)
    assert served is not None and served.database is directory.database
    assert served.last_successes() == {} and not_live(served) == ({}, 0)

    queued(SyncStore(store_of(settings)), geography, data_dir)

    assert served.last_successes() == {r.source: r.last_success_at for r in sync_status(served) if r.last_success_at}
    assert list(served.last_successes()) == ["listed"]


def test_a_dry_runs_scratch_copy_holds_the_store_and_writes_none_of_it(settings, geography, data_dir, tmp_path):
    store = SyncStore(store_of(settings))
    queued(store, geography, data_dir)
    CoverageStore(store.database).replace("curated:", [CLAIM], prefix=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    copy = SyncStore.scratch_copy(store_of(settings), scratch)

    assert copy.records() == store.records() and copy.reviews() == store.reviews() and copy.runs() == store.runs()
    assert CoverageStore(copy.database).snapshot() == CoverageStore(store.database).snapshot()
    ReviewQueue(copy).reject([CANDIDATE], actor="tests", reason="an acute ward, not rehabilitation")
    copy.record_run("listed", "2026-11-30T00:00:00+00:00", "failed", {})
    assert ReviewQueue(copy).item(CANDIDATE).state == "rejected"
    assert ReviewQueue(store).item(CANDIDATE).state == "pending" and len(store.runs()) == 1


def test_an_sqlite_home_from_before_the_sync_migrations_keeps_its_queue_and_coverage(tmp_path, geography, data_dir):
    """A file whose sync and coverage tables were made by the stores themselves (before migrations 7 and 8
    recorded them) is opened as it is: the migrations make what it lacks and every row stays."""
    path = tmp_path / "directory.sqlite"
    store = SyncStore(path)
    queued(store, geography, data_dir)
    CoverageStore(path).replace("curated:", [CLAIM], prefix=True)
    records, reviews = store.records(), store.reviews()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DELETE FROM schema_migrations WHERE version >= 7")
        conn.execute("DROP TABLE coverage_revision")  # new in migration 8: an older file lacks it
        conn.execute("DROP INDEX tokens_by_form_key")  # and migration 9's column, which only it adds
        conn.execute("ALTER TABLE tokens DROP COLUMN form_key")
        conn.execute("DROP INDEX sync_records_left_out")  # migration 20's, over the column
        conn.execute("ALTER TABLE sync_records DROP COLUMN left_out")  # and migration 19's
        conn.execute("ALTER TABLE sync_runs DROP COLUMN summary")  # and migration 20's
        for key in ("cqc_key", "postcode_key", "published_cqc_key", "published_postcode_key"):  # migration 22's
            conn.execute(f"DROP INDEX sync_records_by_{key}")
            conn.execute(f"ALTER TABLE sync_records DROP COLUMN {key}")
        for key in ("rebuild_cqc_key", "rebuild_postcode_key"):
            conn.execute(f"ALTER TABLE sync_records DROP COLUMN {key}")
        conn.execute("ALTER TABLE sync_staged DROP COLUMN listing")  # migration 23's
        conn.execute("DROP INDEX sync_records_by_source_id")  # migration 24's
        conn.execute("DROP INDEX sync_runs_by_source")  # migration 25's
        for key in ("cqc_location_id", "cqc_provider_id", "ods_code"):  # migration 26's
            conn.execute(f"DROP INDEX sync_enrichments_by_{key}")
    finally:
        conn.close()

    reopened = SyncStore(path)

    assert reopened.records() == records and reopened.reviews() == reviews
    assert CoverageStore(path).claims() == [CLAIM]
    with reopened.database.connect() as conn:
        assert [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [
            m.version for m in MIGRATIONS]


_FOUR_KINDS = "CHECK (kind IN ('item', 'gone', 'refused', 'enrichment'))"


def test_a_store_from_before_migration_17_keeps_its_staged_rows_and_unchanged_is_a_kind_of_its_own(settings):
    """Before migration 17 a service an ORUK feed listed as unchanged since it was read was staged as a 'refused'
    row marked {"unchanged": true} (the CHECK allowed four kinds), so whatever read the staged rows by their kind
    read a refusal. The store as migration 16 left it, with a stopped Bristol run's rows as that rehabmap staged
    them, is the input: the upgrade gives the unchanged row its own kind, keeps the refusal and the order, and the
    run reads on as it was."""
    from indexer.sync.codec import outcome_from_json
    from indexer.sync.items import Refused, Unchanged
    from rehabmap.maintain.store import open_database

    unchanged = {"source": "oruk-bristol", "source_id": "0a1a2e1c-3d5f-4f0e-9c4b-8a2f4d6e7b10", "unchanged": True}
    refused = {"source": "oruk-bristol", "source_id": "def5ccd4-f121-df4d-60d2-4dc0d69ff555",
               "where": "…/services?page=1 item 1", "reason": "service has no name", "unplaced": False,
               "unreadable": False, "name": ""}
    SyncStore(store_of(settings)).stage_page("oruk-bristol", [], {"crawl_started": "2026-12-02T03:30:00+00:00"})
    with open_database(settings).transaction() as conn:  # the table and rows as the rehabmap before it left them
        if settings.database_url:
            conn.execute("ALTER TABLE sync_staged DROP CONSTRAINT sync_staged_kind_check")
            conn.execute(f"ALTER TABLE sync_staged ADD CONSTRAINT sync_staged_kind_check {_FOUR_KINDS}")
            conn.execute("ALTER TABLE sync_staged DROP COLUMN listing")
        else:
            conn.execute("DROP TABLE sync_staged")
            conn.execute(f"CREATE TABLE sync_staged (source TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL "
                         f"{_FOUR_KINDS}, payload TEXT NOT NULL, PRIMARY KEY (source, seq))")
        for seq, payload in enumerate((refused, unchanged), start=1):
            conn.execute("INSERT INTO sync_staged VALUES (?, ?, ?, ?)",
                         ("oruk-bristol", seq, "refused", json.dumps(payload)))
        conn.execute("DELETE FROM schema_migrations WHERE version IN (17, 23)")  # 23: the listing a row is of

    upgraded = SyncStore(store_of(settings))

    staged = upgraded.staged("oruk-bristol")
    assert [kind for kind, _ in staged] == ["refused", "unchanged"]
    assert [type(outcome_from_json(kind, payload)) for kind, payload in staged] == [Refused, Unchanged]
    assert outcome_from_json(*staged[1]) == Unchanged("oruk-bristol", unchanged["source_id"])
    upgraded.stage_page("oruk-bristol", [("unchanged", {"source": "oruk-bristol", "source_id": "b"})], None)
    assert [kind for kind, _ in upgraded.staged("oruk-bristol")] == ["refused", "unchanged", "unchanged"]
    with upgraded.database.connect() as conn:
        assert max(v for (v,) in conn.execute("SELECT version FROM schema_migrations")) == LATEST


def test_a_store_from_before_migration_22_keeps_its_records_merge_keys_in_columns(settings, geography, data_dir):
    """Migration 22 keeps each synced record's CQC location id and postcode, as records are merged by them, in
    indexed columns on which a live write finds the records a changed one may be merged with
    (`SyncStore.sharing_keys`), instead of reading every record. Field House, synced before it, gets them on the
    upgrade, the same as those it was last published under (the live index holds it by them) and as the last
    rebuild read it, and is found by its postcode, id or CQC location id."""
    from rehabmap.maintain.store import open_database

    queued(SyncStore(store_of(settings)), geography, data_dir)
    with open_database(settings).transaction() as conn:  # the table as the rehabmap before it left it
        for column in ("cqc_key", "postcode_key", "published_cqc_key", "published_postcode_key"):
            conn.execute(f"DROP INDEX sync_records_by_{column}")
            conn.execute(f"ALTER TABLE sync_records DROP COLUMN {column}")
        for column in ("rebuild_cqc_key", "rebuild_postcode_key"):
            conn.execute(f"ALTER TABLE sync_records DROP COLUMN {column}")
        conn.execute("DELETE FROM schema_migrations WHERE version = 22")

    upgraded = SyncStore(store_of(settings))

    [record] = upgraded.records()
    postcode = record.service["postcode"].replace(" ", "")
    assert table_rows(settings, "SELECT service_id, cqc_key, postcode_key, published_cqc_key, published_postcode_key, "
                                "rebuild_cqc_key, rebuild_postcode_key FROM sync_records") == [
        (CANDIDATE, *(("1-112845365", postcode) * 3))]
    assert upgraded.published_keys([record]) == {("cqc", "1-112845365"), ("postcode", postcode)}
    for key in (("postcode", postcode), ("cqc", "1-112845365"), ("id", CANDIDATE)):
        assert upgraded.sharing_keys({key, ("id", "another")}) == [record]
    assert upgraded.sharing_keys({("id", "other"), ("postcode", "BS11AA"), ("cqc", "1-1")}) == []


def test_every_key_sources_share_has_its_index_of_the_enrichments(tmp_path):
    """Migration 26 indexes the enrichments by each key sources share (`indexer.sync.items.MatchKey`), and
    `SyncStore.enrichments(keys=...)` asks for those keys alone (`ENRICHMENT_MATCH_KEYS`): the migrations repeat the
    keys, as the layering keeps `rehabmap` from importing `indexer`. A key added to MatchKey alone would leave the
    enrichments it matches unfound by the review queue, and unindexed; one added to both without the migration's
    index, read over every enrichment, every ODS site's. Each is held here."""
    store = SyncStore(tmp_path / "directory.sqlite")

    assert sorted(get_args(MatchKey)) == sorted(ENRICHMENT_MATCH_KEYS)
    with store.database.connect() as conn:
        for key in get_args(MatchKey):
            plan = " ".join(str(row[-1]) for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT source FROM sync_enrichments WHERE "
                + ENRICHMENT_MATCH["sqlite"].format(key=key) + " = ?", ("RMY01",)).fetchall())
            assert f"USING INDEX sync_enrichments_by_{key}" in plan, (key, plan)


def test_the_counts_read_as_held_what_the_queue_holds(tmp_path, geography, data_dir):
    """`rehabmap.review_counts.HELD` (SQL, below `indexer` in the layering) finds the held candidates the counts are
    of, which must be the records `indexer.sync.publish.held` holds that have a type proposed: Field House, as a
    sync leaves it, written again in every state a record and its review row may be in (active or retired,
    confirmed, inferred or unknown, prepared or not, a type proposed or not; no review row, pending, accepted,
    rejected or superseded), and each set of them the same."""
    store = SyncStore(tmp_path / "directory.sqlite")
    queued(store, geography, data_dir)
    [field_house] = store.records()
    [row] = store.reviews()
    records, reviews = [], []
    for n, (status, type_status, prepared, proposed, state) in enumerate(product(
            ("active", "retired"), ("confirmed", "inferred", "unknown"), (True, False),
            ("inpatient_rehab_level1", None), (None, "pending", "accepted", "rejected", "superseded"))):
        service_id = f"listed:variant-{n}"
        records.append(replace(field_house, source_id=f"variant-{n}", service_id=service_id, status=status,
                               type_status=type_status, proposed_type=proposed,
                               service={**field_house.service, "id": service_id} if prepared else None))
        if state is not None:
            reviews.append(replace(row, source_id=f"variant-{n}", state=state))
    store.write(records, reviews, (), live_changed=set())
    rows = {r.key: r for r in store.reviews()}

    with store.database.connect() as conn:
        counted = {json.loads(service)["id"] for _, _, service in conn.execute(HELD).fetchall()}

    assert counted == {r.service_id for r in store.records() if held(r, rows.get(r.key)) and r.proposed_type}
    assert FIELD_HOUSE_ID.replace("cqc", "listed") in counted and 0 < len(counted) < len(records) / 4
