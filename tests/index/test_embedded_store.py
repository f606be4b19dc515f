"""The embedded index's file: query columns stored beside each record, records read only when returned.

Real SQLite files in temporary folders; the records read back must be exactly the records written, before
and after maintainers' edits, and a file in the old layout must say how to fix it.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import threading
import time
import weakref
from dataclasses import replace

import numpy as np
import pytest

from app.parts import open_backend
from rehabmap.config import Settings
from rehabmap.errors import IndexNotBuilt, IndexUnavailable, told
from search import embedded
from rehabmap.index.base import Coverage, ServiceQuery, overlay_record
from search.columns import ServiceColumns
from search.embedded import SCHEMA_VERSION, EmbeddedIndex, EmbeddedWriter, _RecordCache, index_file, previous_index
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType
from bench.synthetic import make_services
from tests.index.conftest import TODAY, _vary

# More rows than one streamed batch (1,000), so `all()` crosses batches.
SIZE = 2300


@pytest.fixture(scope="module")
def services(small_areas) -> list[Service]:
    return _vary(make_services(small_areas, SIZE, seed=5, today=TODAY), seed=5)


@pytest.fixture
def path(tmp_path, services):
    path = index_file(tmp_path)
    EmbeddedWriter(path).replace_all(services)
    return path


def test_a_file_of_the_old_layout_says_to_rebuild_it(tmp_path, services):
    path = tmp_path / "index.sqlite"
    with sqlite3.connect(path) as conn:  # what rehabmap wrote before schema 2: the docs alone
        conn.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                           "CREATE TABLE services (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
                           " service_type TEXT NOT NULL, doc TEXT NOT NULL);")
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", "1"),
                                                            ("built_at", "2026-11-23T10:00:00+00:00")])
        conn.execute("INSERT INTO services VALUES (1, ?, ?, ?)",
                     (services[0].id, services[0].service_type.value, services[0].model_dump_json()))
    assert not EmbeddedIndex(path).built() and not EmbeddedIndex(tmp_path / "none.sqlite").built()
    for attempt in (lambda: EmbeddedIndex(path).info(), lambda: EmbeddedIndex(path).get(services[0].id),
                    lambda: EmbeddedWriter(path).upsert({services[0].id: {"phone": "0113 496 0000"}})):
        with pytest.raises(IndexNotBuilt) as caught:
            attempt()
        message = str(caught.value)
        assert caught.value.where == str(path) and "older version of rehabmap (schema 1" in message
        assert "Run 'rehabmap index SOURCE...' again" in message
    # Nothing was changed by the refused edit.
    with sqlite3.connect(path) as conn:
        assert json.loads(conn.execute("SELECT doc FROM services").fetchone()[0]) == services[0].model_dump(mode="json")

    # Once rebuilt, the same reader answers.
    reader = EmbeddedIndex(path)
    EmbeddedWriter(path).replace_all(services)
    assert reader.built() and reader.loads == 0, "built, and told without loading the file"
    assert reader.info().count == SIZE and reader.get(services[0].id) == services[0]


@pytest.mark.parametrize("older", ["2", "3", "4", "5"])
def test_a_file_whose_read_needs_or_gender_were_stored_as_stated_is_refused(tmp_path, services, older):
    """Schema 2 (session 16 and before) held needs read from a record's words in needs_met/needs_not_met, as
    if stated, and schema 3 (session 17) a gender read from them as `gender`, the filtered column: read as it
    is, it would confirm them, or leave a person out on a guess; schema 4 (session 19) held a dated file's records
    without the file (`Provenance.edition`), read as a live source's listing; schema 5 (session 34) held "not said"
    of taking referrals as "no", and no capacity, which "best fit first" reads from the columns. It is refused with
    what to do, never misread."""
    path = tmp_path / "index.sqlite"
    EmbeddedWriter(path).replace_all(services[:10])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (older,))
    with pytest.raises(IndexNotBuilt, match=rf"older version of rehabmap \(schema {older}; this version reads "
                                            r"schema 6\)\. Run 'rehabmap index SOURCE\.\.\.' again"):
        EmbeddedIndex(path).info()


def test_the_stored_columns_are_the_columns_of_the_records(path, services):
    """Loaded from the file without building a Service, the columns are what the records give."""
    loaded = EmbeddedIndex(path)._current().columns
    built = ServiceColumns.from_services(services)
    for name, value in vars(built).items():
        if isinstance(value, np.ndarray) and value.dtype != object:
            assert np.array_equal(getattr(loaded, name), value), name
    for name in ("ids", "subtype", "gender"):
        assert getattr(loaded, name).tolist() == getattr(built, name).tolist(), name
    for name in ("lang_met", "lang_not", "located_in", "serves"):
        assert {k: v.tolist() for k, v in getattr(loaded, name).items()} == \
            {k: v.tolist() for k, v in getattr(built, name).items()}, name
    assert all(loaded.row_of(i) == built.row_of(i) == row for row, i in enumerate(built.ids))
    assert [p.wkt for p in loaded.polygons] == [p.wkt for p in built.polygons] and len(loaded.polygons) > 0
    assert loaded.lang_met and loaded.serves  # the corpus has languages and coded catchments to compare


def test_records_read_back_are_the_records_written(path, services):
    index = EmbeddedIndex(path)
    by_id = {s.id: s for s in services}
    assert all(index.get(s.id) == s for s in services[::7])
    assert index.get("synthetic:no-such-service") is None

    everything = ServiceQuery(include_inactive=True)
    page = index.find(everything, limit=40, offset=15)
    assert len(page.items) == 40 and page.total == SIZE
    assert all(s == by_id[s.id] for s in page.items)

    home = services[100]
    hits = index.nearest(home.lat, home.lon, everything, k=25, radius_km=200)
    assert hits[0].service == home and all(h.service == by_id[h.service.id] for h in hits)
    distances = [h.distance_km for h in hits]
    assert distances == sorted(distances)

    # A page asked twice (now from the cache) is the same, in the same order.
    assert index.find(everything, limit=40, offset=15).items == page.items


def test_all_streams_every_record_in_order_without_holding_them(path, services):
    index = EmbeddedIndex(path)
    stream = index.all()
    first = next(stream)
    assert first == services[0]
    assert len(index._current().records) == 0  # a full pass goes past the cache: it would evict what is in use
    assert [first, *stream] == services
    assert len(index._current().records) == 0


def test_a_pass_nearest_first_over_an_index_the_cache_holds_whole_reads_each_record_once(path, services,
                                                                                          monkeypatch):
    """A download near a place passes every record it lists, nearest first: where the cache holds the whole index
    (a real directory's size), the pass keeps what it reads, and the next pass, or a match, reads none again.
    Over an index larger than the cache it goes past it, as every other pass does."""
    home = services[7]
    everything = ServiceQuery(include_inactive=True)
    index = EmbeddedIndex(path)
    first = [hit.service for hit in index.scan_nearest(home.lat, home.lon, everything)]
    assert sorted(s.id for s in first) == sorted(s.id for s in services)
    assert len(index._current().records) == SIZE
    again = [hit.service for hit in index.scan_nearest(home.lat, home.lon, everything)]
    assert all(a is b for a, b in zip(again, first, strict=True))  # the very objects: nothing read again
    assert index.get(home.id) is next(s for s in first if s.id == home.id)

    monkeypatch.setattr(embedded, "RECORD_CACHE_SIZE", SIZE - 1)  # an index larger than the cache
    larger = EmbeddedIndex(path)
    assert [hit.service for hit in larger.scan_nearest(home.lat, home.lon, everything)] == first
    assert len(larger._current().records) == 0


def test_best_fit_first_reads_only_the_records_it_gives(path, services):
    """"Best fit first" ranks every passing row over the columns (fit, then distance) and reads only the k it
    gives: before, it read and validated records nearest first until no further one could do better, ~10k a
    type at 100k services, as few report a vacancy (2.4 s a page). The order itself is held to the rule by
    tests/index/test_matching_bruteforce.py."""
    home = services[7]
    index = EmbeddedIndex(path)
    hits = index.best_fit(home.lat, home.lon, ServiceQuery(needs=("autism",)), k=5, radius_km=None,
                          within=home.areas.icb_code, margin_km=5.0, since=TODAY)
    assert len(hits) == 5 and len(index._current().records) == 5
    assert {h.service.id for h in hits} == {s.id for s in index._current().records._items.values()}


def test_a_record_edited_during_a_cached_pass_is_given_as_read_and_not_kept(path, services):
    """The pass cannot start again part way: a batch read after an edit gives its records as edited, as a pass
    always has; it is not kept under the keys of the state the pass began in, where a reader still answering
    from that state (its columns from before the edit) would be handed the edited record."""
    home = services[0]
    index = EmbeddedIndex(path)
    order = [hit.service.id for hit in EmbeddedIndex(path).scan_nearest(home.lat, home.lon, ServiceQuery())]
    stream = index.scan_nearest(home.lat, home.lon, ServiceQuery())
    head = [next(stream).service for _ in range(1000)]  # the first batch, read and kept
    later = next(s for s in services if s.id == order[1500])
    assert EmbeddedWriter(path).upsert({later.id: {"name": "Renamed during the pass"}})
    passed = [*head, *(hit.service for hit in stream)]
    assert [s.id for s in passed] == order
    assert next(s for s in passed if s.id == later.id).name == "Renamed during the pass"
    assert all(s == next(t for t in services if t.id == s.id) for s in passed[:1000])
    kept = index._current().records
    assert all(s.name != "Renamed during the pass" for s in kept._items.values())
    assert index.get(later.id).name == "Renamed during the pass"  # the reader caught up: the edit is served


def test_edits_and_added_services_read_back_as_written(path, services):
    index = EmbeddedIndex(path)
    edited, retired = services[10], services[11]
    assert index.get(edited.id) == edited  # cached before the edit
    added = services[12].model_copy(update={"id": "synthetic:added-by-edit", "name": "Wren Lodge Recovery House"})
    written = EmbeddedWriter(path).upsert({
        edited.id: {"name": "Kestrel Recovery House", "needs_met": ["autism"], "needs_not_met": []},
        retired.id: {"status": "inactive"},
        added.id: added.model_dump(mode="json"),
    })
    assert {s.id for s in written} == {edited.id, retired.id, added.id}
    now = {s.id: s for s in written}

    assert index.info().count == SIZE + 1
    assert index.get(edited.id) == now[edited.id] and index.get(edited.id).name == "Kestrel Recovery House"
    assert index.get(added.id) == now[added.id]
    # The columns follow the edits: the new name sorts and is found, the retired service is left out.
    assert [s.id for s in index.find(ServiceQuery(text="Kestrel", include_inactive=True)).items] == [edited.id]
    assert [s.id for s in index.find(ServiceQuery(text="Wren Lodge", include_inactive=True)).items] == [added.id]
    assert retired.id not in {s.id for s in index.find(ServiceQuery(), limit=SIZE).items}
    assert index.find(ServiceQuery(needs=("autism",), needs_confirmed=True, include_inactive=True),
                      limit=SIZE).items.count(now[edited.id]) == 1
    streamed = list(index.all())
    assert streamed == [now.get(s.id, s) for s in services] + [now[added.id]]


def test_an_edit_the_reader_has_not_noticed_is_never_mixed_with_old_columns(path, services):
    """A record read after an in-place edit belongs to the new state, so the reader answers from the new
    state, even when the file's modification time does not show the edit yet."""
    index = EmbeddedIndex(path)
    target = services[20]
    query = ServiceQuery(types=frozenset({target.service_type}), include_inactive=True)
    assert index.info().count == SIZE  # loaded; the target's record not read yet
    before = os.stat(path)
    EmbeddedWriter(path).upsert({target.id: {"status": "inactive" if target.status == "active" else "active"}})
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the reader's check sees no change

    hit = index.nearest(target.lat, target.lon, query, k=1)[0]
    assert hit.service.id == target.id and hit.service.status != target.status
    columns = index._current().columns
    assert bool(columns.mask(ServiceQuery())[columns.row_of(target.id)]) == (hit.service.status == "active")
    active_only = index.nearest(target.lat, target.lon, replace(query, include_inactive=False), k=50)
    assert (target.id in {h.service.id for h in active_only}) == (hit.service.status == "active")


def test_readers_on_many_threads_while_edits_land(path, services):
    """Four readers on threads while fifty edits land back to back, each edit one commit changing five neighbours
    together (their phone, status and name): every read answers, and each answer is of one state of the file (the
    five records of one edit, the filters and the text agreeing with the records given). Before, a read
    an edit overtook caught up and asked again at most three times, then answered "The index kept changing while
    it was read (maintainers' edits); ask again." (a CI run, with eight edits)."""
    index = EmbeddedIndex(path)
    home = services[0]
    group = {h.service.id for h in index.nearest(home.lat, home.lon, ServiceQuery(include_inactive=True), k=5)}
    before = {s.id: s for s in services if s.id in group}
    edits = 50

    def edit(n: int) -> dict:
        return {"phone": f"0113 496 {n:04d}", "status": "inactive" if n % 2 else "active",
                "name": f"{'Dipper' if n % 2 else 'Wagtail'} House {n}"}

    def one_state(found: list[Service]) -> int | None:
        """The edit the records are of (None: before the first), asserting that they are all of it."""
        if all(s == before[s.id] for s in found):
            return None
        n = int(found[0].phone[-4:])
        assert all(s == overlay_record(before[s.id], edit(n)) for s in found), n
        return n

    errors: list[BaseException] = []
    answered = [threading.Event() for _ in range(4)]
    stop = threading.Event()

    def read(reader: int) -> None:
        try:
            while True:
                last = stop.is_set()
                hits = index.nearest(home.lat, home.lon, ServiceQuery(include_inactive=True), k=5)
                assert {h.service.id for h in hits} == group
                one_state([h.service for h in hits])
                active = [h.service for h in index.nearest(home.lat, home.lon, ServiceQuery(), k=5)]
                assert all(s.status == "active" for s in active)
                ours = [s for s in active if s.id in group]
                if one_state(ours) is not None:  # an edit's: all five active (an even edit), or none
                    assert len(ours) == 5 and one_state(ours) % 2 == 0
                named = index.find(ServiceQuery(text="Wagtail", include_inactive=True)).items
                assert all("Wagtail" in s.name for s in named) and len(named) in (0, 5)
                if named:
                    assert one_state(named) % 2 == 0
                every = index.find(ServiceQuery(include_inactive=True), limit=SIZE).items
                one_state([s for s in every if s.id in group])
                answered[reader].set()
                if last:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            answered[reader].set()

    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for event in answered:
        event.wait()
    writer = EmbeddedWriter(path)
    for n in range(edits):
        assert len(writer.upsert({service_id: edit(n) for service_id in group})) == 5
    stop.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    assert one_state([index.get(service_id) for service_id in group]) == edits - 1


@pytest.mark.parametrize("ask", ["record", "words"])
def test_an_edit_landing_at_each_read_of_the_file_never_overtakes_the_answer(path, services, monkeypatch, ask):
    """An edit lands as each read of records or words starts (the reader's connection's trace callback commits one
    from the writer): the answer is of the state after the first, read with the file held, where the next cannot
    commit (it waits for the read; here its wait is cut to 0.1 s and it gives up). Before, a record read
    so was overtaken at each of its four attempts and answered "ask again", and the words of a later state passed
    the record this state had cached: a search for the new name gave the service by its old one."""
    monkeypatch.setattr(embedded, "_WRITE_TIMEOUT_S", 0.1)
    target = services[30]
    index = EmbeddedIndex(path)
    assert index.info().count == SIZE  # loaded
    if ask == "words":
        assert index.get(target.id) == target  # its record cached, as the state before the edits has it
    writer = EmbeddedWriter(path)
    landed: list[str] = []
    refused: list[str] = []

    def edit_as_a_read_starts(statement: str) -> None:
        if "FROM services WHERE rowid IN" in statement or "services_fts MATCH" in statement:
            try:
                writer.upsert({target.id: {"name": f"Wagtail House {len(landed)}"}})
                landed.append(statement)
            except IndexUnavailable as error:
                refused.append(told(error))

    connection = _traced(index, monkeypatch, edit_as_a_read_starts)
    try:
        found = ([index.get(target.id)] if ask == "record"
                 else index.find(ServiceQuery(text="Wagtail", include_inactive=True)).items)
    finally:
        connection.set_trace_callback(None)
    assert [s.name for s in found] == ["Wagtail House 0"]
    assert len(landed) == 1 and refused
    assert set(refused) == {"The index is busy: readers or another edit have held it for more than a minute. "
                            "Try again in a minute."}
    assert index.get(target.id) == found[0]


def _traced(index: EmbeddedIndex, monkeypatch, callback) -> sqlite3.Connection:
    """Every statement the reader runs, on its generation's connection (returned) or on one it opens to hold the
    file (`embedded._reader`), passed to `callback` as it starts."""
    opened = getattr(embedded, "_reader", None)
    if opened is not None:
        def reader(path) -> sqlite3.Connection:
            connection = opened(path)
            connection.set_trace_callback(callback)
            return connection
        monkeypatch.setattr(embedded, "_reader", reader)
    connection = index._current().generation.conn
    connection.set_trace_callback(callback)
    return connection


def test_an_answer_an_edit_overtook_on_a_file_deleted_since_says_no_index_is_built(path, services, monkeypatch):
    """An edit overtakes a read of a record, and the file is deleted (not replaced by a rebuild) before the answer is
    made again with the file held (`_held`), which opens it by its name: that escaped as a raw
    `sqlite3.OperationalError` ("unable to open database file"), a 500. There is no file to answer from: it is
    `IndexNotBuilt`, in the words a reader that finds no file uses, naming the file for the operator."""
    target = services[30]
    index = EmbeddedIndex(path)
    assert index.info().count == SIZE  # loaded
    reads: list[str] = []

    def as_a_read_starts(statement: str) -> None:
        if "FROM services WHERE rowid IN" in statement and not reads:
            reads.append(statement)
            EmbeddedWriter(path).upsert({target.id: {"name": "Wagtail House"}})
            path.unlink()

    connection = _traced(index, monkeypatch, as_a_read_starts)
    try:
        with pytest.raises(IndexNotBuilt, match=rf"^No index has been built: {path.name} is not there\. ") as raised:
            index.get(target.id)
    finally:
        connection.set_trace_callback(None)
    assert reads and raised.value.status == 503 and raised.value.where == str(path)


class _Announced:
    """The reader's real load lock, which says when a thread comes to take it: the reader has found the file by then
    (`EmbeddedIndex._current`'s stat) and has not yet loaded it."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock, self.wanted = lock, threading.Event()

    def __enter__(self) -> bool:
        self.wanted.set()
        return self.lock.__enter__()

    def __exit__(self, *exc) -> None:
        self.lock.__exit__(*exc)


def test_a_file_deleted_between_the_readers_look_and_its_load_says_no_index_is_built(path, monkeypatch):
    """The file is deleted after the reader found it and before it loads it: the load's own stat raised a raw
    `FileNotFoundError`, a 500. It is `IndexNotBuilt`, in the words a reader that finds no file uses."""
    index = EmbeddedIndex(path)
    lock = _Announced(index._load_lock)
    monkeypatch.setattr(index, "_load_lock", lock)
    raised: list[BaseException] = []

    def read() -> None:
        try:
            index.info()
        except BaseException as error:
            raised.append(error)

    with lock.lock:
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert lock.wanted.wait(60), "the reader never came to load the file"
        path.unlink()
    reader.join(60)
    [error] = raised
    assert isinstance(error, IndexNotBuilt) and error.status == 503 and error.where == str(path)
    assert str(error).startswith(f"No index has been built: {path.name} is not there. ")


def test_a_file_deleted_between_the_look_and_the_open_of_built_is_no_index(path, monkeypatch):
    """`built()` found the file, and it was deleted before it opened it (here as its URI is made): the open raised
    a raw `sqlite3.OperationalError` ("unable to open database file"), which a `rehabmap sync` asking whether there
    is an index to catch up showed as a traceback. There is none: False, as for a file its look does not find."""
    made = embedded.sqlite_uri

    def deleted_as_it_is_opened(where, mode: str) -> str:
        path.unlink(missing_ok=True)
        return made(where, mode)

    monkeypatch.setattr(embedded, "sqlite_uri", deleted_as_it_is_opened)
    assert EmbeddedIndex(path).built() is False
    assert not path.exists()


def test_an_answer_an_edit_overtook_keeps_no_other_read_waiting(path, services, monkeypatch):
    """An edit overtakes a read of a record; the reader answers again with the file held. That answer held the
    reader's load lock and its connection's lock as well, to its end, so every other thread's read of a record, or
    its catch-up, queued behind it. Now it holds only the file, on a connection of its own: another thread reads a
    record and catches up while the answer waits (here for that read, 2 s at most), and the answer is still of one
    state."""
    target, other = services[30], services[31]
    index = EmbeddedIndex(path)
    assert index.info().count == SIZE  # loaded
    writer = EmbeddedWriter(path)
    asker = threading.current_thread()
    reads: list[str] = []
    other_read: list[Service | None] = []
    answered = threading.Event()

    def read_other() -> None:
        other_read.append(index.get(other.id))
        answered.set()

    def as_a_read_starts(statement: str) -> None:
        if "FROM services WHERE rowid IN" not in statement or threading.current_thread() is not asker:
            return
        reads.append(statement)
        if len(reads) == 1:  # the first read: an edit overtakes it
            writer.upsert({target.id: {"name": "Wagtail House"}, other.id: {"name": "Dipper House"}})
        elif len(reads) == 2:  # the answer again, with the file held: another thread reads meanwhile
            threading.Thread(target=read_other, daemon=True).start()
            answered.wait(2)

    connection = _traced(index, monkeypatch, as_a_read_starts)
    try:
        found = index.get(target.id)
    finally:
        connection.set_trace_callback(None)
    assert len(reads) == 2 and found is not None and found.name == "Wagtail House"
    assert answered.is_set(), "the other thread's read waited for the held answer"
    assert [s.name for s in other_read if s is not None] == ["Dipper House"]


@pytest.mark.parametrize("ask", ["around", "nearest_of_types"])
def test_the_parts_of_a_search_by_words_near_a_place_are_of_one_state(path, services, monkeypatch, ask):
    """`around` and `nearest_of_types` with words are asked in parts (`around_in_parts`: the nearest, then how many;
    one `nearest` a type); an edit lands as the second part reads the words, naming a service so they match it.
    Each part was answered on its own, from whatever state it met: the count, or the second type's list, was of the
    edited state, the first part of the one before (no service of those words, yet one counted). Every part is of
    one state now."""
    types = frozenset({services[40].service_type,
                       next(s.service_type for s in services if s.service_type != services[40].service_type)})
    target = next(s for s in services if s.service_type == next(iter(types)))  # of the type asked first
    index = EmbeddedIndex(path)
    assert index.info().count == SIZE  # loaded
    writer = EmbeddedWriter(path)
    words: list[str] = []

    def edit_at_the_second_read_of_words(statement: str) -> None:
        if "services_fts MATCH" in statement:
            words.append(statement)
            if len(words) == 2:
                writer.upsert({target.id: {"name": "Wagtail House"}})

    connection = _traced(index, monkeypatch, edit_at_the_second_read_of_words)
    query = ServiceQuery(text="Wagtail", include_inactive=True)
    try:
        if ask == "around":
            found = index.around(target.lat, target.lon, query, k=5, radius_km=1000)
            named, counted = [h.service.id for h in found.nearest], found.total
        else:
            by_type = index.nearest_of_types(target.lat, target.lon, replace(query, types=types), k=5)
            named, counted = [h.service.id for h in by_type[target.service_type]], 1
    finally:
        connection.set_trace_callback(None)
    assert len(words) > 2  # the edit landed during the answer, which was made again
    assert (named, counted) == ([target.id], 1)


def test_a_read_that_starts_while_an_edit_waits_to_commit_waits_for_it(path, services):
    """A reader holds the file (as an answer an edit overtook does); an edit waits to commit for it, and meanwhile
    keeps any new read from starting (SQLite's pending lock). A reader loading the file then waited SQLite's default,
    5 s, and failed "database is locked" while the edit would have waited a minute. It waits as long as the edit
    does (`_WRITE_TIMEOUT_S`): here 5.5 s, then it reads the edited file."""
    target = services[50]
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN")
    holder.execute("SELECT count(*) FROM meta").fetchone()  # the shared lock, held
    edited = threading.Thread(target=lambda: EmbeddedWriter(path).upsert({target.id: {"name": "Wagtail House"}}))
    edited.start()
    time.sleep(0.5)  # the edit waits to commit
    released = threading.Timer(5.5, lambda: holder.execute("COMMIT"))
    released.start()
    try:
        started = time.monotonic()
        index = EmbeddedIndex(path)
        assert index.get(target.id).name == "Wagtail House"
        assert time.monotonic() - started > 4.5
    finally:
        released.join()
        edited.join()
        holder.close()


def test_a_file_an_edit_keeps_busy_past_the_wait_is_unavailable_not_to_be_rebuilt(path, services, monkeypatch):
    """A reader that waited its whole while for an edit to commit (`_WRITE_TIMEOUT_S`, here 0.3 s) was told the file
    "cannot be read (database is locked). Run 'rehabmap index SOURCE...' again to rebuild it." (a 503
    index_not_built): a rebuild for a file nothing is wrong with. It is unavailable for now (a 503 with Retry-After,
    try again), and the file reads once the edit has committed."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN")
    holder.execute("SELECT count(*) FROM meta").fetchone()
    edited = threading.Thread(target=lambda: EmbeddedWriter(path).upsert({services[50].id: {"name": "Wagtail House"}}),
                              daemon=True)
    edited.start()
    time.sleep(0.5)  # the edit waits to commit, as long as it may
    monkeypatch.setattr(embedded, "_WRITE_TIMEOUT_S", 0.3)  # the reader's wait, cut short
    try:
        with pytest.raises(IndexUnavailable, match=r"^The index is busy: .* for more than a minute\.$") as raised:
            EmbeddedIndex(path).info()
        assert told(raised.value).endswith(" for more than a minute. Try again in a minute.")
        assert raised.value.headers["Retry-After"]
    finally:
        holder.execute("COMMIT")
        edited.join()
        holder.close()
    assert EmbeddedIndex(path).get(services[50].id).name == "Wagtail House"


def test_an_edit_of_an_index_never_built_says_so_and_makes_no_file(tmp_path, services):
    """An edit with no index file (never built) opened the file to write, which made an empty one: the edit said "The
    index file index-schema6.sqlite cannot be read (no such table: meta). Run 'rehabmap index SOURCE...' again to
    rebuild it", and so did every read after it, of a file nothing had built. It says, as a reader does, that no
    index is built, and leaves no file; a build then answers as ever."""
    path = index_file(tmp_path)
    with pytest.raises(IndexNotBuilt) as raised:
        EmbeddedWriter(path).upsert({services[0].id: {"name": "Wagtail House"}})
    assert raised.value.message == (f"No index has been built: {path.name} is not there. "
                                    "Run 'rehabmap index SOURCE...' first.")
    assert raised.value.where == str(path) and not path.exists()
    EmbeddedWriter(path).replace_all(services[:10])
    assert EmbeddedIndex(path).info().count == 10


def test_an_index_in_a_folder_named_with_uri_characters_is_edited_and_read_there(tmp_path, services):
    """The index file is opened by its SQLite URI (`mode=ro`/`rw`), which gave the path as it was: in a home folder
    named with '#' or '?' (or '%41', read as 'A') the path was cut there, so an edit answered that no index was built
    (or made a stray file) though one was, and a read of the file by its name the same; before this session's URIs,
    edits worked there. The path is escaped: the edit lands in the file, and a new reader reads it."""
    path = index_file(tmp_path / "rehab #2 %41?x")
    EmbeddedWriter(path).replace_all(services[:10])
    assert EmbeddedIndex(path).built()
    EmbeddedWriter(path).upsert({services[0].id: {"name": "Wagtail House"}})
    index = EmbeddedIndex(path)
    assert index.get(services[0].id).name == "Wagtail House" and index.info().count == 10
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "no stray file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rehab #2 %41?x"]


