"""The same writes on the Elasticsearch backend: an edit is indexed into the alias with refresh (a search
right after sees it), a new service is added, and a rebuild (a new versioned index, then the alias switch)
keeps every edit. Runs on osmem, or on a real cluster named by ELASTICSEARCH_URL."""

from __future__ import annotations

import copy
import sqlite3
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
                       "400). The people who run this service have to fix the search index: what it answered is in "
                       f"this service's log. {_KEPT}"}
        assert reason in caplog.text
        assert site.directory.overlay.get(service_id) is not None
        index = ElasticIndex.from_settings(site.settings, client=es_client)
        assert index.get(service_id).capacity != "available"

        OverlayWriter(writer, site.directory).replace_all(sample)
        assert index.get(service_id).capacity == "available"


def one_to_make_available(stack: ExitStack, es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path):
    """`site_through_proxy`'s proxy and site, the live index, a service whose capacity is not "available" and the
    maintainers' API."""
    proxy, site, _, _ = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path)
    index = ElasticIndex.from_settings(site.settings, client=es_client)
    return (proxy, site, index, next(s.id for s in index.all() if s.capacity != "available"),
            AppClient(make_app(site.settings)))


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
        proxy, site, index, service_id, api = one_to_make_available(stack, es_server, es_client, sample_index,
                                                                    geodata_dir, data_dir, tmp_path)
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


@pytest.mark.parametrize("path, code, said, written", [
    (r"/_mget", "index_not_built", "No search index '{alias}'. Run 'rehabmap index SOURCE...' first.", False),
    (r"/_bulk", "index_unavailable", "The search index no longer has an index this service's request named (it "
                                     "answered 404). Try again in a minute.", False),
    (r"/_refresh", "index_unavailable", "The search index no longer has an index this service's request named (it "
                                        "answered 404). Try again in a minute.", True),
])
def test_an_edit_whose_index_is_not_there_says_which_and_that_the_edit_is_kept(
        es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path, path, code, said, written):
    """The cluster answers 404 `index_not_found_exception` to the edit's read of the records (no index behind the
    alias), to its write or to its refresh (the index gone since the read). Every such 404 was `index_not_built`, "No
    search index … Run 'rehabmap index SOURCE...' first.", and none said the edit was kept, though the directory's
    edits held it (and a 404 of the refresh came after the write). The read's is `index_not_built`, the others the
    index unavailable; each says the edit is kept."""
    with ExitStack() as stack:
        proxy, site, _, _ = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir, data_dir,
                                               tmp_path)
        index = ElasticIndex.from_settings(site.settings, client=es_client)
        service_id = next(s.id for s in index.all() if s.capacity != "available")
        proxy.fail(path, 404, error=("index_not_found_exception", "no such index"))

        reply = AppClient(make_app(site.settings)).patch(f"/maintain/services/{service_id}",
                                                         json={"capacity": "available"}, headers=site.auth("admin"))

        assert reply.status_code == 503, reply.text
        assert reply.json()["error"] == {"code": code, "message": f"{said.format(alias=index.alias)} {_KEPT}"}
        assert site.directory.overlay.get(service_id).fields["capacity"] == "available"
        assert (index.get(service_id).capacity == "available") == written


def test_an_edit_that_changes_nothing_of_a_service_written_whole_leaves_the_index_as_it_was(
        es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path):
    """The same capacity sent again (a provider's script every few minutes) of a service whose edits the index took:
    each laid the service's edits again, refreshed the index and moved the generation's mark (a mapping update that
    empties every host's caches), as did a second verification the same day. Nothing is written, the mark stays;
    after a write that failed, the same edit sent again writes and marks
    (test_an_edit_the_search_index_fails_is_a_503_saying_so_and_sent_again_is_recorded_once)."""
    with ExitStack() as stack:
        proxy, site, index, service_id, api = one_to_make_available(stack, es_server, es_client, sample_index,
                                                                    geodata_dir, data_dir, tmp_path)
        first = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                          headers=site.auth("admin"))
        assert first.status_code == 200 and first.json()["changed"], first.text
        assert api.post(f"/maintain/services/{service_id}/verify", headers=site.auth("admin")).status_code == 200
        mark = index.generation()

        again = [api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                           headers=site.auth("admin")), api.post(f"/maintain/services/{service_id}/verify",
                                                                 headers=site.auth("admin"))]

        assert [(r.status_code, r.json()["changed"]) for r in again] == [(200, []), (200, [])]
        assert not marked_since(site, es_client, mark)  # before, moved by each


