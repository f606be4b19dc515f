"""The same writes on the Elasticsearch backend: an edit is indexed into the alias with refresh (a search
right after sees it), a new service is added, and a rebuild (a new versioned index, then the alias switch)
keeps every edit. Runs on osmem, or on a real cluster named by ELASTICSEARCH_URL."""

from __future__ import annotations

import copy
import uuid
from contextlib import ExitStack

import pytest

from rehabmap.config import Settings
from rehabmap.maintain.edits import Editor, OverlayWriter
from rehabmap.index.base import ServiceQuery
from search.elastic import _MAPPINGS, ElasticIndex, ElasticWriter
from search.embedded import EmbeddedIndex, index_file
from tests.es_proxy import plain_json_proxy
from tests.es_server import drop_indices
from tests.index.cluster_proxy import ClusterProxy
from tests.maintain.conftest import TODAY, AppClient, make_app, make_site


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


# What the API adds to a refusal of an edit by the search index (`Remedy.EDIT_KEPT`): the edit is not lost, and it is
# written once the index is fixed (before, "a rebuild of the search index writes it", a rebuild alone named).
_KEPT = ("The edit is kept in the directory's edits: do not make it again. Once the search index is fixed, a rebuild "
         "of it or the server's next start writes it.")


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


def test_an_edit_the_search_index_refuses_is_a_503_naming_the_record(es_server, es_client, sample_index, geodata_dir,
                                                                     data_dir, tmp_path, monkeypatch):
    """A record the model accepts that the cluster refuses (here the live generation's mapping lacks a field the edit
    sets: the engine refuses a document its mapping does not fit) ended a maintainer's PATCH in a 500, the edit
    already in the directory's edits. It is a 503 naming the record, the cluster's reason and who must act; the edit
    is kept, and a rebuild, the mapping mended, writes it."""
    base = f"rehabmap-maintain-{uuid.uuid4().hex[:10]}"
    with ExitStack() as stack:
        stack.callback(drop_indices, es_client, base)
        # the app builds its own client, as in production: osmem takes it through the proxy (tests/es_proxy.py)
        search = es_server.url if es_server.kind != "osmem" else stack.enter_context(plain_json_proxy(es_server.url))
        site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir, backend="elasticsearch",
                         ELASTICSEARCH_URL=search, elasticsearch_index=base)
        lacking = copy.deepcopy(_MAPPINGS)
        del lacking["properties"]["capacity_as_of"]
        monkeypatch.setattr("search.elastic._MAPPINGS", lacking)
        writer = ElasticWriter.from_settings(site.settings, client=es_client)
        sample = list(EmbeddedIndex(index_file(site.home)).all())
        writer.replace_all([s for s in sample if s.capacity_as_of is None])  # those the mapping fits
        service_id = next(s.id for s in sample if s.capacity_as_of is None)

        reply = AppClient(make_app(site.settings)).patch(f"/maintain/services/{service_id}",
                                                         json={"capacity": "available"}, headers=site.auth("admin"))

        assert reply.status_code == 503, reply.text
        error = reply.json()["error"]
        assert error["code"] == "index_refused_record"
        assert error["message"].startswith(f"The search index refused the record '{service_id}': ")
        assert "capacity_as_of" in error["message"]
        assert error["message"].endswith(". The people who run this service have to fix the search index or the "
                                         f"record. {_KEPT}")
        assert site.directory.overlay.get(service_id) is not None
        index = ElasticIndex.from_settings(site.settings, client=es_client)
        assert index.get(service_id).capacity is None

        monkeypatch.undo()
        OverlayWriter(writer, site.directory).replace_all(sample)
        assert index.get(service_id).capacity == "available"


def site_through_proxy(stack: ExitStack, es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path):
    """A maintainers' site on Elasticsearch whose app's own client goes through a `ClusterProxy`, its index (dropped
    when `stack` closes) holding the sample: the proxy, the site, a writer straight to the cluster and the sample."""
    base = f"rehabmap-maintain-{uuid.uuid4().hex[:10]}"
    stack.callback(drop_indices, es_client, base)
    proxy = stack.enter_context(ClusterProxy(es_server.url))
    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir, backend="elasticsearch",
                     ELASTICSEARCH_URL=proxy.url, elasticsearch_index=base)
    writer = ElasticWriter.from_settings(site.settings, client=es_client)
    sample = list(EmbeddedIndex(index_file(site.home)).all())
    writer.replace_all(sample)
    return proxy, site, writer, sample