@pytest.mark.parametrize("held", ["read", "write"])
def test_an_edit_the_file_stays_busy_for_past_the_wait_is_unavailable_and_writes_nothing(path, services, monkeypatch,
                                                                                         held):
    """Another connection holds the file past the edit's wait (`_WRITE_TIMEOUT_S`, here 0.1 s): a reader's read
    transaction, for which the edit's COMMIT waits, or another writer's, for which its BEGIN IMMEDIATE waits. The edit
    escaped as a raw `sqlite3.OperationalError` ("database is locked"), a 500 from the API. It is unavailable for now
    (a 503 with Retry-After, as a reader's busy file is), nothing of it written; once the file is let go, it lands."""
    monkeypatch.setattr(embedded, "_WRITE_TIMEOUT_S", 0.1)
    target = services[50]
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE" if held == "write" else "BEGIN")
    holder.execute("SELECT count(*) FROM meta").fetchone()  # the shared lock (and the reserved one, of a writer)
    try:
        with pytest.raises(IndexUnavailable, match=r"^The index is busy: .* for more than a minute\.$") as raised:
            EmbeddedWriter(path).upsert({target.id: {"name": "Wagtail House"}})
        assert told(raised.value).endswith(" for more than a minute. Try again in a minute.")
        assert raised.value.status == 503 and raised.value.headers["Retry-After"]
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert EmbeddedIndex(path).get(target.id) == target, "nothing of the edit was written"
    assert [s.name for s in EmbeddedWriter(path).upsert({target.id: {"name": "Wagtail House"}})] == ["Wagtail House"]