def marked_since(site, es_client, mark: str) -> bool:
    """Whether the live generation's edit mark has moved since `mark` (`ElasticIndex.generation`)."""
    return ElasticIndex.from_settings(site.settings, client=es_client).generation() != mark


def searched_capacity(index: ElasticIndex, service_id: str) -> str | None:
    """The record's capacity as a search reads it (what the index's last refresh shows), not as `get` reads it."""
    name = index.get(service_id).name
    return next(s.capacity for s in index.find(ServiceQuery(text=name), limit=50).items if s.id == service_id)


_NEW = {"name": "Kept Kingfisher Group", "service_type": "vcfse", "postcode": "TR1 3BT"}


@pytest.mark.parametrize("status, said", [
    (400, "The search index refused the whole request writing the record '{made}' (it answered 400). The people who "
          "run this service have to fix the search index: what it answered is in this service's log."),
    (500, "The search index failed (it answered 500). The people who run this service have to fix the search index: "
          "what it answered is in this service's log."),
    (429, "The search index is overloaded or unavailable (it answered 429)."),
], ids=["400", "500", "429"])
def test_a_new_service_the_search_index_fails_is_kept_under_its_id_and_a_change_of_it_writes_it(
        es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path, status, said):
    """A new service whose write the cluster refuses: the 503 said the edit was kept and "do not make it again", but
    not the id it was kept under; a GET or PATCH of that id was a 404 until a rebuild or the next start (the index
    lacked it), and the same POST sent again made a second service. The 503 names the id (`service_id` beside the
    message), a GET of it reads the kept record, and a change of it, once the index answers, writes it whole. Where
    the index failed (500) or was overloaded (429), the 503 also said `Retry-After: 30` and "Try again in a minute",
    which a client obeying sent the POST again and made a second service: it says neither."""
    with ExitStack() as stack:
        proxy, site, _, _ = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir, data_dir,
                                               tmp_path)
        index = ElasticIndex.from_settings(site.settings, client=es_client)
        api = AppClient(make_app(site.settings))
        proxy.fail(r"/_bulk", status, error=("illegal_argument_exception", "refused by the test"))

        reply = api.post("/maintain/services", json=_NEW, headers=site.auth("maintainer"))

        assert reply.status_code == 503, reply.text
        assert "retry-after" not in reply.headers and "Try again" not in reply.text
        error = reply.json()["error"]
        made = error["service_id"]
        assert made.startswith("directory:kept-kingfisher-group-") and index.get(made) is None
        assert error["message"].startswith(said.format(made=made)), error
        assert error["message"].endswith(
            f" The new service is kept in the directory's edits as '{made}': do not send this POST again, which would "
            f"add a second service. GET /maintain/services/{made} reads it; once the search index is fixed, a change "
            f"of it (a PATCH, or POST /maintain/services/{made}/verify) writes it, as a rebuild of the index or the "
            "server's next start does."), error
        kept = api.get(f"/maintain/services/{made}", headers=site.auth("maintainer"))
        assert kept.status_code == 200, kept.text  # before, a 404
        assert kept.json()["service"]["name"] == _NEW["name"]
        # in no search, whatever its status says (before, "active" and no word of it)
        assert (kept.json()["service"]["status"], kept.json()["listed"]) == ("active", False)

        proxy.heal()
        changed = api.patch(f"/maintain/services/{made}", json={"capacity": "available"},
                            headers={**site.auth("maintainer"), "If-Match": kept.headers["ETag"]})

        assert changed.status_code == 200, changed.text
        assert changed.json()["changed"] == ["capacity", "capacity_as_of"] and changed.json()["listed"] is True
        live = index.get(made)
        assert (live.name, live.postcode, live.capacity) == (_NEW["name"], "TR1 3BT", "available")
        assert [s.id for s in index.find(ServiceQuery(text="Kingfisher")).items] == [made]
        rows, _ = site.directory.audit.entries(resource_id=made)
        assert {row.action for row in rows} == {"create", "update"}


