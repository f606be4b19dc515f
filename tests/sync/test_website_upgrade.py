"""A store synced when the cell parser completed a website without its scheme as it read it is migrated on upgrade
(migration 18, `rehabmap/maintain/websites.py`), on the SQLite file and on a real PostgreSQL: the real CQC connector
syncs the replay of the 103 real recorded CQC locations in this process, the old reader in place.

Since session 20 the reader keeps 'www.x.org' as given and the record completes it, saying so. Without the
migration each such item's content digest changes, and the next full `rehabmap sync cqc` reads most records as
changed and stops at the share threshold (exit 3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.sources import common
from indexer.sync.store import REPREPARE_DUE, SyncStore
from rehabmap.maintain.store import open_database, store_of
from rehabmap.record import completed_website
from tests.conftest import database_url
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import cqc_connector, make_home, runner_for, settings_for


MAISON_MOTI = "1-112789029"  # whose website CQC gives as 'www.maisonmoti.co.uk'


@pytest.fixture
def replay(data_dir: Path) -> Iterator[Replay]:
    yield from running(data_dir / "feeds")


def old_parse_website(value: Any, what: str) -> str:
    """`indexer.sources.common.parse_website` before session 20: the cell completed as it was read."""
    text = str(value).strip()
    return completed_website(text) or text


def _records(settings: Any) -> dict[str, tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """Each stored record's id → (digest, item, prepared record), as the tables hold them (read without opening
    the store, which would migrate it)."""
    with open_database(settings).connect() as conn:
        rows = conn.execute("SELECT source_id, digest, item, service FROM sync_records").fetchall()
    return {key: (digest, json.loads(item), service and json.loads(service)) for key, digest, item, service in rows}


def test_a_store_synced_when_websites_were_completed_as_read_syncs_unchanged_after_the_upgrade(
        request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch):
    url = database_url(request, store_kind)
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False,
                            **({"database_url": url} if url else {}))
    with monkeypatch.context() as old_code:
        old_code.setitem(common.FIELD_PARSERS, "website", old_parse_website)
        first = runner_for(settings, geography).run(cqc_connector(settings))
    assert first.added and first.stopped is None
    with open_database(settings).transaction() as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 18")
        # and an item a stopped run staged as the old reader read it (Maison Moti's, as its stored record)
        item, raw = conn.execute("SELECT item, raw FROM sync_records WHERE source_id = ?", (MAISON_MOTI,)).fetchone()
        conn.execute("INSERT INTO sync_staged (source, seq, kind, payload) VALUES ('cqc-stopped', 1, 'item', ?)",
                     (json.dumps({"item": json.loads(item), "raw": json.loads(raw)}),))
    before = _records(settings)
    completed = {k for k, (_d, item, _s) in before.items()
                 if str(item["fields"].get("website", "")).startswith("https://www.")}
    assert len(completed) == 3, "the 3 of the 7 stored real CQC records whose website CQC gives as 'www.…'"

    [(kind, staged)] = SyncStore(store_of(settings)).staged("cqc-stopped")  # migrated as the store opens
    assert staged["item"]["fields"]["website"] == "www.maisonmoti.co.uk", "as the new reader reads it"

    again = runner_for(settings, geography).run(cqc_connector(settings), full=True)

    assert again.stopped is None and again.share == 0.0, again.summary_lines()
    assert again.changed == [] and again.added == [] and again.retired == []
    after = _records(settings)
    assert SyncStore(store_of(settings)).meta(REPREPARE_DUE) is None, "prepared again, once"
    assert any(after[key][2] for key in completed), "a record prepared from such an item"
    for key in completed:
        digest, item, service = after[key]
        website = before[key][1]["fields"]["website"]
        assert item["fields"]["website"] == website.removeprefix("https://"), "as CQC gives it"
        assert digest != before[key][0]
        if service is not None:  # a record prepared from the item: the link, and who completed it
            assert service["website"] == website
            assert service["field_sources"]["website"] == (
                f"cqc:website (given as '{website.removeprefix('https://')}': https:// added)")
    untouched = [k for k in before if k not in completed]
    assert [after[k][:2] for k in untouched] == [before[k][:2] for k in untouched], "only what was completed"