def test_the_signal_of_a_read_an_edit_overtook_says_what_it_is():
    """`_Stale` passes between a read and its answer, never out; it lost its message when the answer was made sure
    (efbd2d8), so a call site that let it out would have logged a bare RuntimeError and answered a 500 with no
    words. It says it is internal, what happened and that asking again answers."""
    said = str(embedded._Stale())
    assert said.startswith("Internal to the embedded index: an edit overtook a read of it")
    assert said.endswith("asking again answers.")


def test_the_record_cache_is_bounded(path, services, monkeypatch):
    cache = _RecordCache(3)
    a, b, c, d = services[:4]
    cache.put_many({0: a, 1: b, 2: c})
    assert cache.get_many([0]) == [a]  # 0 is now the most recently used
    cache.put_many({3: d})
    assert len(cache) == 3 and cache.get_many([0, 1, 2, 3]) == [a, None, c, d]

    monkeypatch.setattr(embedded, "RECORD_CACHE_SIZE", 50)
    index = EmbeddedIndex(path)
    for s in services[:400]:
        assert index.get(s.id) == s
    page = index.find(ServiceQuery(include_inactive=True), limit=120)  # one read larger than the cache
    assert len(page.items) == 120 and len(index._current().records) == 50
    assert index.find(replace(ServiceQuery(include_inactive=True), types=frozenset(ServiceType)),
                      limit=120).items == page.items