def test_a_new_service_kept_is_written_by_its_verification(es_server, es_client, sample_index, geodata_dir,
                                                            data_dir, tmp_path):
    """A change of the kept service that changes nothing it shows (verified the day it was made) still writes it:
    the directory holds it and the index lacks it. Before, a 404."""
    with ExitStack() as stack:
        proxy, site, _, _ = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir, data_dir,
                                               tmp_path)
        index = ElasticIndex.from_settings(site.settings, client=es_client)
        api = AppClient(make_app(site.settings))
        mark = index.generation()
        proxy.fail(r"/_bulk", 400, error=("illegal_argument_exception", "refused by the test"))
        made = api.post("/maintain/services", json=_NEW, headers=site.auth("maintainer")).json()["error"]["service_id"]
        proxy.heal()

        verified = api.post(f"/maintain/services/{made}/verify", headers=site.auth("maintainer"))

        assert verified.status_code == 200, verified.text
        assert verified.json()["changed"] == []
        assert index.get(made).name == _NEW["name"] and marked_since(site, es_client, mark)
        assert [s.id for s in index.find(ServiceQuery(text="Kingfisher")).items] == [made]


def kept_on_the_keepers_pages(stack: ExitStack, es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path):
    """A maintainer on the keepers' pages adds `_NEW` while the cluster refuses every bulk write (`site_through_proxy`):
    the proxy (still refusing), the site, the live index, the keepers' app, the maintainer's client, the id the new
    service is kept under, and the answer to the add."""
    from tests.keepers.conftest import csrf_of, make_keepers

    proxy, site, _, _ = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path)
    keepers = make_keepers(site)
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    form = client.get("/keepers/services/new")
    proxy.fail(r"/_bulk", 400, error=("illegal_argument_exception", "refused by the test"))
    added = client.post("/keepers/services/new", data={**_NEW, "csrf": csrf_of(form.text)})
    (made,) = site.directory.overlay.entries()[0]
    return proxy, site, ElasticIndex.from_settings(site.settings, client=es_client), keepers, client, made, added


def test_a_keeper_told_a_new_service_is_kept_opens_its_page_and_a_change_saved_there_writes_it(
        es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path):
    """The keepers' pages: a new service whose write the cluster refuses showed the form again, all filled in, under
    "The edit is kept: do not make it again", with no word of where it was kept, and its page was "No such service"
    until a rebuild or the next start; sent again, the form made a second. Now the POST is sent on (303) to its page,
    which says it was added but is in no search yet (before, an answer to the POST, which a reload sent again, and a
    green "Active" tag on its page), and a change saved there writes it."""
    from tests.keepers.conftest import csrf_of
    from tests.keepers.test_maintainer_services import _inputs

    with ExitStack() as stack:
        proxy, site, index, _, client, made, added = kept_on_the_keepers_pages(
            stack, es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path)

        assert made.startswith("directory:kept-kingfisher-group-") and index.get(made) is None
        # its own page, not an answer to the POST that a reload would send again, making a second service
        assert added.status_code == 303 and added.headers["location"].startswith(f"/keepers/services/{made}?done=")
        page = client.get(added.headers["location"])
        assert page.status_code == 200 and f'value="{_NEW["name"]}"' in page.text  # before, "No such service"
        assert ("Added, but not yet in searches: the search index did not take it. Do not add it again, which would "
                "make a second one.") in page.text
        # never shown as listed (before, a green "Active" and no word of it)
        assert "Not yet in searches</strong>" in page.text and ">Active</strong>" not in page.text
        assert '<p id="unshown">Not in any search or on the public pages: the search index has not taken it' \
            in page.text

        proxy.heal()
        saved = client.post(f"/keepers/services/{made}", data={**_inputs(page.text), "csrf": csrf_of(page.text),
                                                                "phone": "01872 000 000"})

        assert saved.status_code == 303, saved.text
        assert (index.get(made).name, index.get(made).phone) == (_NEW["name"], "01872 000 000")
        assert 'id="unshown"' not in client.get(f"/keepers/services/{made}").text


