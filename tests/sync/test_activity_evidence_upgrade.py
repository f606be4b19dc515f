"""A store synced when the CQC readers took a location's regulated activities for specialisms is migrated on upgrade
(migration 28, `rehabmap/maintain/activities.py`), on the SQLite file and on a real PostgreSQL: the real CQC connector
syncs the replay of the 103 real recorded CQC locations in this process, the old evidence in place, and a maintainer
accepts Field House, the one held, on that evidence.

Field House is registered for "Assessment or medical treatment for persons detained under the Mental Health Act
1983", a regulated activity, which its evidence called a specialism. Since session 51 it names it as CQC does,
`regulatedActivities`. Without the migration both of its digests change: the next sync reads it as changed and the
review queue flags the decision as made on evidence that has since changed, when CQC said nothing new."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from app.parts import open_backend
from app.sync import open_live
from indexer.pipeline import GeographyPlacer
from indexer.sources import cqc as cqc_sources
from indexer.sources.cqc import Registration, needs_evidence
from indexer.sync.codec import item_to_json
from indexer.sync.connectors import cqc
from indexer.sync.items import Evidence, SourceItem
from indexer.sync.publish import REVIEW_SOURCE
from indexer.sync.review import ReviewQueue
from indexer.sync.runner import prepare_items
from indexer.sync.store import SyncStore
from rehabmap.config import Settings
from rehabmap.cqc_words import SPECIALISMS
from rehabmap.maintain.database import PAGE
from rehabmap.maintain.migrations import migrate
from rehabmap.maintain.store import open_database, store_of
from rehabmap.sync_digests import content_digest, evidence_digest, stored_json
from tests.conftest import database_url
from tests.cqc_records import DOVETAIL, FIELD_HOUSE, FIELD_HOUSE_ID
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import cqc_connector, make_home, runner_for, settings_for

DETENTION = ("Assessment or medical treatment for persons detained under the Mental Health Ac…",
             "states the need detained_mha")


@pytest.fixture
def replay(data_dir: Path) -> Iterator[Replay]:
    yield from running(data_dir / "feeds")


def old_needs_evidence(registration: Registration, source: str) -> tuple[Evidence, ...]:
    """`indexer.sources.cqc.needs_evidence` before session 51: the same evidence, every one said of specialisms."""
    return tuple(replace(e, field="specialisms") for e in needs_evidence(registration, source))


def _stored(settings: Any) -> tuple[dict[str, Any], str, str, str]:
    """Field House's stored item, its digests and the digest its decision was made on, as the tables hold them
    (read without opening the store, which would migrate it)."""
    with open_database(settings).connect() as conn:
        item, digest, evidence = conn.execute("SELECT item, digest, evidence_digest FROM sync_records "
                                              "WHERE source_id = ?", (FIELD_HOUSE,)).fetchone()
        [decided_on] = conn.execute("SELECT decided_on_evidence FROM sync_review WHERE source_id = ?",
                                    (FIELD_HOUSE,)).fetchone()
    return json.loads(item), digest, evidence, decided_on


def test_a_decision_on_evidence_that_called_an_activity_a_specialism_stands_after_the_upgrade(
        request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch):
    url = database_url(request, store_kind)
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False,
                            **({"database_url": url} if url else {}))
    placer = GeographyPlacer(geography)
    with monkeypatch.context() as old_code:
        old_code.setattr(cqc, "needs_evidence", old_needs_evidence)
        first = runner_for(settings, geography).run(cqc_connector(settings))
        assert [line.service_id for line in first.held] == [FIELD_HOUSE_ID]
        review = ReviewQueue(SyncStore(store_of(settings)), open_live(settings, lambda: placer))
        assert DETENTION in [(e.value, e.means) for e in review.item(FIELD_HOUSE_ID).evidence
                             if e.field == "specialisms"], "as the old reader said it"
        review.accept([FIELD_HOUSE_ID], actor="Ann (maintainer)", level=1)
        same = runner_for(settings, geography).run(cqc_connector(settings), full=True)
        assert same.evidence_changed == [] and same.changed == [], "nothing flagged, the reader unchanged"
    with open_database(settings).transaction() as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 28")
        # and Field House's item as a stopped run staged it, as the old reader read it
        item, raw = conn.execute("SELECT item, raw FROM sync_records WHERE source_id = ?", (FIELD_HOUSE,)).fetchone()
        conn.execute("INSERT INTO sync_staged (source, seq, kind, payload) VALUES ('cqc-stopped', 1, 'item', ?)",
                     (stored_json({"item": json.loads(item), "raw": json.loads(raw)}),))
    before, digest, evidence, decided_on = _stored(settings)
    assert decided_on == evidence

    [(_kind, staged)] = SyncStore(store_of(settings)).staged("cqc-stopped")  # migrated as the store opens
    assert DETENTION[0] in [e["value"] for e in staged["item"]["evidence"] if e["field"] == "regulatedActivities"]
    again = runner_for(settings, geography).run(cqc_connector(settings), full=True)

    assert again.stopped is None and again.share == 0.0, again.summary_lines()
    assert again.evidence_changed == [] and again.changed == [] and again.added == []
    after, new_digest, new_evidence, new_decided_on = _stored(settings)
    assert (new_digest, new_evidence) != (digest, evidence) and new_decided_on == new_evidence
    assert [e for e in after["evidence"] if e not in before["evidence"]] == [
        {"source": "cqc", "field": "regulatedActivities", "value": DETENTION[0], "means": DETENTION[1]}]
    shown = ReviewQueue(SyncStore(store_of(settings)), open_live(settings, lambda: placer)).item(FIELD_HOUSE_ID)
    assert (shown.state, shown.evidence_changed) == ("accepted", False)
    said = [(e.field, e.value, e.means) for e in shown.evidence]
    assert ("regulatedActivities", *DETENTION) in said and ("specialisms", *DETENTION) not in said
    assert ("specialisms", "Caring for adults over 65 yrs", "states the need older_adult") in said, "a band is one"


def old_registered_for(registration: Registration) -> list[tuple[str, str]]:
    """`indexer.sources.cqc._registered_for` before session 51: the regulated activities read as specialisms (the
    old reader's `Registration.specialisms` held both), so the evidence and the type's source said `specialisms`."""
    return [(SPECIALISMS, s) for s in (*registration.specialisms, *registration.regulated_activities)]


def test_a_care_home_quoting_the_detention_activity_whole_is_relabelled_page_after_page(
        request, store_kind, tmp_path, data_dir, geodata_dir, geography, monkeypatch):
    """Dovetail (the real recorded CQC care home), registered as CQC registers a care home with no mental health
    band: "Caring for adults under 65 yrs", and the detention activity beside its accommodation. The reader says it
    is registered for people with mental health needs by quoting that activity whole (`read_pathway`), and states
    detained_mha by quoting it shortened (`needs_evidence`); the old reader called both specialisms. Before, the
    migration relabelled only the shortened quote, so the next sync read the home as changed and flagged its
    decision; and after that, the type's source kept the old reader's "cqc:gacServiceTypes+specialisms" where the
    reader says "cqc:gacServiceTypes+regulatedActivities", so the content digest still differed and the next sync
    read the home as changed. 1,201 such homes, more than two of the pages the migration reads at once (`PAGE`),
    each come out as the reader gives it now, both digests with it, and the record stored to show says the type's
    source as the item does (laid in the live index again); a stopped run's staged item too. One of them a
    maintainer accepted, through the review queue: the live index shows its type as decided ("review"), the decision
    laid over the relabelled record. Before, the test gave that home a stored record already saying "review", a shape
    nothing writes (a decision is laid over the record as it is shown: `indexer.sync.publish.with_type`)."""
    recorded = next(r for r in json.loads((data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json").read_text())
                    if r["locationId"] == DOVETAIL)
    home = {**recorded, "specialisms": [{"name": "Caring for adults under 65 yrs"}], "regulatedActivities": [
        {"name": "Accommodation for persons who require nursing or personal care"},
        {"name": "Assessment or medical treatment for persons detained under the Mental Health Act 1983"}]}

    def read() -> SourceItem:
        item = cqc.map_location(home, "https://api.cqc.org.uk/public/v1", datetime(2026, 12, 7, tzinfo=timezone.utc))
        assert isinstance(item, SourceItem)
        return item

    new = item_to_json(read())
    with monkeypatch.context() as old_code:
        old_code.setattr(cqc_sources, "_registered_for", old_registered_for)
        old_item = read()  # as the old reader read it
    old = item_to_json(old_item)
    assert [(e["field"], e["means"]) for e in new["evidence"] if "persons detained" in e["value"]] == [
        ("regulatedActivities", "registered for people with mental health needs"),
        ("regulatedActivities", "states the need detained_mha")]
    assert [(f, old["field_sources"][f], new["field_sources"][f]) for f in new["field_sources"]
            if old["field_sources"][f] != new["field_sources"][f]] == [
        ("service_type", "cqc:gacServiceTypes+specialisms", "cqc:gacServiceTypes+regulatedActivities")]
    placer = GeographyPlacer(geography)
    [prepared] = prepare_items([old_item], placer)  # the record a sync stored, as the old reader read the home
    assert prepared.service is not None and prepared.proposed[0] is not None, prepared.problem
    url = database_url(request, store_kind)
    settings = Settings(home=make_home(tmp_path / "home", geodata_dir), data_dir=data_dir,
                        **({"database_url": url} if url else {}))
    database = open_database(settings)
    migrate(database)
    ids = [f"1-{n:06}" for n in range(2 * PAGE + 201)]
    with database.transaction() as conn:
        conn.executemany(
            "INSERT INTO sync_records (source, source_id, connector, service_id, status, type_status, item, raw, "
            "service, proposed_type, digest, evidence_digest, first_seen, last_seen, changed_at, live_revision) "
            "VALUES ('cqc', ?, 'cqc', ?, 'active', 'inferred', ?, ?, ?, ?, ?, ?, 't', 't', 't', 1)",
            [(i, f"cqc:{i}", stored_json(old), stored_json(home), stored_json({**prepared.service, "id": f"cqc:{i}"}),
              prepared.proposed[0], content_digest(old), evidence_digest(old)) for i in ids])
        conn.execute("INSERT INTO sync_review (source, source_id, state, queued_at) VALUES ('cqc', ?, 'pending', 't')",
                     (ids[0],))  # held, as a sync queues an inferred type
    decided = f"cqc:{ids[0]}"
    ReviewQueue(SyncStore(store_of(settings)), open_live(settings, lambda: placer)).accept([decided], actor="Ann")
    with database.transaction() as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 28")
        conn.execute("INSERT INTO sync_staged (source, seq, kind, payload) VALUES ('cqc', 1, 'item', ?)",
                     (stored_json({"item": old, "raw": home}),))
    assert [m.version for m in migrate(database)] == [28]

    with database.connect() as conn:
        stored = conn.execute("SELECT source_id, item, digest, evidence_digest, service, live_revision "
                              "FROM sync_records ORDER BY source_id").fetchall()
        [staged] = conn.execute("SELECT payload FROM sync_staged").fetchone()
    assert [(i, json.loads(item), digest, evidence) for i, item, digest, evidence, *_ in stored] == [
        (i, new, content_digest(new), evidence_digest(new)) for i in ids]
    assert [(json.loads(service)["field_sources"]["service_type"], revision > 1) for *_, service, revision in stored
            ] == [(new["field_sources"]["service_type"], True)] * len(ids)
    assert json.loads(staged)["item"] == new
    # a server's start: the decided home, due again, shows as it did; the others, held, are not shown
    assert open_live(settings, lambda: placer).converge(SyncStore(store_of(settings))) == 0
    shown = open_backend(settings).get(decided)
    assert shown is not None and shown.field_sources["service_type"] == REVIEW_SOURCE, "the decision laid over it"