def test_around_reads_a_record_once_for_both_of_its_lists(path, services):
    """A match's nearest in the home ICB are mostly its nearest overall too: a service in both lists, at the
    same distance, is one hit (its record read once), and each list still equals its own question's answer."""
    index = EmbeddedIndex(path)
    home = services[0]
    within = frozenset({home.areas.icb_code})
    found = index.around(home.lat, home.lon, ServiceQuery(), k=10, radius_km=100.0, within=within)
    assert found.nearest == index.nearest(home.lat, home.lon, ServiceQuery(), k=10, radius_km=100.0)
    assert found.nearest_within == index.nearest(home.lat, home.lon, ServiceQuery(area_codes=within), k=10,
                                                 radius_km=100.0)
    overall = {hit.service.id: hit for hit in found.nearest}
    shared = [hit for hit in found.nearest_within if hit.service.id in overall]
    assert shared and all(overall[hit.service.id] is hit for hit in shared)


def test_the_sample_directory_reads_back_field_for_field(tmp_path, geography):
    """The sample sets every kind of field (catchment polygons, capacity dates, CQC ratings, provenance with
    licences): none is lost by storing records without their null fields."""
    from indexer.pipeline import GeographyPlacer, prepare_all
    from indexer.rows import Candidate
    from indexer.sources import load_source
    from tests.web.site import SAMPLE

    rows = [r for r in load_source(SAMPLE) if isinstance(r, Candidate)]
    written = [s for s in prepare_all(rows, GeographyPlacer(geography)) if isinstance(s, Service)]
    assert len(written) == len(rows)
    EmbeddedWriter(tmp_path / "index.sqlite").replace_all(written)
    read = list(EmbeddedIndex(tmp_path / "index.sqlite").all())
    assert [s.model_dump() for s in read] == [s.model_dump() for s in written]