def test_a_kept_new_service_saved_unchanged_on_its_page_is_written(es_server, es_client, sample_index, geodata_dir,
                                                                   data_dir, tmp_path):
    """Its page saved as it stands, once the index answers: "Nothing was changed." and the index still lacked it
    (the API's verify wrote it, the page had no way to). It is written, and a search finds it."""
    from tests.keepers.conftest import csrf_of
    from tests.keepers.test_maintainer_services import _inputs

    with ExitStack() as stack:
        proxy, _, index, _, client, made, _ = kept_on_the_keepers_pages(
            stack, es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path)
        page = client.get(f"/keepers/services/{made}")
        proxy.heal()

        saved = client.post(f"/keepers/services/{made}", data={**_inputs(page.text), "csrf": csrf_of(page.text)})

        assert saved.status_code == 303, saved.text
        assert index.get(made) is not None and index.get(made).name == _NEW["name"]  # before, None
        assert [s.id for s in index.find(ServiceQuery(text="Kingfisher")).items] == [made]


def test_a_kept_new_services_retirement_refused_and_its_history_are_its_own_pages(
        es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path):
    """The keepers' pages of a new service kept, not yet in the index: a retirement with too short a reason was a 404
    "No such service" (the page read the index alone to show the form again), and its history page's "back" went to
    Services; the organisations page would not link it ("There is no service with id …"). The form is shown again
    with the reason's error, the history goes back to the service's page, and it is linked."""
    from tests.keepers.conftest import csrf_of

    with ExitStack() as stack:
        _, site, _, keepers, client, made, _ = kept_on_the_keepers_pages(
            stack, es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path)
        page = client.get(f"/keepers/services/{made}")

        refused = client.post(f"/keepers/services/{made}/retire", data={"csrf": csrf_of(page.text), "reason": "x"})

        assert refused.status_code == 400, refused.text  # before, a 404
        assert 'href="#reason">Give a reason of 3 to 500 characters' in refused.text
        assert f'value="{_NEW["name"]}"' in refused.text
        history = client.get(f"/keepers/history/{made}")
        assert history.status_code == 200 and f'href="/keepers/services/{made}"' in history.text
        admin = keepers.client()
        keepers.sign_in(admin, "admin")
        linked = admin.post("/keepers/organisations/link", data={
            "csrf": csrf_of(admin.get("/keepers/organisations").text), "organisation": "Aire Trust (fictional)",
            "service": made})
        assert linked.status_code == 303, linked.text  # before, "There is no service with id …"
        assert made in site.directory.organisations.get("Aire Trust (fictional)").service_ids


