"""The maintainers' API and store where a source's newer word meets a maintainer's, on the SQLite file and on a real
PostgreSQL: the real CQC connector syncing the replay of the 103 real recorded CQC locations in this process (a
sync's own code, as `rehabmap sync cqc` runs it), the maintainers' API in-process over the same store.

* A field a maintainer edited that the source has since changed is listed by `GET /maintain/questioned` and kept
  by `POST /maintain/services/{id}/edits/{field}/keep` (before: on the keepers' pages and in the audit log only).
* A dry run names the maintainer's restore and edit it would flag (before, on PostgreSQL its scratch copy held no
  overlay nor audit log, so it said neither).
* A store where the old rule left a restore pinning a service its source retired later (migration 13)."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from indexer.pipeline import GeographyPlacer
from indexer.sync.runner import SyncRunner
from indexer.sync.store import SyncStore
from rehabmap.config import Settings
from rehabmap.maintain.migrations import opened
from rehabmap.maintain.overlay import Overlay, unpin_restores
from rehabmap.maintain.retirement import restores_taken_back, retirement
from rehabmap.maintain.store import Directory, open_database, store_of
from search.embedded import EmbeddedIndex, index_file
from tests.conftest import database_url
from tests.cqc_records import ASHTON, ASHTON_ID, DOVETAIL, DOVETAIL_ID, GROVELANDS, GROVELANDS_ID
from tests.maintain.conftest import AppClient, make_app
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import MAINTAINER, cqc_connector, make_home, runner_for, settings_for


@pytest.fixture
def replay(data_dir: Path):
    yield from running(data_dir / "feeds")


def synced(request, store_kind: str, tmp_path: Path, geodata_dir: Path, data_dir: Path, replay: Replay,
           geography: Any) -> tuple[Settings, AppClient, dict[str, str]]:
    """A home synced once from the CQC replay, on the store kind, with the API over it and a maintainer's token."""
    url = database_url(request, store_kind)
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False,
                            **({"database_url": url} if url else {}))
    runner_for(settings, geography).run(cqc_connector(settings))
    _, token = Directory.from_settings(settings).tokens.create("maintainer", MAINTAINER, actor="test setup")
    return settings, AppClient(make_app(settings)), {"Authorization": f"Bearer {token}"}


def retire_and_restore(api: AppClient, auth: dict[str, str], service_id: str) -> None:
    retired = api.post(f"/maintain/services/{service_id}/retire", json={"reason": "retired by mistake"}, headers=auth)
    assert retired.status_code == 200, retired.text
    assert api.patch(f"/maintain/services/{service_id}", json={"status": "active"}, headers=auth).status_code == 200


def edit_ashtons_phone(api: AppClient, auth: dict[str, str]) -> None:
    """A maintainer sets Ashton Lodge's phone to its referral line."""
    edited = api.patch(f"/maintain/services/{ASHTON_ID}", json={"phone": "0161 000 0001"}, headers=auth)
    assert edited.status_code == 200