@pytest.mark.parametrize("revised", [False, True])
def test_records_copied_from_part_files_serve_what_one_process_writes(tmp_path, services, revised):
    """A parallel import's writer copies records from its workers' part files (`EmbeddedParts`), run by run, and
    gathers their columns from what each worker sent (no record read back); a duplicate dropped leaves a row of a
    part out, and a record merged with a later one is given again (`Revision`), its words changed. The file holds
    what one process writes of the same records: every table the same, and the full-text tables, whose segments
    differ, the same words and the same answer to every search (`bench.build_identity.words`)."""
    from bench.build_identity import fingerprint
    from rehabmap.index.base import Revision

    half = len(services) // 2
    kept = [n for n in range(len(services)) if n != 5]  # the record at 5: a duplicate, merged into an earlier one
    changed = {row: services[n].model_copy(update={"name": f"Renamed {n}", "description": "Merged with a later copy",
                                                   "organisation": "Another trust"})
               for row, n in enumerate(kept) if revised and n in (3, half + 7)}
    parts = EmbeddedWriter(tmp_path / "two.sqlite").parts()
    try:
        stored = [record for records in (services[:half], services[half:])
                  for record in parts.stored(parts.write(records), [s.id for s in records],
                                             [s.service_type for s in records])]
        stored = [stored[n] for n in kept]
        EmbeddedWriter(tmp_path / "two.sqlite").replace_all(
            [*stored, *(Revision(row, service) for row, service in changed.items())])
    finally:
        parts.remove()
    EmbeddedWriter(tmp_path / "one.sqlite").replace_all([changed.get(row, services[n]) for row, n in enumerate(kept)])
    assert fingerprint(tmp_path / "two.sqlite") == fingerprint(tmp_path / "one.sqlite")
    found = EmbeddedIndex(tmp_path / "two.sqlite").find(ServiceQuery(text="renamed"))
    assert sorted(s.name for s in found.items) == sorted(s.name for s in changed.values())


