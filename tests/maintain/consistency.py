"""What the crash and fuzzing tests check of a site after it was killed or fuzzed: its index's records, and that
both stores are whole and the live index holds exactly what the overlay and audit log say. Not a test module:
importing it brings no tests along (these lived in tests/maintain/test_crash.py, which test_openapi_maintain.py
imported)."""

from __future__ import annotations

import sqlite3

from rehabmap.index.base import overlay_record
from search.embedded import EmbeddedIndex, index_file
from tests.maintain.conftest import Site


def index_records(site: Site) -> dict:
    return {s.id: s for s in EmbeddedIndex(index_file(site.home)).all()}


def assert_consistent(site: Site) -> None:
    """Both stores are whole, and the live index holds exactly what the overlay and audit log say."""
    for path in (index_file(site.home), *site.home.glob("directory.sqlite")):
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",), path
    with sqlite3.connect(index_file(site.home)) as conn:
        conn.execute("INSERT INTO services_fts (services_fts) VALUES ('integrity-check')")
    assert not (site.home / f"{index_file(site.home).name}-journal").exists()
    records = index_records(site)
    overlay, _ = site.directory.overlay.entries()
    entries, _ = site.directory.audit.entries(resource_type="service", limit=1_000_000)
    last_value: dict[tuple[str, str], object] = {}
    for entry in entries:
        last_value[(entry.resource_id, entry.field)] = entry.new
    for service_id, entry in overlay.items():
        current = records[service_id]
        assert overlay_record(current, entry.fields) == current, f"{service_id}: the index lacks its edits"
        for field, value in entry.fields.items():
            if not entry.created:
                assert last_value[(service_id, field)] == value, f"{service_id}.{field}: overlay and audit differ"