def test_a_kept_new_service_is_linked_to_an_organisation_and_only_its_provider_changes_it(
        es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path):
    """A new service kept, not yet in the index, answered GET with 200, yet linking it to an organisation was a 404
    "No such service" (the link read the index alone), and a provider that does not own it, sending a bad value, was
    told the value was wrong (422) where of an indexed service it is told it may not change it (403). It is linked,
    the other provider gets the 403, and its own provider's change, once the index answers, writes it."""
    with ExitStack() as stack:
        proxy, site, _, _ = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir, data_dir,
                                               tmp_path)
        index = ElasticIndex.from_settings(site.settings, client=es_client)
        api = AppClient(make_app(site.settings))
        proxy.fail(r"/_bulk", 400, error=("illegal_argument_exception", "refused by the test"))
        made = api.post("/maintain/services", json=_NEW, headers=site.auth("maintainer")).json()["error"]["service_id"]
        aire = next(o["id"] for o in api.get("/maintain/organisations", headers=site.auth("admin")).json()
                    if o["name"] == "Aire Trust (fictional)")

        linked = api.post(f"/maintain/organisations/{aire}/services", json={"service_ids": [made]},
                          headers=site.auth("admin"))
        other = api.patch(f"/maintain/services/{made}", json={"capacity": "bogus"}, headers=site.auth("provider_b"))

        assert (other.status_code, other.json()["error"]["code"]) == (403, "forbidden"), other.text  # before, a 422
        assert linked.status_code == 200 and made in linked.json()["service_ids"], linked.text  # before, a 404
        proxy.heal()
        own = api.patch(f"/maintain/services/{made}", json={"capacity": "available"}, headers=site.auth("provider_a"))
        assert own.status_code == 200, own.text
        assert (index.get(made).name, index.get(made).capacity) == (_NEW["name"], "available")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_new_service_the_embedded_index_is_too_busy_for_is_kept_and_its_verification_writes_it(
        request, sample_index, geodata_dir, data_dir, tmp_path, monkeypatch, store):
    """The default backend: another connection holds the index file past the write's wait (`_WRITE_TIMEOUT_S`, here
    0.1 s), so a new service's write is refused as busy. The 503 names the id it is kept under, with no
    `Retry-After` and no "Try again" (sent again, the POST would make a second service); its GET reads the kept
    record, a provider not owning it is refused (403), and once the file is free, its verification writes it, where
    no write is left owed."""
    from search import embedded
    from tests.conftest import database_url

    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir,
                     database_url=database_url(request, store))
    api = AppClient(make_app(site.settings))
    monkeypatch.setattr(embedded, "_WRITE_TIMEOUT_S", 0.1)
    holder = sqlite3.connect(index_file(site.home))
    holder.execute("BEGIN IMMEDIATE")
    try:
        reply = api.post("/maintain/services", json=_NEW, headers=site.auth("maintainer"))
        made = reply.json()["error"]["service_id"]
        other = api.patch(f"/maintain/services/{made}", json={"capacity": "bogus"}, headers=site.auth("provider_a"))
    finally:
        holder.rollback()
        holder.close()

    assert (reply.status_code, reply.json()["error"]["code"]) == (503, "index_unavailable"), reply.text
    assert reply.json()["error"]["message"].startswith("The index is busy: ")
    assert "retry-after" not in reply.headers and "Try again" not in reply.text
    assert api.get(f"/maintain/services/{made}", headers=site.auth("maintainer")).json()["service"]["name"] \
        == _NEW["name"]
    assert (other.status_code, other.json()["error"]["code"]) == (403, "forbidden"), other.text
    assert api.get(f"/services/{made}").status_code == 404  # in no search yet
    verified = api.post(f"/maintain/services/{made}/verify", headers=site.auth("maintainer"))
    assert verified.status_code == 200, verified.text
    assert api.get(f"/services/{made}").json()["name"] == _NEW["name"]
    assert not site.directory.overlay.write_owed(made)


def test_the_index_unavailable_is_asked_again_by_each_face_and_never_of_a_create_it_kept(
        es_server, es_client, sample_index, geodata_dir, data_dir, tmp_path):
    """The cluster answers the public reads 429 (overloaded), then the maintainers' writes 500 (a fault of its own).
    The engine's error says the fact (and who must mend it) alone; each face adds the words asking for the request
    again from one place (`rehabmap.errors.told`): the public API's 503 with `Retry-After: 30`, the public page's 503
    to whoever runs the service, the maintainers' API's PATCH whose edit is kept; a create that made and kept a service
    says neither. Before, the engines wrote "Try again in a minute" into every message and the kept create's answer
    took it out by a pattern, which a new wording would have escaped."""
    overloaded = "The search index is overloaded or unavailable (it answered 429). Try again in a minute."
    failed = "The search index failed (it answered 500)."
    mend = ("the people who run this service have to fix the search index: what it answered is in this service's "
            "log.")
    with ExitStack() as stack:
        proxy, site, _, sample = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir, data_dir,
                                                    tmp_path)
        api = AppClient(make_app(site.settings))
        service_id = next(s.id for s in sample if s.capacity != "available")
        proxy.fail(r"/_doc/|/_search", 429)  # the public reads

        public = api.get(f"/services/{service_id}")
        assert (public.status_code, public.headers.get("retry-after")) == (503, "30"), public.text
        assert public.json()["error"]["message"] == overloaded, public.text
        page = api.get(f"/service/{service_id}")
        assert (page.status_code, page.headers.get("retry-after")) == (503, "30"), page.text[:300]
        assert f"If you run this service: {overloaded}</p>" in page.text, page.text

        proxy.heal()
        proxy.fail(r"/_bulk", 500, error=("null_pointer_exception", "refused by the test"))  # the writes
        edit = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                         headers=site.auth("admin"))
        assert (edit.status_code, edit.headers.get("retry-after")) == (503, "30"), edit.text
        assert edit.json()["error"]["message"] == f"{failed} Try again in a minute; if it fails again, {mend} {_KEPT}"
        made = api.post("/maintain/services", json=_NEW, headers=site.auth("maintainer"))
        assert made.status_code == 503 and "retry-after" not in made.headers, made.text
        assert made.json()["error"]["message"].startswith(
            f"{failed} {mend[:1].upper()}{mend[1:]} The new service is kept"), made.text