def test_past_the_overlay_limit_a_reader_loads_the_file_again(path, services, monkeypatch):
    """Edits are laid over the loaded columns up to OVERLAY_MAX_ROWS changed rows; past it the reader loads
    the file afresh once, and answers the same either way."""
    monkeypatch.setattr(embedded, "OVERLAY_MAX_ROWS", 3)
    index = EmbeddedIndex(path)
    assert index.info().count == SIZE and index.loads == 1
    writer = EmbeddedWriter(path)
    for n in range(3):
        writer.upsert({services[n].id: {"name": f"Overlaid {n}"}})
        assert index.get(services[n].id).name == f"Overlaid {n}"
    assert index.loads == 1
    writer.upsert({services[3].id: {"name": "Overlaid 3"}, services[4].id: {"name": "Overlaid 4"}})
    found = index.find(ServiceQuery(text="Overlaid", include_inactive=True), limit=10).items
    assert index.loads == 2
    assert {(s.id, s.name) for s in found} == {(s.id, f"Overlaid {n}") for n, s in enumerate(services[:5])}


def test_only_a_serving_reader_freezes_the_heap_at_a_load_and_a_reload_frees_the_old_generation(path, services):
    """The collection and freeze at each load (`_exempt_from_gc`) walk the whole process's heap: a server's cost
    (`rehabmap serve` opens its index as `serving`), not a command's or a test's. The freeze never keeps a
    generation the reader has replaced."""
    gc.unfreeze()
    try:
        assert EmbeddedIndex(path).info().count == SIZE
        assert gc.get_freeze_count() == 0, "a reader that is not a server's leaves the collector as it was"
        settings = Settings(home=path.parent)
        library, served = open_backend(settings), open_backend(settings, serving=True)
        assert isinstance(library, EmbeddedIndex) and not library.exempt_from_gc
        assert isinstance(served, EmbeddedIndex) and served.exempt_from_gc and served.info().count == SIZE
        assert gc.get_freeze_count() > 0, "a server's load froze what was alive"
        assert served._generation is not None
        replaced = weakref.ref(served._generation)
        EmbeddedWriter(path).replace_all(services[:10])  # a rebuild: a new file renamed into place
        assert served.info().count == 10 and served.loads == 2
        gc.collect()  # frozen objects are out of a collection's reach
        assert replaced() is None, "the generation replaced was left to the collector, not frozen with the rest"
    finally:
        gc.unfreeze()