def test_the_api_lists_the_edits_a_source_questioned_and_keeps_one(request, store_kind, tmp_path, geodata_dir,
                                                                   data_dir, replay, geography):
    """A maintainer restored Dovetail House and set Ashton Lodge's phone to its referral line; CQC then deregistered
    the first and changed the second's main number. The dry run names both (on PostgreSQL too); after the sync the
    API lists Ashton Lodge's phone as questioned, with both values, and keeping the edit closes it."""
    settings, api, auth = synced(request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography)
    retire_and_restore(api, auth, DOVETAIL_ID)
    edit_ashtons_phone(api, auth)
    replay.cqc.deregister(DOVETAIL, date(2026, 11, 30))
    replay.cqc.alter(ASHTON, mainPhoneNumber="01613300000")

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    dry = SyncRunner(SyncStore.scratch_copy(store_of(settings), scratch), GeographyPlacer(geography), None,
                     actor="tests", folders=settings.own_folders).run(cqc_connector(settings), dry_run=True)
    lines = dry.summary_lines()
    assert lines[1] == "  1 record of this source awaits review ('rehabmap review list')"  # Field House
    assert dry.stopped is not None and dry.stopped.endswith(  # two of its six homes: above the 25% a run applies
        "(more than 25%). A run would stop here and apply nothing (--force applies it).")
    assert any(line.startswith(f"retired {DOVETAIL_ID}") and f"; a maintainer ({MAINTAINER} (token " in line
               for line in lines), lines
    assert (f'edited here, changed by the source {ASHTON_ID} Ashton Lodge Residential Home: phone: the source now '
            'gives "01613300000"; a maintainer\'s edit keeps "0161 000 0001"') in lines
    assert api.get("/maintain/questioned", headers=auth).json() == {"results": []}, "a dry run writes nothing"

    runner_for(settings, geography).run(cqc_connector(settings), max_change_share=0.5)

    listed = api.get("/maintain/questioned", headers=auth)
    assert listed.status_code == 200
    [service] = listed.json()["results"]
    [question] = service.pop("questions")
    assert service == {"id": ASHTON_ID, "name": "Ashton Lodge Residential Home", "status": "active"}
    assert {k: question[k] for k in ("field", "edit", "source_value", "by")} == {
        "field": "phone", "edit": "0161 000 0001", "source_value": "01613300000", "by": "tests"}
    unasked = api.post(f"/maintain/services/{ASHTON_ID}/edits/email/keep", headers=auth)
    assert unasked.status_code == 404 and unasked.json()["error"]["code"] == "question_not_found"
    assert "GET /maintain/questioned lists the open ones" in unasked.json()["error"]["message"]

    kept = api.post(f"/maintain/services/{ASHTON_ID}/edits/phone/keep", headers=auth)

    assert kept.status_code == 200 and kept.json() == {"id": ASHTON_ID, "kept": ["phone"]}
    assert api.get("/maintain/questioned", headers=auth).json() == {"results": []}
    assert api.get(f"/services/{ASHTON_ID}").json()["phone"] == "0161 000 0001", "nothing shown changed"
    entries = api.get("/maintain/audit", params={"service_id": ASHTON_ID}, headers=auth)
    assert entries.status_code == 403, "the audit log is the admins'"
    keep_rows = [r for r in Directory.from_settings(settings).audit.entries(resource_id=ASHTON_ID)[0]
                 if r.action == "keep"]
    assert [(r.field, r.old, r.new) for r in keep_rows] == [("phone", "01613300000", "0161 000 0001")]
    assert keep_rows[0].actor.startswith(MAINTAINER)


def _tables(settings: Settings) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of every table the migration might touch, and of the rest of the store's sync tables."""
    tables = ("overlay", "audit", "sync_records", "sync_review", "sync_state", "sync_runs", "sync_enrichments",
              "coverage_pending", "coverage_claims", "tokens", "organisations", "ownership")
    with open_database(settings).connect() as conn:
        return {t: {tuple(row) for row in conn.execute(f"SELECT * FROM {t}").fetchall()} for t in tables}


