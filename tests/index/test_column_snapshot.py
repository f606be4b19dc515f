"""The column snapshot a build stores: a reader that loads it holds exactly the columns it would have read
row by row, and a file edited since, or written before snapshots, is still read right."""

from __future__ import annotations

import json
import sqlite3
import threading

import numpy as np
import pytest
import shapely

import search.embedded as embedded
from rehabmap.index.base import ServiceQuery
from rehabmap.taxonomy import ServiceType
from search.columns import OverlaidColumns, ServiceColumns, _json_texts, _Text
from search.embedded import EmbeddedIndex, EmbeddedWriter, _Generation
from tests.index.conftest import edit_rounds


def assert_same(a: object, b: object, where: str) -> None:
    """Equal values, array for array (same dtype and shape), down through dicts, lists and helper objects."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        assert all(shapely.equals_exact(x, y, tolerance=0) for x, y in zip(a, b)) if a.dtype == object and a.size and \
            isinstance(a.flat[0], shapely.Geometry) else bool((a == b).all()), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where  # type: ignore[arg-type]
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")  # type: ignore[index]
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b)):  # type: ignore[call-overload]
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, shapely.Geometry):
        assert shapely.equals_exact(a, b, tolerance=0), where  # the same coordinates, to the bit
    elif isinstance(a, _Text):  # decoded on first use: compare what it decodes to
        for name in ("ids", "ids_in_order", "names_in_order", "id_order", "name_order"):
            assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, shapely.STRtree):
        assert_same(list(a.geometries), list(b.geometries), where)  # type: ignore[attr-defined]
    elif hasattr(a, "__dict__"):
        assert type(a) is type(b), where
        assert_same(vars(a), vars(b), where)
    else:
        assert a == b, where


def read_row_by_row(generation: _Generation) -> ServiceColumns:
    generation.conn.execute("BEGIN")
    try:
        return generation._read_columns()
    finally:
        generation.conn.execute("COMMIT")


def test_the_snapshot_loads_the_columns_read_row_by_row(corpus, tmp_path):
    """Every array of the columns (types, needs, ages, area and catchment codes, polygons, the name and id
    orders, the grid) is the same, value for value and type for type, whichever way it was loaded."""
    path = tmp_path / "index.sqlite"
    EmbeddedWriter(path).replace_all(corpus)
    generation = _Generation(path)
    assert generation.state.columns is generation.base
    assert len(generation.base.polygons) > 0 and len(generation.base.serves) > 0
    assert_same(vars(generation.base), vars(read_row_by_row(generation)), "columns")


def test_opening_decodes_no_id_or_name_until_one_is_asked_for(corpus, tmp_path):
    """Searches answer with row numbers, so a reader opens without the per-row text (half of opening 500k
    services); a lookup by id decodes the ids then, and finds every id and none that is not there."""
    path = tmp_path / "index.sqlite"
    EmbeddedWriter(path).replace_all(corpus[:500])
    index = EmbeddedIndex(path)
    query = ServiceQuery(types=frozenset({ServiceType.supported_accommodation}))
    hits = index.nearest(53.80, -1.55, query, k=5, radius_km=None)
    text = index._current().columns._text
    assert len(hits) == 5 and text._decoded == {}
    ids = sorted(s.id for s in corpus[:500])
    assert [index.get(i).id for i in ids[::50]] == ids[::50]
    assert set(text._decoded) == {"id"}
    for missing in ("", "a", ids[0][:-1], ids[-1] + "0", "zzz:1"):
        assert missing not in ids and index.get(missing) is None


def test_threads_that_look_up_ids_at_once_decode_them_once_and_all_find_theirs(corpus, tmp_path):
    path = tmp_path / "index.sqlite"
    EmbeddedWriter(path).replace_all(corpus[:400])
    index = EmbeddedIndex(path)
    text = index._current().columns._text
    wanted = [s.id for s in corpus[:400:25]]
    start = threading.Barrier(len(wanted))
    found: dict[str, str | None] = {}

    def look_up(service_id: str) -> None:
        start.wait()
        service = index.get(service_id)
        found[service_id] = service.id if service else None

    threads = [threading.Thread(target=look_up, args=(i,)) for i in wanted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == {i: i for i in wanted}
    assert text.ids is text.ids and len(text.ids) == 400


def test_a_reader_opened_after_edits_lays_them_over_the_snapshot(corpus, tmp_path):
    path = tmp_path / "index.sqlite"
    writer = EmbeddedWriter(path)
    writer.replace_all(corpus[:600])
    for changes in edit_rounds(corpus[:600], seed=5, rounds=2):
        writer.upsert(changes)
    generation = _Generation(path)
    assert isinstance(generation.state.columns, OverlaidColumns)
    assert generation.state.edit_lag_s == 0.0
    rebuilt = tmp_path / "rebuilt.sqlite"
    EmbeddedWriter(rebuilt).replace_all(EmbeddedIndex(path).all())
    assert_answers_equal(EmbeddedIndex(path), EmbeddedIndex(rebuilt))


def assert_answers_equal(index: EmbeddedIndex, expected: EmbeddedIndex) -> None:
    for lat, lon in ((53.80, -1.55), (51.50, -0.12), (52.48, -1.90)):
        for types in (None, {ServiceType.supported_accommodation}, {ServiceType.advocacy, ServiceType.vcfse}):
            query = ServiceQuery(types=frozenset(types) if types else None)
            got = [(h.service.id, h.distance_km) for h in index.nearest(lat, lon, query, k=25, radius_km=80)]
            assert got == [(h.service.id, h.distance_km)
                           for h in expected.nearest(lat, lon, query, k=25, radius_km=80)]
    assert [s.id for s in index.find(ServiceQuery(), limit=100).items] == \
        [s.id for s in expected.find(ServiceQuery(), limit=100).items]


def test_past_the_overlay_bound_a_reader_reads_the_edited_rows_one_by_one(corpus, tmp_path, monkeypatch):
    path = tmp_path / "index.sqlite"
    writer = EmbeddedWriter(path)
    writer.replace_all(corpus[:300])
    writer.upsert(edit_rounds(corpus[:300], seed=9, rounds=1)[0])
    monkeypatch.setattr(embedded, "OVERLAY_MAX_ROWS", 10)
    generation = _Generation(path)
    assert generation.state.columns is generation.base and not generation.state.changed
    assert_same(vars(generation.base), vars(read_row_by_row(generation)), "columns")


def test_a_file_written_before_snapshots_is_read_row_by_row(corpus, tmp_path):
    path = tmp_path / "index.sqlite"
    EmbeddedWriter(path).replace_all(corpus[:300])
    expected = tmp_path / "expected.sqlite"
    EmbeddedWriter(expected).replace_all(corpus[:300])
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE column_snapshot")
    conn.close()
    assert_answers_equal(EmbeddedIndex(path), EmbeddedIndex(expected))


@pytest.mark.parametrize("size", [0, 1])
def test_a_tiny_build_has_a_snapshot_too(corpus, tmp_path, size):
    path = tmp_path / "index.sqlite"
    EmbeddedWriter(path).replace_all(corpus[:size])
    generation = _Generation(path)
    assert len(generation.base) == size
    assert_same(vars(generation.base), vars(read_row_by_row(generation)), "columns")


def test_the_snapshot_writes_its_text_columns_as_json_dumps_does():
    """Ids and name keys are joined where no text needs escaping: the bytes stay `json.dumps`'s whatever a
    text holds (a quote, a backslash, a control or non-ASCII character, a lone surrogate), wherever it is."""
    plain = [f"cqc:1-{i}" for i in range(2500)]
    assert _json_texts(plain) == json.dumps(plain).encode()
    assert _json_texts([]) == b"[]"
    for odd in ('say "hi"', "back\\slash", "tab\there", "\x7f", "café", "\u2019", "\U0001f600", "\ud800", ""):
        for at in (0, 1023, 1024, 2500):
            texts = [*plain[:at], odd, *plain[at:]]
            assert _json_texts(texts) == json.dumps(texts).encode(), (odd, at)