def test_a_reader_that_answered_before_an_edit_answers_after_it_as_brute_force(corpus, tmp_path):
    """The filters a query reads in cell order (`ServiceColumns._cells`) are laid out on the first query; an
    edit after that must leave the rows it replaced out of them too, or the old versions would still be
    found. Ask first, then edit (deactivate, move, retype), then ask again. The same for the ICB's per-type
    counts that `around` takes from its pass over the circle (`count_within`) and the ICB's cells outside it:
    the replaced rows are left out of the base's pass and the edited ones counted from the delta's."""
    from tests.index.conftest import edit_rounds
    from tests.index.brute_force import brute_nearest, passes

    path = tmp_path / "index.sqlite"
    writer = EmbeddedWriter(path)
    writer.replace_all(corpus)
    index = EmbeddedIndex(path)
    everything, lat, lon = ServiceQuery(), 53.8, -1.55
    index.count_by_type(everything)
    near = min(corpus, key=lambda s: (s.lat - lat) ** 2 + (s.lon - lon) ** 2)
    icb = frozenset({near.areas.icb_code})
    index.around(lat, lon, everything, k=5, radius_km=80, within=icb, count_within=True)  # cell order laid out now
    current = {s.id: s for s in corpus}
    for changes in edit_rounds(corpus, seed=29, rounds=2):
        current.update({s.id: s for s in writer.upsert(changes)})
        services = list(current.values())
        assert index.count_by_type(everything) == {t: sum(1 for s in services if passes(s, everything)
                                                          and s.service_type is t) for t in ServiceType}
        found = index.around(lat, lon, everything, k=25, radius_km=80, within=icb, count_within=True)
        expected = brute_nearest(services, lat, lon, everything, len(services), 80)
        assert [h.service.id for h in found.nearest] == [sid for sid, _ in expected[:25]]
        assert found.total == len(expected)
        in_icb = replace(everything, area_codes=icb)
        counts = {t: sum(1 for s in services if passes(s, in_icb) and s.service_type is t) for t in ServiceType}
        assert found.within_by_type == counts
        # A 5 km box holds only part of the ICB: the rest is counted from its cells outside the box.
        small = index.around(lat, lon, everything, k=5, radius_km=5, within=icb, count_within=True)
        assert small.within_by_type == counts
    assert index.loads == 1


