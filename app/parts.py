"""Opens the parts a command or the server needs, from the one settings object: the only place that knows
which search engine the settings choose, and where each store lives."""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import TYPE_CHECKING

from geodata.geography import Geography
from indexer.sync.connectors import source_titles
from indexer.sync.publish import merged_into
from indexer.sync.store import SyncStore
from rehabmap.config import Backend, Settings
from rehabmap.errors import DirectoryUnavailable, DomainError
from rehabmap.index.base import IndexBackend, LiveWriter, Previous
from rehabmap.maintain.edits import Editor
from rehabmap.maintain.store import Directory
from rehabmap.state import AppState

if TYPE_CHECKING:
    from search.engine import SearchClient

log = logging.getLogger("rehabmap.api")
_clients: dict[tuple[object, ...], SearchClient] = {}
_clients_lock = threading.Lock()


def open_geography(settings: Settings) -> Geography:
    return Geography.open(settings.geodata_dir, settings.data_dir)


def open_backend(settings: Settings, *, serving: bool = False) -> IndexBackend:
    """The search engine the settings choose. `serving`: for a process whose life is serving (`rehabmap serve`'s
    workers), which keeps what it has loaded out of the garbage collector's walks (`EmbeddedIndex`)."""
    if settings.backend is Backend.elasticsearch:
        from search.elastic import ElasticIndex

        return ElasticIndex.from_settings(settings, client=search_client(settings))
    from search.embedded import EmbeddedIndex, index_file

    return EmbeddedIndex(index_file(settings.home), exempt_from_gc=serving)


def open_writer(settings: Settings) -> LiveWriter:
    if settings.backend is Backend.elasticsearch:
        from search.elastic import ElasticWriter

        return ElasticWriter.from_settings(settings, client=search_client(settings))
    from search.embedded import EmbeddedWriter, index_file

    return EmbeddedWriter(index_file(settings.home))


def open_previous(settings: Settings) -> Previous | None:
    """The index a release before this one serves from, under another name than this version's (an index of
    another schema, or one named before names carried it): see `rehabmap.index.base.Previous`."""
    if settings.backend is Backend.elasticsearch:
        from search.elastic import previous_index as previous_alias

        return previous_alias(search_client(settings), settings.elasticsearch_index)
    from search.embedded import previous_index

    return previous_index(settings.home)


def search_client(settings: Settings) -> SearchClient:
    """The process's one client of the search engine the settings name. The official clients pool their
    connections and are safe across threads, so every part opened (the live index, its writer, an earlier
    release's index) shares it for the process's life: before, each opened a client of its own that nothing
    closed, three or more a rebuild (also a maintainers' upload, in a server) and one per review page a server
    served, each with its own connections (and TLS handshakes) to the cluster."""
    key = settings.elasticsearch_api_key
    said = (settings.search_engine, tuple(settings.elasticsearch_hosts), key.get_secret_value() if key else None,
            settings.elasticsearch_ca_file)
    with _clients_lock:
        if said not in _clients:
            from search.engine import connect

            _clients[said] = connect(settings)
        return _clients[said]


def open_state(settings: Settings, *, serving: bool = False) -> AppState:
    """Everything the faces work with (see `rehabmap.state`); `serving` as `open_backend` takes it."""
    state = AppState(settings, open_geography(settings), open_backend(settings, serving=serving))
    open_directory(state)
    name_sources(state)
    return state


def name_sources(state: AppState) -> None:
    """The sources' titles as a person reads them (`source_titles`), a removed feed's as the store keeps it: the
    server's and `rehabmap match`'s alike, where the command named a removed feed (a stalled source's listing, as a
    match says it) by its code and the server by its label."""
    state.source_titles = source_titles(state.settings.oruk_feeds_dir, _stored_titles(state))


def _stored_titles(state: AppState) -> dict[str, str] | None:
    """The titles the store keeps of sources whose configuration may be gone (`SyncStore.titles`), or None where the
    server has no store or it fails to say them: a store that opened and then failed this query (a disk error, a
    PostgreSQL server gone) must not stop the server starting, where titles read no store before; a removed feed is
    then named by its code, as before they were kept."""
    if state.directory is None:
        return None
    try:
        store = SyncStore.served(state)
        return store.titles() if store is not None else None
    except Exception as exc:  # noqa: BLE001 - any store's fault (SQLite's, PostgreSQL's), as at the directory's open
        log.warning("sources' titles kept by the store not read (%s): a removed feed is named by its code",
                    type(exc).__name__)
        return None


def open_directory(state: AppState) -> None:
    """The maintainers' store and editor; then any edit a crash kept from the live index is laid on it.
    Without a writable REHABMAP_HOME the server still answers searches, and /maintain says 503. A PostgreSQL store
    that does not answer fails the start (`DirectoryUnavailable`, from the start's catch-up, `app.sync.converge`, or
    a pending rebuild's judging): searches read the coverage claims from it too (POST /match would answer 503 until
    it answers), and a server started without it would keep /maintain off until its restart, where a supervisor's
    restarts find it back."""
    settings = state.settings
    try:
        state.directory = Directory.from_settings(settings)
    except (OSError, sqlite3.Error, DirectoryUnavailable) as exc:
        log.warning("directory store not opened (%s): /maintain is unavailable", type(exc).__name__)
        return
    state.editor = Editor(state.directory, state.backend, open_writer(settings), state.geography,
                          merged_into=lambda service_id: merged_into(SyncStore.served(state), service_id))
    try:
        state.editor.reconcile()
    except DomainError:
        pass  # no index yet: nothing to lay edits on
    except Exception as exc:  # a search cluster that is down must not stop the server starting
        log.warning("directory edits not checked against the index at start-up: %s", type(exc).__name__)