def test_a_restore_the_old_rule_left_pinning_is_taken_back_on_upgrade(request, store_kind, tmp_path, geodata_dir,
                                                                      data_dir, replay, geography, caplog,
                                                                      monkeypatch):
    """The old state, made by the old code path: a maintainer retired Dovetail House by mistake and restored it;
    CQC then deregistered it, synced by a runner without the restore check (what `_gone` was before e2b3849: the
    same rows, no `maintainer_restore_superseded`, the overlay's status left in place). Beside it, Grovelands
    Lodge, which CQC deregistered first and a maintainer restored after (their newer word: it must stay), and
    Ashton Lodge's phone edit. Migration 13 retires Dovetail House as the sync now would, and changes nothing
    else; run again, it finds nothing."""
    settings, api, auth = synced(request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography)
    retire_and_restore(api, auth, DOVETAIL_ID)
    edit_ashtons_phone(api, auth)
    replay.cqc.deregister(GROVELANDS, date(2026, 11, 1))
    runner_for(settings, geography).run(cqc_connector(settings))
    assert api.patch(f"/maintain/services/{GROVELANDS_ID}", json={"status": "active"}, headers=auth).status_code == 200
    replay.cqc.deregister(DOVETAIL, date(2026, 11, 30))
    with monkeypatch.context() as old_code:
        old_code.setattr(Overlay, "restore_pinning", lambda self, service_id: None)
        report = runner_for(settings, geography).run(cqc_connector(settings))
    assert [line.note for line in report.retired] == [
        "deregistered by CQC on 2026-11-30 (registrationStatus 'Deregistered') (on 2026-11-30)"]
    with open_database(settings).transaction() as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 13")
    before = _tables(settings)
    assert {(r[0], r[1]) for r in before["overlay"] if r[0] == DOVETAIL_ID} == {
        (DOVETAIL_ID, '{"status": "active"}')}, "the old rule's pin"

    with caplog.at_level(logging.WARNING, logger="rehabmap.maintain.overlay"):
        opened(store_of(settings))

    after = _tables(settings)
    changed = {t for t in before if before[t] != after[t]}
    assert changed == {"overlay", "audit", "sync_records"}
    assert before["overlay"] - after["overlay"] == {r for r in before["overlay"] if r[0] == DOVETAIL_ID}
    assert after["overlay"] <= before["overlay"], "only Dovetail House's pin goes: Grovelands and Ashton stay"
    new_rows = sorted(after["audit"] - before["audit"])
    assert before["audit"] <= after["audit"] and {r[6] for r in new_rows} == {DOVETAIL_ID}
    assert [(r[4], r[7], json.loads(r[8]), json.loads(r[9])) for r in new_rows] == [
        ("retire", "status", "active", "inactive"),
        ("retire", "retired_reason", None, "deregistered by the Care Quality Commission (CQC) on 30 November 2026"),
        ("retire", "maintainer_restore_superseded", {"by": json.loads(new_rows[2][8])["by"],
                                                     "on": json.loads(new_rows[2][8])["on"]}, None)]
    assert json.loads(new_rows[2][8])["by"].startswith(MAINTAINER)
    assert {r[3] for r in new_rows} == {"tests (applied on upgrade, migration 13)"}
    records = {(r[0], r[1]): r for r in before["sync_records"]}
    moved = [r for r in after["sync_records"] if records[(r[0], r[1])] != r]
    assert [r[3] for r in moved] == [DOVETAIL_ID]
    assert [m for m in caplog.messages if "migration" not in m] == [
        f"retired {DOVETAIL_ID} Dovetail House: deregistered by the Care Quality Commission (CQC) on 30 November "
        f"2026 (on 2026-11-30); a maintainer ({json.loads(new_rows[2][8])['by']}) had restored it on "
        f"{json.loads(new_rows[2][8])['on']}"]

    with open_database(settings).transaction() as conn:
        unpin_restores(conn)
    assert _tables(settings) == after, "run again, it finds nothing"

    directory = Directory.from_settings(settings)
    assert [t.service_id for t in restores_taken_back(directory, limit=10)] == [DOVETAIL_ID]
    with caplog.at_level(logging.WARNING, logger="rehabmap.api"):
        caplog.clear()
        restarted = AppClient(make_app(settings))  # a server's start catches the live index up with the store
    assert "wrote 1 synced record the live index lacked (a sync or review decision cut short, or a store " \
           "migration)" in caplog.messages, "before: '1 records', and only a cut-short sync or decision named"
    shown = restarted.get(f"/services/{DOVETAIL_ID}").json()
    assert shown["status"] == "inactive" and shown["retired_reason"] == ("deregistered by the Care Quality "
                                                                            "Commission (CQC) on 30 November 2026")
    gone = retirement(directory, EmbeddedIndex(index_file(settings.home)).get(DOVETAIL_ID))
    assert gone is not None and gone.superseded is not None and gone.superseded.by.startswith(MAINTAINER)
    assert restarted.get(f"/services/{GROVELANDS_ID}").json()["status"] == "active", "restored after the source"
    assert restarted.get(f"/services/{ASHTON_ID}").json()["phone"] == "0161 000 0001"