def test_the_packed_filter_words_leave_out_the_rows_an_edit_replaced(corpus, tmp_path):
    """The needs and ages are one packed word per row, and the flags another with the catchment group above
    them (`ServiceColumns._flags`, `_needs_ages`), laid out in cell order on the first query: an edit to a
    row's needs, ages, gender or catchment after that must leave the old values out of every answer. Ask
    with those filters first, then edit, then ask again and compare with brute force."""
    from tests.index.conftest import edit_rounds
    from tests.index.brute_force import brute_nearest, passes

    path = tmp_path / "index.sqlite"
    writer = EmbeddedWriter(path)
    writer.replace_all(corpus)
    index = EmbeddedIndex(path)
    lat, lon = 53.8, -1.55
    near = min(corpus, key=lambda s: (s.lat - lat) ** 2 + (s.lon - lon) ** 2)
    home = Coverage(frozenset(near.areas.codes()), lat, lon)
    queries = [ServiceQuery(needs=("autism",), age=30, gender="female", covers=home),
               ServiceQuery(needs=("learning_disability", "substance_misuse"), needs_confirmed=True, covers=home),
               ServiceQuery(age=70, gender="male"), ServiceQuery(covers=home)]
    for query in queries:  # cell order and the packed words laid out now
        index.around(lat, lon, query, k=5, radius_km=80)
        index.count_by_type(query)
    current = {s.id: s for s in corpus}
    for changes in edit_rounds(corpus, seed=31, rounds=2):
        current.update({s.id: s for s in writer.upsert(changes)})
        services = list(current.values())
        for query in queries:
            expected = brute_nearest(services, lat, lon, query, len(services), 80)
            found = index.around(lat, lon, query, k=25, radius_km=80)
            assert [h.service.id for h in found.nearest] == [sid for sid, _ in expected[:25]], query
            assert found.total == len(expected), query
            assert index.count_by_type(query) == {
                t: sum(1 for s in services if passes(s, query) and s.service_type is t) for t in ServiceType}, query
    assert index.loads == 1


def test_the_earlier_release_index_is_the_newest_schema_up_to_ours_named_by_it_first(tmp_path, services):
    """What a first build of this schema is guarded by and reports left (`previous_index`): of the other index
    files in the home, the newest schema no later than this version's (a later one is a newer release's, never
    replaced here), of that schema its file named by it before an `index.sqlite` (the name before names said a
    schema, left behind by an upgrade before), however recently either was written; a file that is no index is
    no earlier release's."""
    ours, earlier = int(SCHEMA_VERSION), int(SCHEMA_VERSION) - 1

    def written(name: str, schema: int, count: int) -> None:
        EmbeddedWriter(tmp_path / name).replace_all(services[:count])
        with sqlite3.connect(tmp_path / name) as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(schema),))
        conn.close()

    assert previous_index(tmp_path) is None
    written(f"index-schema{ours + 1}.sqlite", ours + 1, 1)
    (tmp_path / "index-schema99.sqlite").write_bytes(b"no index" * 100)
    assert previous_index(tmp_path) is None
    written(f"index-schema{earlier}.sqlite", earlier, 2)
    written("index.sqlite", earlier, 3)  # written after: newer, but not the earlier release's own
    found = previous_index(tmp_path)
    assert found is not None and found.where == f"the index file index-schema{earlier}.sqlite (schema {earlier})"
    assert sorted(found.index.ids()) == sorted(s.id for s in services[:2])
    assert found.index.get(services[1].id) == services[1] and found.index.get("no-such-id") is None
    written("index.sqlite", ours, 3)  # the name this version's schema had before names said it
    assert previous_index(tmp_path).where == f"the index file index.sqlite (schema {ours})"
    EmbeddedWriter(index_file(tmp_path)).replace_all(services[:4])  # ours is never the earlier release's
    assert previous_index(tmp_path).where == f"the index file index.sqlite (schema {ours})"