@pytest.mark.parametrize("lays", ["rebuild", "reconcile"])
def test_a_write_owed_that_a_rebuild_or_reconcile_lays_is_owed_no_more(es_server, es_client, sample_index,
                                                                       geodata_dir, data_dir, tmp_path, geography,
                                                                       lays):
    """An edit whose write the cluster refused is owed (`Overlay.owe_write`); a rebuild (`OverlayWriter`) or the
    server's start (`Editor.reconcile`) then lays it whole into the index. Only an edit's own write paid what was
    owed, so the same edit sent after that wrote the record once more and moved the generation's mark (emptying every
    host's caches). Whatever lays the entry pays it: the same edit then writes nothing, the mark stays."""
    with ExitStack() as stack:
        proxy, site, writer, sample = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir,
                                                         data_dir, tmp_path)
        index = ElasticIndex.from_settings(site.settings, client=es_client)
        service_id = next(s.id for s in sample if s.capacity != "available")
        api = AppClient(make_app(site.settings))
        proxy.fail(r"/_bulk", 400, error=("illegal_argument_exception", "refused by the test"))
        refused = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                            headers=site.auth("admin"))
        assert refused.status_code == 503 and site.directory.overlay.write_owed(service_id), refused.text
        proxy.heal()

        if lays == "rebuild":
            assert OverlayWriter(writer, site.directory).replace_all(sample) == len(sample)
        else:
            assert Editor(site.directory, index, writer, geography).reconcile() == [service_id]

        assert index.get(service_id).capacity == "available"
        assert not site.directory.overlay.write_owed(service_id)  # before, owed still
        mark = index.generation()
        again = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                          headers=site.auth("admin"))
        assert (again.status_code, again.json()["changed"]) == (200, []), again.text
        assert not marked_since(site, es_client, mark)  # before, written once more and marked



def test_a_write_owed_that_a_rebuild_does_not_lay_stays_owed(es_server, es_client, sample_index, geodata_dir, data_dir,
                                                            tmp_path):
    """An edit whose write the cluster refused is owed; a rebuild from sources that no longer have the service lays
    nothing of it (its edits kept, the rebuild warning of them), so its write stays owed, as does the write of an edit
    the cluster refuses after the rebuild's swap. A rebuild that paid every entry the store holds would leave both
    edits' next same-value sends writing nothing, the index lacking them."""
    with ExitStack() as stack:
        proxy, site, writer, sample = site_through_proxy(stack, es_server, es_client, sample_index, geodata_dir,
                                                         data_dir, tmp_path)
        gone, other = [s.id for s in sample if s.capacity != "available"][:2]
        api = AppClient(make_app(site.settings))

        def refused(service_id: str) -> None:
            proxy.fail(r"/_bulk", 400, error=("illegal_argument_exception", "refused by the test"))
            reply = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                              headers=site.auth("admin"))
            proxy.heal()
            assert reply.status_code == 503 and site.directory.overlay.write_owed(service_id), reply.text

        refused(gone)
        rebuild = OverlayWriter(writer, site.directory)
        assert rebuild.replace_all([s for s in sample if s.id != gone]) == len(sample) - 1
        assert f"directory: {gone} was edited but is no longer in the sources; its edits are kept and come back " \
               "if it does" in rebuild.warnings
        assert site.directory.overlay.write_owed(gone)
        refused(other)
        assert site.directory.overlay.write_owed(other)


