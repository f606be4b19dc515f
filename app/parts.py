"""Opens the parts a command or the API needs, from the one settings object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from rehabmap.config import Backend, Settings
from rehabmap.index.base import IndexBackend, IndexWriter, RecordWriter

if TYPE_CHECKING:
    from geodata import Geography


class LiveWriter(IndexWriter, RecordWriter, Protocol):
    """A writer of the live index that both builds whole new indexes and edits single records, as each
    backend's writer does."""


def open_geography(settings: Settings) -> Geography:
    from geodata import Geography

    return Geography.open(settings.geodata_dir, settings.data_dir)


def open_backend(settings: Settings) -> IndexBackend:
    if settings.backend is Backend.elasticsearch:
        from search.elastic import ElasticIndex

        return ElasticIndex.from_settings(settings)
    from search.embedded import EmbeddedIndex

    return EmbeddedIndex(settings.index_path)


def open_writer(settings: Settings) -> LiveWriter:
    if settings.backend is Backend.elasticsearch:
        from search.elastic import ElasticWriter

        return ElasticWriter.from_settings(settings)
    from search.embedded import EmbeddedWriter

    return EmbeddedWriter(settings.index_path)
