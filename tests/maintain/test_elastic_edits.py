"""The same writes on the Elasticsearch backend: an edit is indexed into the alias with refresh (a search
right after sees it), a new service is added, and a rebuild (a new versioned index, then the alias switch)
keeps every edit. Runs on osmem, or on a real cluster named by ELASTICSEARCH_URL."""

from __future__ import annotations

import uuid

import pytest

from rehabmap.config import Settings
from rehabmap.maintain.edits import Editor, OverlayWriter
from rehabmap.index.base import ServiceQuery
from search.elastic import ElasticIndex, ElasticWriter
from search.embedded import EmbeddedIndex, index_file
from tests.es_server import drop_indices
from tests.maintain.conftest import TODAY


@pytest.fixture
def elastic(es_server, es_client, site, geography):
    base = f"rehabmap-maintain-{uuid.uuid4().hex[:10]}"
    settings = Settings(ELASTICSEARCH_URL=es_server.url, elasticsearch_index=base)
    writer = ElasticWriter.from_settings(settings, client=es_client)
    sample = list(EmbeddedIndex(index_file(site.home)).all())
    writer.replace_all(sample)
    index = ElasticIndex.from_settings(settings, client=es_client)
    yield index, writer, Editor(site.directory, index, writer, geography), sample
    drop_indices(es_client, base)


def test_edits_on_elasticsearch_are_searchable_at_once_and_survive_a_rebuild(elastic, site):
    from rehabmap.maintain.auth import Principal, Role

    index, writer, editor, sample = elastic
    maintainer = Principal("t0", "elastic tester", Role.maintainer)
    service_id = "sample:camborne-supported-housing"
    edited, changed = editor.update(maintainer, service_id, {"name": "Camborne Kestrel House", "beds": 9}, TODAY)
    assert sorted(changed) == ["beds", "name"] and edited.field_sources["beds"] == "directory"
    assert index.get(service_id).name == "Camborne Kestrel House"
    assert [s.id for s in index.find(ServiceQuery(text="Kestrel")).items] == [service_id]

    made, _ = editor.create(maintainer, {"name": "Elastic Heron Group", "service_type": "vcfse",
                                         "postcode": "TR1 3BT"}, TODAY)
    assert index.get(made.id) == made
    assert index.nearest(made.lat, made.lon, ServiceQuery(types=frozenset({made.service_type})), k=1)[0].service.id \
        == made.id

    # A rebuild from the (unedited) sample into a new versioned index keeps both.
    assert OverlayWriter(writer, site.directory).replace_all(sample) == len(sample) + 1
    assert index.get(service_id).name == "Camborne Kestrel House" and index.get(service_id).beds == 9
    assert index.get(made.id).name == "Elastic Heron Group"
    # Nothing to lay again: the rebuilt index already holds the overlay.
    assert editor.reconcile() == []