# How the store refuses a row of `meta` noting a write owed or paid: a fault of the machine's or its database's
# (PostgreSQL's disk full, `disk_full`, which psycopg raises as DiskFull, an OperationalError: `machines_words`), or
# one that is not (a trigger's refusal: SQLite's IntegrityError, PostgreSQL's RaiseException), which reads as
# rehabmap's.
_REFUSALS = {("postgres", "machine"): "RAISE EXCEPTION 'could not extend file: No space left on device' "
                                      "USING ERRCODE = 'disk_full'",
             ("postgres", "own"): "RAISE EXCEPTION 'refused by the test'",
             ("sqlite", "own"): "SELECT RAISE(ABORT, 'refused by the test')"}


def refuse_owed_rows(database, statement: str, fault: str) -> None:
    """The store refuses to note a write owed (`statement` INSERT) or paid (DELETE) (`_REFUSALS`); every other row of
    `meta`, and the edit's own rows, it writes."""
    row = "NEW" if statement == "INSERT" else "OLD"
    name = f"refuse_owed_{statement.lower()}"
    refusal = _REFUSALS[database.dialect, fault]
    with database.transaction() as conn:
        if database.dialect == "sqlite":
            conn.execute(f"CREATE TRIGGER {name} BEFORE {statement} ON meta WHEN {row}.key LIKE 'index_write_owed:%' "
                         f"BEGIN {refusal}; END")
        else:
            conn.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {refusal}; END $$")
            conn.execute(f"CREATE TRIGGER {name} BEFORE {statement} ON meta FOR EACH ROW "
                         f"WHEN ({row}.key LIKE 'index_write_owed:' || chr(37)) EXECUTE FUNCTION {name}()")


def accept_owed_rows(database, statement: str) -> None:
    """`refuse_owed_rows` undone: the store mended."""
    with database.transaction() as conn:
        conn.execute(f"DROP TRIGGER refuse_owed_{statement.lower()}" + ("" if database.dialect == "sqlite"
                                                                         else " ON meta"))


def logged_of(caplog, words: str):
    """The one log record whose message holds `words`."""
    [record] = [r for r in caplog.records if words in r.getMessage()]
    return record


@pytest.mark.parametrize(("store", "fault"), [("sqlite", "own"), ("postgres", "own"), ("postgres", "machine")])
def test_an_edit_whose_owed_write_the_store_cannot_note_says_what_the_index_did(
        request, sample_index, geodata_dir, data_dir, tmp_path, monkeypatch, caplog, store, fault):
    """The embedded index busy past the write's wait (another connection holds the file), and the store then refusing
    to note the write owed: the store's error replaced the index's, a 500 `internal_error` saying nothing of the edit,
    which is kept. The answer is the index's 503, saying the edit is kept. Then, the write landing while the store
    refuses to note it paid: a 500 where the edit was written; it is a 200, the row left owed (one more write at the
    next same edit). The log says whose the store's failure is: the machine's or its database's (a disk full, since
    the edit committed) for its operator, naming the services left owed; any other failure is a fault of rehabmap's
    own, with its traceback, to report. Before, every failure (a bug in rehabmap too) read as the store's, and the
    second line counted the services given ("of 1 services"), not those left owed."""
    from search import embedded
    from tests.conftest import database_url

    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir,
                     database_url=database_url(request, store))
    api = AppClient(make_app(site.settings))
    service_id = next(s.id for s in EmbeddedIndex(index_file(site.home)).all() if s.capacity != "available")
    monkeypatch.setattr(embedded, "_WRITE_TIMEOUT_S", 0.1)
    refuse_owed_rows(site.directory.database, "INSERT", fault)
    holder = sqlite3.connect(index_file(site.home))
    holder.execute("BEGIN IMMEDIATE")
    try:
        reply = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"},
                          headers=site.auth("admin"))
    finally:
        holder.rollback()
        holder.close()

    assert (reply.status_code, reply.json()["error"]["code"]) == (503, "index_unavailable"), reply.text
    assert reply.json()["error"]["message"].startswith("The index is busy: ")
    assert reply.json()["error"]["message"].endswith(f" {_KEPT}")
    fault_of = {"machine": f"The search index did not take the edit of {service_id} (IndexUnavailable), and the "
                           "directory's store could not note that its write is owed (DiskFull: could not extend file: "
                           "No space left on device",
                "own": f"The search index did not take the edit of {service_id} (IndexUnavailable), and noting that "
                       "its write is owed failed on a fault of rehabmap's own, not of the machine or its database"}
    said = logged_of(caplog, fault_of[fault])
    assert (said.levelname, said.exc_info is not None) == ("ERROR", fault == "own"), said.getMessage()
    assert "edit is kept, and a rebuild lays it; till then an edit of it that changes nothing" in said.getMessage()
    assert site.directory.overlay.get(service_id).fields["capacity"] == "available"
    assert not site.directory.overlay.write_owed(service_id)
    accept_owed_rows(site.directory.database, "INSERT")
    site.directory.overlay.owe_write(service_id)  # as a refusal the store could note leaves it
    refuse_owed_rows(site.directory.database, "DELETE", fault)

    landed = api.patch(f"/maintain/services/{service_id}", json={"capacity": "available"}, headers=site.auth("admin"))

    assert landed.status_code == 200, landed.text
    assert api.get(f"/services/{service_id}").json()["capacity"]["reported"] == "available"
    paid_of = {"machine": "The live index took the edits it was given, and the directory's store could not note that "
                          f"no write is owed of {service_id} (DiskFull: ",
               "own": f"The live index took the edits it was given, and noting that no write is owed of {service_id} "
                      "failed on a fault of rehabmap's own"}
    said = logged_of(caplog, paid_of[fault])
    assert (said.levelname, said.exc_info is not None) == (("WARNING", False) if fault == "machine" else
                                                           ("ERROR", True)), said.getMessage()
    assert site.directory.overlay.write_owed(service_id)


