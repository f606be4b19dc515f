"""A file import's held rows in the sync store, made before sources were named by their file name, carried the
server's path as typed; the store's migration 11 renames them, on either store, so the records a rebuild or a
publish shows, the review queue and `rehabmap sync-status` name the file, never the server's folders."""

from __future__ import annotations

from dataclasses import replace

import pytest

from indexer.rows import Held
from indexer.sources import load_source
from indexer.sync.file_candidates import by_source
from indexer.sync.rebuild import synced_rows
from indexer.sync.review import ReviewQueue
from indexer.sync.status import sync_status
from indexer.sync.store import SyncStore
from rehabmap.config import Settings
from rehabmap.maintain.store import open_database, store_of
from tests.conftest import database_url
from tests.sync.store_fixtures import offline_runner

SITES = "Ref,Site,Postcode\nS1,Acre Day Hospital,LS9 7TF\nS2,Oak House,LS9 7TF\n"
MAPPING = ('[source]\nname = "sites"\ntype_unconfirmed = "a site is not a rehab unit by itself"\n'
           'proposed_type = "Inpatient_Rehab_Level1"\n[columns]\nid = "Ref"\nname = "Site"\npostcode = "Postcode"\n')


@pytest.fixture
def settings(request, store_kind, tmp_path, data_dir) -> Settings:
    return Settings(home=tmp_path / "home", data_dir=data_dir, database_url=database_url(request, store_kind))


def held_rows(tmp_path, *, as_before: bool) -> list[Held]:
    """The held rows of `rehabmap index` over a mapped CSV; `as_before`: named as imports before names did,
    by the path as typed (here the server's absolute path)."""
    path = tmp_path / "server" / "feeds" / "sites.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SITES)
    (tmp_path / "sites.toml").write_text(MAPPING)
    rows = [r for r in load_source(path, mapping=tmp_path / "sites.toml") if isinstance(r, Held)]
    assert [r.candidate.origin.file for r in rows] == ["sites.csv", "sites.csv"]
    return [replace(r, candidate=replace(r.candidate, origin=replace(r.candidate.origin, file=str(path))))
            for r in rows] if as_before else rows


def files_in(store: SyncStore) -> set[str]:
    """Every file name a person could be shown of the store's records and state."""
    records = store.records()
    return ({r.item["origin"]["file"] for r in records}
            | {p["file"] for r in records for p in (r.service or {}).get("provenance", [])}
            | {f for s in sync_status(store) for f in s.cursor.get("files", [])}
            | {c.origin.file for c in synced_rows(store.database)})


def test_a_file_imports_old_server_paths_are_renamed_when_the_store_is_opened(settings, geography, tmp_path):
    settings.home.mkdir(parents=True)
    store = SyncStore(store_of(settings))
    [held] = by_source(held_rows(tmp_path, as_before=True), {})
    offline_runner(store, geography).run(held)
    ReviewQueue(store).accept(["sites:S2"], actor="tests")
    server = str(tmp_path / "server")
    assert all(f.startswith(server) for f in files_in(store))
    with open_database(settings).transaction() as conn:  # as a store from before migration 11 holds them
        conn.execute("DELETE FROM schema_migrations WHERE version = 11")

    reopened = SyncStore(store_of(settings))

    assert files_in(reopened) == {"sites.csv"}
    [again] = by_source(held_rows(tmp_path, as_before=False), {})
    report = offline_runner(reopened, geography).run(again)
    assert (report.unchanged, report.changed) == (2, [])
    assert files_in(reopened) == {"sites.csv"}