def test_an_edit_whose_request_the_search_index_refuses_whole_is_a_503_naming_the_record(
        es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path, caplog):
    """The cluster refuses the edit's bulk request as a whole with a 4xx that is no overload (here a 400: a request it
    will not parse). A maintainer's PATCH ended in a 500 `internal_error`. It is a 503 naming the record, the status
    and who must act; the cluster's own words are in the server's log, not the reply; the edit is kept, and a
    rebuild writes it."""
    reason = "Malformed action/metadata line [1], expected START_OBJECT but found [VALUE_STRING]"
    with ExitStack() as stack:
        proxy, site, writer, sample = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir,
                                                         data_dir, tmp_path)
        service_id = next(s.id for s in sample if s.capacity != "available")
        proxy.fail(r"/_bulk", 400, error=("illegal_argument_exception", reason))

        reply = AppClient(make_app(site.settings)).patch(f"/maintain/services/{service_id}",
                                                         json={"capacity": "available"}, headers=site.auth("admin"))

        assert reply.status_code == 503, reply.text
        assert reply.json()["error"] == {
            "code": "index_refused_request",
            "message": f"The search index refused the whole request writing the record '{service_id}' (it answered "
                       "400). The people who run this service have to fix the search index; what it answered is in "
                       f"this service's log. {_KEPT}"}
        assert reason in caplog.text
        assert site.directory.overlay.get(service_id) is not None
        index = ElasticIndex.from_settings(site.settings, client=es_client)
        assert index.get(service_id).capacity != "available"

        OverlayWriter(writer, site.directory).replace_all(sample)
        assert index.get(service_id).capacity == "available"


_REFUSED = "The search index refused this service's request (it answered 400)."


@pytest.mark.parametrize("path, status, code, said", [
    (r"/_mget", 500, "index_unavailable", "The search index failed (it answered 500). Try again in a minute"),
    (r"/_mget", 400, "index_refused_request", _REFUSED),
    (r"/_refresh", 400, "index_refused_request", _REFUSED),
    (r"/_search", 400, "index_refused_request", _REFUSED),  # the count of the mark, after the refresh
])
def test_an_edit_the_search_index_fails_is_a_503_saying_so_and_sent_again_is_recorded_once(
        es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path, caplog, path, status, code, said):
    """The cluster answers the edit's read of the live record with a fault of its own (500), or refuses that read or
    the refresh after the write (400): a maintainer's PATCH ended in a 500 `internal_error`, the edit already in the
    directory's edits. It is a 503 saying which, never in the cluster's words (they are in the server's log), and that
    the edit is kept (an `index_unavailable` did not say so). Sent again once the cluster answers, it is written to
    the index and the audit log says it once (before, twice: the index lacked it, so it read as a change again)."""
    words = 'Cannot invoke "Object.hashCode()" because "key" is null'
    with ExitStack() as stack:
        proxy, site, _, _ = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir, data_dir,
                                               tmp_path)
        index = ElasticIndex.from_settings(site.settings, client=es_client)
        service_id = next(s.id for s in index.all() if s.capacity != "available")
        api = AppClient(make_app(site.settings))
        mark = index.generation()
        proxy.fail(path, status, error=("null_pointer_exception", words))

        reply = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                          headers=site.auth("admin"))

        assert reply.status_code == 503, reply.text
        error = reply.json()["error"]
        assert error["code"] == code and error["message"].startswith(said), error
        assert words not in reply.text and words in caplog.text
        assert site.directory.overlay.get(service_id).fields["capacity"] == "available"
        assert error["message"].endswith(f" {_KEPT}"), error
        written = path != r"/_mget"
        assert (index.get(service_id).capacity == "available") == written  # written, not refreshed or marked
        # Sent again while the index still fails: the same 503 (before, 200 once the record was written, though the
        # index was still not refreshed nor marked).
        still = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                          headers=site.auth("admin"))
        assert (still.status_code, still.json()["error"]["code"]) == (503, code), still.text

        proxy.heal()
        again = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                          headers=site.auth("admin"))

        assert again.status_code == 200, again.text
        assert index.get(service_id).capacity == "available"
        # left as a first success leaves it: refreshed (a search shows the edit) and marked, so every process's
        # caches learn of it (before, a retry after the refresh or the mark failed did neither)
        assert marked_since(site, es_client, mark) and searched_capacity(index, service_id) == "available"
        rows, _ = site.directory.audit.entries(resource_id=service_id, field="capacity")
        assert [(row.action, row.new) for row in rows] == [("update", "available")]


def marked_since(site, es_client, mark: str) -> bool:
    """Whether the live generation's edit mark has moved since `mark` (`ElasticIndex.generation`)."""
    return ElasticIndex.from_settings(site.settings, client=es_client).generation() != mark


def searched_capacity(index: ElasticIndex, service_id: str) -> str | None:
    """The record's capacity as a search reads it (what the index's last refresh shows), not as `get` reads it."""
    name = index.get(service_id).name
    return next(s.capacity for s in index.find(ServiceQuery(text=name), limit=50).items if s.id == service_id)