def test_an_edit_whose_owed_write_a_full_sqlite_disk_refuses_is_the_machines(sample_index, geodata_dir, data_dir,
                                                                            tmp_path, monkeypatch, caplog, geography):
    """The embedded index busy past the write's wait, and the SQLite store's disk then full: SQLite's own limit on the
    file's pages (`PRAGMA max_page_count`, at the file's size, on the connection the store's next call takes), and
    rows written till none fits, so noting the write owed raises what a full disk raises, "database or disk is full",
    an OperationalError of the machine's (`machines_words`). The edit's error is the index's, saying the edit is
    kept; the operator's log line says what the store refused, without a traceback (not a fault of rehabmap's)."""
    from rehabmap.errors import IndexUnavailable, Remedy
    from rehabmap.maintain.auth import Principal, Role
    from search import embedded
    from search.embedded import EmbeddedWriter

    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir)
    path = index_file(site.home)
    service_id = next(s.id for s in EmbeddedIndex(path).all() if s.capacity != "available")
    monkeypatch.setattr(embedded, "_WRITE_TIMEOUT_S", 0.1)

    class FillsTheDisk(EmbeddedWriter):
        def upsert(self, *args, **kwargs):
            with site.directory.database.connect() as conn:  # this thread's kept connection, which `_owe` takes next
                conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
                for size in (4000, 1000, 250, 60, 15, 1):
                    try:
                        while True:
                            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
                                         (f"filler:{uuid.uuid4().hex}", "x" * size))
                    except sqlite3.OperationalError as full:
                        assert full.sqlite_errorcode == sqlite3.SQLITE_FULL, full
            return super().upsert(*args, **kwargs)

    editor = Editor(site.directory, EmbeddedIndex(path), FillsTheDisk(path), geography)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(IndexUnavailable) as refused:
            editor.update(Principal("t0", "tester", Role.maintainer), service_id, {"capacity": "available"}, TODAY)
    finally:
        holder.rollback()
        holder.close()

    assert refused.value.remedy == Remedy.EDIT_KEPT and str(refused.value).startswith("The index is busy: ")
    said = logged_of(caplog, f"The search index did not take the edit of {service_id} (IndexUnavailable), and the "
                             "directory's store could not note that its write is owed (OperationalError: database or "
                             "disk is full): the edit is kept")
    assert (said.levelname, said.exc_info) == ("ERROR", None), said.getMessage()
    assert site.directory.overlay.get(service_id).fields["capacity"] == "available"
