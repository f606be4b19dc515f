"""A store synced before needs and the gender read from a service's words were kept apart from those it states is
prepared again on upgrade (migration 14), on the SQLite file and on a real PostgreSQL: the real CQC connector syncs
the replay of the 103 real recorded CQC locations in this process, the old code path's `_extract_needs` in place.

A sync skips an item its source has not changed, and a rebuild reads the record as prepared, so before this the
guesses the old code merged into the stated needs and gender stayed stated for good: Dovetail House, whose other
name (`alsoKnownAs`, as a provider may give CQC) speaks of autistic adults and of women only, kept "meets autism"
and a stated women-only gender, hidden from a man on a guess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer import pipeline
from indexer.needs import extract_needs_and_gender
from indexer.pipeline import GeographyPlacer
from indexer.sync.runner import reprepare_due
from indexer.sync.store import REPREPARE_DUE, SyncStore
from rehabmap.maintain.store import Directory, open_database, store_of
from tests.conftest import database_url
from tests.maintain.conftest import AppClient, make_app, with_version
from tests.sync.replay import Replay, running
from tests.sync.store_fixtures import FIELD_HOUSE, cqc_connector, make_home, runner_for, settings_for
from tests.sync.test_maintainers_word import DOVETAIL, DOVETAIL_ID, MAINTAINER

ASHTON_ID = "cqc:1-112816741"  # Ashton Lodge Residential Home
ALSO_KNOWN_AS = "Dovetail House recovery home for autistic adults, women only, no step-free access"


@pytest.fixture
def replay(data_dir: Path) -> Iterator[Replay]:
    yield from running(data_dir / "feeds")


def old_extract_needs(fields: dict[str, Any], label_text: str) -> None:
    """`indexer.pipeline._extract_needs` before session 17 (b96900e): what the words suggest merged into the stated
    needs, and the gender they suggest made the record's gender."""
    text = " ".join(filter(None, [fields.get("name"), fields.get("description"), label_text]))
    met, not_met, gender = extract_needs_and_gender(text)
    given_met, given_not_met = set(fields.get("needs_met") or []), set(fields.get("needs_not_met") or [])
    given_met |= set(met) - given_not_met
    given_not_met |= set(not_met) - given_met
    fields["needs_met"], fields["needs_not_met"] = sorted(given_met), sorted(given_not_met)
    if fields.get("gender") is None:
        fields["gender"] = gender


def synced_with_old_code(settings: Any, replay: Replay, geography: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CQC locations synced by the old code path (`old_extract_needs`), Dovetail House's other name
    speaking of autistic adults and of women only."""
    replay.cqc.alter(DOVETAIL, alsoKnownAs=ALSO_KNOWN_AS)
    with monkeypatch.context() as old_code:
        old_code.setattr(pipeline, "_extract_needs", old_extract_needs)
        runner_for(settings, geography).run(cqc_connector(settings))


def _rows(settings: Any, table: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    with open_database(settings).connect() as conn:
        return {tuple(row[:2]): tuple(row) for row in conn.execute(f"SELECT * FROM {table}").fetchall()}


def test_a_store_synced_before_read_was_kept_apart_is_prepared_again_on_upgrade(
        request, store_kind, tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch):
    url = database_url(request, store_kind)
    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False,
                            **({"database_url": url} if url else {}))
    synced_with_old_code(settings, replay, geography, monkeypatch)
    _, token = Directory.from_settings(settings).tokens.create("maintainer", MAINTAINER, actor="test setup")
    api = AppClient(make_app(settings))
    edited = api.patch(f"/maintain/services/{ASHTON_ID}", json={"gender": "male_only"},
                       headers=with_version(api, ASHTON_ID, {"Authorization": f"Bearer {token}"}))
    assert edited.status_code == 200, edited.text
    old = api.get(f"/services/{DOVETAIL_ID}").json()
    assert old["gender"] == "female_only" and "autism" in old["needs_met"], "the old code path's guesses, stated"
    assert api.post("/match", json={"home": {"postcode": "NG18 2AT"}, "gender": "male", "max_distance_km": 10,
                                    "types": ["supported_accommodation"]}).json()["results"] == [], "hidden"
    with open_database(settings).transaction() as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 14")
    before, overlay = _rows(settings, "sync_records"), _rows(settings, "overlay")

    restarted = AppClient(make_app(settings))  # migrated (the mark), then its start prepares and converges

    after = _rows(settings, "sync_records")
    assert [key for key in before if before[key] != after[key]] == [("cqc", DOVETAIL)], "only what was misread"
    assert _rows(settings, "overlay") == overlay, "the maintainers' edits, stated by definition, stay"
    shown = restarted.get(f"/services/{DOVETAIL_ID}").json()
    assert (shown["gender"], shown["gender_read_from_text"]) == (None, {"female_only": "women only"})
    assert shown["needs_met"] == ["learning_disability", "substance_misuse"]
    assert shown["needs_read_from_text"] == {"autism": "autistic", "female_only": "women only"}
    for_a_man = restarted.post("/match", json={"home": {"postcode": "NG18 2AT"}, "gender": "male",
                                               "max_distance_km": 10, "types": ["supported_accommodation"]}).json()
    assert [r["id"] for r in for_a_man["results"]] == [DOVETAIL_ID]
    assert "Its listing suggests it takes women only ('women only')" in for_a_man["results"][0]["explanation"]
    assert restarted.get(f"/services/{ASHTON_ID}").json()["gender"] == "male_only"

    store = SyncStore(store_of(settings))
    assert store.meta(REPREPARE_DUE) is None
    assert reprepare_due(store, lambda: GeographyPlacer(geography)) == 0 and _rows(settings, "sync_records") == after



def test_a_store_prepared_again_reads_the_review_rows_of_the_records_it_changes_alone(
        tmp_path, geodata_dir, data_dir, replay, geography, monkeypatch):
    """Before, preparing the store again read every review row to tell whether each record it changed is shown: Field
    House's (held for review) too, though only Dovetail House changes. It reads those of the records it changes
    alone (Dovetail House, its type confirmed by CQC, has none), and prepares Dovetail House again as before."""
    from tests.sync.test_one_service_one_record import Reads

    settings = settings_for(make_home(tmp_path / "home", geodata_dir), data_dir, replay, warm_up=False)
    synced_with_old_code(settings, replay, geography, monkeypatch)
    store = Reads(store_of(settings))
    store.set_meta(REPREPARE_DUE, "a test")
    assert [":".join(row.key) for row in store.reviews()] == [FIELD_HOUSE]
    store.reviews_read.clear()

    assert reprepare_due(store, lambda: GeographyPlacer(geography)) == 1

    assert store.reviews_read == [], "no review row but those of the records changed"
    [dovetail] = store.records(service_ids=[DOVETAIL_ID])
    assert "autism" not in dovetail.service["needs_met"] and store.meta(REPREPARE_DUE) is None
