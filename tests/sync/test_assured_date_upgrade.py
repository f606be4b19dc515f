"""A store synced when `rehabmap sync oruk` read a council feed's `assured_date` (its own check of its listing) as
`last_verified` (a person's check) is migrated on upgrade (migration 29, `rehabmap/maintain/assured.py`), on the
SQLite file and on a real PostgreSQL: the real ORUK connector syncs the replay of Bristol's recorded feed in this
process, its old reading in place. Autism Advice's `assured_date` is 2020-06-05; its page said "Checked by the
rehabmap team or the service: 5 June 2020".

Without the migration the item's content digest changes with the new reader: the first sync after the upgrade read
Autism Advice as changed by the council, "changed 1", and stopped at the share threshold (1 of its 1 service shown,
exit 3) until `--force`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from indexer.sync.connectors import connectors_for
from indexer.sync.connectors import oruk
from indexer.sync.store import SyncStore
from rehabmap.maintain.database import Connection
from rehabmap.maintain.store import open_database, store_of
from rehabmap.maintain.assured import unread_assured_date
from rehabmap.oruk import oruk_to_fields, service_to_oruk
from rehabmap.record import Service
from tests.conftest import database_url
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import feeds_folder, index_record, make_home, runner_for, settings_for, table_rows

AUTISM_ADVICE = "Autism Advice - Bristol"


@pytest.fixture
def replay(data_dir: Path) -> Iterator[Replay]:
    yield from running(data_dir / "feeds")


def old_oruk_to_fields(obj: dict[str, Any], left_out: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """`rehabmap.oruk.oruk_to_fields` as `rehabmap sync oruk` read a feed before session 51: `assured_date` read as
    `last_verified` whoever published it."""
    fields, label_text = oruk_to_fields(obj, left_out)
    return ({**fields, "last_verified": obj["assured_date"]} if obj.get("assured_date") else fields), label_text


def _settings(request, store_kind, tmp_path, geodata_dir, data_dir, replay) -> Any:
    url = database_url(request, store_kind)
    return settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False,
                        oruk_feed_urls={"bristol": replay.oruk_url("bristol")}, oruk_rate=10_000,
                        oruk_feeds_dir=feeds_folder(tmp_path / "feeds", support_groups=True),
                        **({"database_url": url} if url else {}))


def _synced(settings: Any, geography: Any, monkeypatch, *, staged: Replay | None = None) -> str:
    """Bristol synced by the old reader, the store left as a release before migration 29 left it: Autism
    Advice's service id. With `staged`, a second run then reads a new description and stops at the share
    threshold, its item staged as the old reader read it."""
    with monkeypatch.context() as old_code:
        old_code.setattr(oruk, "oruk_to_fields", old_oruk_to_fields)
        old_code.setattr(oruk, "READER_VERSION", 1)
        old_code.setitem(oruk._ORUK_KEYS, "last_verified", "assured_date")  # its field source, as it said it
        [connector] = connectors_for("oruk", settings)
        first = runner_for(settings, geography).run(connector)
        assert len(first.added) == 1, first.summary_lines()
        if staged is not None:
            [autism] = [i for i in staged.oruk["bristol"].items if i["name"] == AUTISM_ADVICE]
            autism["pc_metadata"]["date_modified"] = (date.today() - timedelta(days=3)).isoformat()
            staged.oruk["bristol"].details[autism["id"]]["description"] = "Advice for autistic adults, on Tuesdays too."
            stopped = runner_for(settings, geography).run(connector)
            assert stopped.stopped is not None, stopped.summary_lines()
    [(service_id, said)] = table_rows(settings, "SELECT service_id, service FROM sync_records")
    assert json.loads(said)["last_verified"] == "2020-06-05", "as the old reader said it"
    with open_database(settings).transaction() as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 29")
    return str(service_id)


def _shown(conn: Connection) -> dict[str, Any]:
    [(service,)] = conn.execute("SELECT service FROM sync_records").fetchall()
    return json.loads(service)


def test_a_councils_check_read_as_a_persons_is_migrated_not_counted(
        request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch):
    settings = _settings(request, store_kind, tmp_path, geodata_dir, data_dir, replay)
    service_id = _synced(settings, geography, monkeypatch)
    assert index_record(settings.home, service_id)["last_verified"] == "2020-06-05"
    [(digest, revision)] = table_rows(settings, "SELECT digest, live_revision FROM sync_records")

    [connector] = connectors_for("oruk", settings)  # the store migrated as it opens
    again = runner_for(settings, geography).run(connector)

    assert again.stopped is None and again.changed == [] and again.added == [], again.summary_lines()
    [(new_digest, new_revision, item)] = table_rows(settings, "SELECT digest, live_revision, item FROM sync_records")
    assert new_digest != digest and new_revision > revision
    assert "last_verified" not in json.loads(item)["fields"]
    assert "last_verified" not in json.loads(item)["field_sources"]
    with open_database(settings).connect() as conn:
        shown = _shown(conn)
    assert shown["last_verified"] is None and "last_verified" not in shown["field_sources"]
    laid = index_record(settings.home, service_id)
    assert laid is not None and laid.get("last_verified") is None, "laid again: the page says not yet checked"


def test_a_run_staged_before_the_upgrade_does_not_put_the_date_back(
        request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch):
    settings = _settings(request, store_kind, tmp_path, geodata_dir, data_dir, replay)
    service_id = _synced(settings, geography, monkeypatch, staged=replay)
    [(_kind, staged)] = [s for s in SyncStore(store_of(settings)).staged("oruk-bristol") if s[0] == "item"]
    assert "last_verified" not in staged["item"]["fields"], "migrated as the store opens"

    [connector] = connectors_for("oruk", settings)
    forced = runner_for(settings, geography).run(connector, force=True)

    assert forced.stopped is None, forced.summary_lines()
    with open_database(settings).connect() as conn:
        shown = _shown(conn)
    assert shown["description"] == "Advice for autistic adults, on Tuesdays too." and shown["last_verified"] is None
    laid = index_record(settings.home, service_id)
    assert laid is not None and laid.get("last_verified") is None


def test_rehabmaps_export_keeps_its_check_and_one_from_before_this_release_loses_it():
    """Migration 29 leaves an item read from rehabmap's export alone: its `last_verified` term is the person's
    check, which the new reader reads. An export made before the term (the check only as `assured_date`) is read as
    any other feed: the old reading is taken out, and comes back when the feed is exported again."""
    sample = json.loads((Path(__file__).resolve().parents[2] / "sample" / "rehabmap-sample.oruk.json").read_text())
    service = Service.model_validate(oruk_to_fields(sample["contents"][0])[0])
    assert service.last_verified is not None
    item = {"fields": {"name": service.name, "last_verified": service.last_verified.isoformat()},
            "field_sources": {"name": "oruk-rehabmap:name", "last_verified": "oruk-rehabmap:assured_date"}}
    exported = service_to_oruk(service)
    assert unread_assured_date(item, exported) is None
    older = {**exported, "attributes": [a for a in exported["attributes"]
                                         if a["taxonomy_term"]["code"] != "last_verified"]}
    assert unread_assured_date(item, older) == {"fields": {"name": service.name},
                                                "field_sources": {"name": "oruk-rehabmap:name"}}
