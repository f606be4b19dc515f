"""One synthetic corpus, built into each index backend once per session.

`backend` is parametrised over the backends so every behaviour test runs against each: the embedded index,
and the search engine backend through each engine's client (Elasticsearch's, and OpenSearch's exactly as
production builds it); the search server is osmem (started here) unless ELASTICSEARCH_URL names a real
cluster, an Elasticsearch one, which the OpenSearch client is not run against.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import date

import pytest

from rehabmap.config import Settings
from rehabmap.index.base import IndexBackend
from search.elastic import ElasticIndex, ElasticWriter
from search.embedded import EmbeddedIndex, EmbeddedWriter
from search.engine import ElasticsearchClient, OpenSearchClient, SearchClient
from rehabmap.record import IMPORTED, Service
from rehabmap.taxonomy import GENDER_NEEDS, ServiceType
from rehabmap.index.base import LiveWriter
from tests.es_server import SearchServer, drop_indices
from tests.index.cluster_proxy import ClusterProxy
from bench.synthetic import NEEDS, load_small_areas, make_services

TODAY = date(2026, 11, 23)
CORPUS_SIZE = 1500
ORGANISATIONS = ["Leeds and York Partnership NHS Foundation Trust", "Mind in Bradford", "Turning Point",
                 "Humber Teaching NHS Foundation Trust", "Rethink Mental Illness"]
# Planted words the text tests look for (they appear nowhere else in the corpus).
NAME_WORD = "Kingfisher"
DESCRIPTION_WORD = "horticulture"


@pytest.fixture(scope="session")
def small_areas(data_dir):
    return load_small_areas(data_dir)


def _square(lat: float, lon: float, half: float) -> dict:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def _vary(services: list[Service], seed: int) -> list[Service]:
    """What `make_services` leaves out: polygon catchments, languages, organisations, text to find, needs and a
    gender read from a service's words (which must neither filter nor count as confirmed: the brute force reads
    only the stated ones)."""
    rng = random.Random(seed)
    reads = random.Random(seed + 1)  # its own draws: the rest of the corpus is as it was before read needs
    genders = random.Random(seed + 2)  # and a read gender's (session 18)
    feeds = random.Random(seed + 3)  # and a feed's statements (session 19)
    out = []
    for i, service in enumerate(services):
        data = service.model_dump()
        if i % 25 == 3:  # a polygon catchment, alone or beside codes
            half = rng.uniform(0.05, 0.4)
            polygon = _square(service.lat, service.lon, half)
            if i % 50 == 3:
                polygon = {"type": "MultiPolygon",
                           "coordinates": [polygon["coordinates"],
                                           _square(service.lat + half + 0.3, service.lon, 0.05)["coordinates"]]}
            data["service_area"] = {"codes": data["service_area"]["codes"] if i % 75 == 3 else [],
                                    "polygon": polygon}
        if i % 9 == 1:
            language = rng.choice(["language:pl", "language:ur", "language:pa"])
            target = "needs_met" if rng.random() < 0.6 else "needs_not_met"
            data[target] = [*data[target], language]
        if i % 40 == 11:  # as a feed states it: a gender by a need alone, a language by another of its codes
            data["gender"] = None
            said = feeds.choice(["female_only", "male_only"]), feeds.choice(["language:pol", "language:yue"])
            data["needs_met"] = [*(n for n in data["needs_met"] if n not in GENDER_NEEDS), *said]
            data["needs_not_met"] = [n for n in data["needs_not_met"] if n not in GENDER_NEEDS and n[:9] != "language:"]
        if i % 3 == 1:  # read from its words, some of them needs it states the other way (the statement wins)
            read = reads.sample(NEEDS, reads.randint(1, 3))
            data["needs_read_from_text"] = {n: f"words for {n}" for n in read[1:]}
            data["needs_read_not_met"] = {read[0]: f"no {read[0]}"}
        if i % 4 == 3:  # a gender read from its words: never filters; a stated gender wins over it
            data["gender_read_from_text"] = {genders.choice(GENDER_NEEDS): "words for its gender"}
        if i % 4 == 2:
            data["organisation"] = rng.choice(ORGANISATIONS)
        if i % 60 == 5:
            data["name"] = f"{NAME_WORD} House {i}"
        if i % 45 == 7:
            data["description"] = f"Peer-led {DESCRIPTION_WORD} and gardening group."
        if i % 31 == 0:  # names whose order depends on case folding, not on code points
            data["name"] = rng.choice(["alpha Court", "Alpha court", "ÉCOLE Road", "école road", "Zeta"])
        out.append(Service.__pydantic_validator__.validate_python(data, context=IMPORTED) if i % 40 == 11
                   else Service.model_validate(data))
    return out


@pytest.fixture(scope="session")
def corpus(small_areas) -> list[Service]:
    return _vary(make_services(small_areas, CORPUS_SIZE, seed=11, today=TODAY), seed=11)


@pytest.fixture(scope="session")
def os_client(es_server: SearchServer) -> Iterator[SearchClient]:
    if es_server.kind != "osmem":
        pytest.skip("ELASTICSEARCH_URL names an Elasticsearch cluster: the OpenSearch client is not for it")
    client = es_server.opensearch_client()
    yield client
    client.close()


def client_at(engine: str, url: str) -> SearchClient:
    """A production client of this engine for a node at `url` (a `ClusterProxy`, which also gives the
    Elasticsearch client's media types to osmem as the plain ones)."""
    return OpenSearchClient.connect([url]) if engine == "opensearch" else ElasticsearchClient.connect([url])


@pytest.fixture(params=["elasticsearch", "opensearch"])
def engine(request) -> tuple[str, SearchClient]:
    """(REHABMAP_SEARCH_ENGINE, a client of that engine) for each engine in turn."""
    return request.param, request.getfixturevalue("es_client" if request.param == "elasticsearch" else "os_client")


@pytest.fixture(scope="session")
def embedded_index(corpus, tmp_path_factory) -> EmbeddedIndex:
    path = tmp_path_factory.mktemp("embedded") / "index.sqlite"
    EmbeddedWriter(path).replace_all(corpus)
    return EmbeddedIndex(path)


def edit_rounds(services: list[Service], seed: int, rounds: int = 4) -> list[dict[str, dict]]:
    """Rounds of maintainers' edits over a corpus, as `RecordWriter.upsert` takes them: services moved
    (point and areas of another), renamed (to names that tie with others in name order, or carry the planted
    text word), retyped, their needs, ages, gender, catchment, status, referrals and capacity changed, some edited in
    several rounds, and new services added (ids that sort among the old ones; some at the very point of
    another service, so distance ties are broken by id across old and new)."""
    rng = random.Random(seed)
    out = []
    for round_ in range(rounds):
        changes: dict[str, dict] = {}
        for service in rng.sample(services, 60):
            fields: dict = {}
            for kind in rng.sample(["move", "name", "type", "needs", "ages", "area", "status", "accepting",
                                          "capacity"],
                                   rng.randint(1, 3)):
                if kind == "move":
                    other = rng.choice(services)
                    fields.update(lat=other.lat, lon=other.lon, areas=other.model_dump(mode="json")["areas"])
                elif kind == "name":
                    fields["name"] = rng.choice(["alpha Court", "Zeta", "Aardvark Lodge", f"{NAME_WORD} Mews",
                                                 f"Édition {round_}", "zz top house"])
                elif kind == "type":
                    fields.update(service_type=rng.choice(list(ServiceType)).value, subtype=None)
                elif kind == "needs":
                    met = rng.sample(NEEDS + ["language:pl", "language:ur"], rng.randint(0, 3))
                    rest = [n for n in NEEDS if n not in met]
                    fields.update(needs_met=met, needs_not_met=rng.sample(rest, rng.randint(0, 2)))
                elif kind == "ages":
                    fields.update(min_age=rng.choice([None, 18, 25]), max_age=rng.choice([None, 64, 99]),
                                  gender=rng.choice([None, "female_only", "male_only", "mixed_gender"]))
                elif kind == "area":
                    fields["service_area"] = rng.choice([
                        {"codes": [], "polygon": None},
                        {"codes": [service.areas.icb_code], "polygon": None},
                        {"codes": [], "polygon": _square(service.lat, service.lon, rng.uniform(0.05, 0.3))}])
                elif kind == "status":
                    fields["status"] = "inactive" if service.status == "active" else "active"
                elif kind == "capacity":  # reported within the capacity window, or before it, or not at all
                    reported = rng.choice([None, "available", "limited", "none"])
                    fields.update(capacity=reported, capacity_as_of=None if reported is None else
                                  date.fromordinal(TODAY.toordinal() - rng.randint(0, 30)).isoformat())
                else:
                    fields["accepting_referrals"] = rng.choice([True, False, None])
            changes[service.id] = fields
        for n in range(8):
            template = rng.choice(services)
            data = template.model_dump(mode="json")
            data.update(id=f"{template.id}-added-{round_}-{n}",
                        name=rng.choice(["Aardvark Lodge", "Zeta", template.name]))
            if n % 3 == 0:
                data["name"] = f"{NAME_WORD} Court {round_}-{n}"
            changes[data["id"]] = data
        out.append(changes)
    return out


@pytest.fixture(scope="session")
def edited_embedded_index(corpus, tmp_path_factory) -> tuple[list[Service], EmbeddedIndex]:
    """A reader that loaded the corpus and then followed rounds of edits without loading it again: the
    behaviour suite runs on it as on a freshly built index (its columns are the loaded ones with the edited
    rows laid over them). Returns the records as edited, in the order the index holds them."""
    path = tmp_path_factory.mktemp("embedded-edited") / "index.sqlite"
    writer = EmbeddedWriter(path)
    writer.replace_all(corpus)
    index = EmbeddedIndex(path)
    assert index.info().count == len(corpus)
    current = {s.id: s for s in corpus}
    for changes in edit_rounds(corpus, seed=23):
        written = writer.upsert(changes)
        assert len(written) > 50
        current.update({s.id: s for s in written})
        assert index.info().count == len(current)  # the reader catches up between rounds
    assert index.loads == 1, "an edit made the reader load the whole index again"
    return list(current.values()), index


@pytest.fixture(scope="session")
def reopened_embedded_index(edited_embedded_index) -> tuple[list[Service], EmbeddedIndex]:
    """A reader opened after those edits: it loads the columns the build stored (the snapshot) and lays the
    edits logged since over them at open, without reading the rows' columns one by one."""
    services, followed = edited_embedded_index
    reader = EmbeddedIndex(followed.path)
    assert reader.info().count == len(services)
    return services, reader


@pytest.fixture(scope="session")
def elastic_index(corpus, es_server: SearchServer, es_client):
    base = f"rehabmap-test-{uuid.uuid4().hex[:10]}"
    settings = Settings(ELASTICSEARCH_URL=es_server.url, elasticsearch_index=base)
    ElasticWriter.from_settings(settings, client=es_client).replace_all(corpus)
    yield ElasticIndex.from_settings(settings, client=es_client)
    drop_indices(es_client, base)


@pytest.fixture(scope="session")
def edited_elastic_index(corpus, es_server: SearchServer, es_client) -> Iterator[tuple[list[Service], ElasticIndex]]:
    """The search engine backend after the same rounds of maintainers' edits (`ElasticWriter.upsert`): what an edit
    writes of a record is what a fresh build would (its referrals and capacity rank it in best fit first)."""
    base = f"rehabmap-test-{uuid.uuid4().hex[:10]}"
    writer = ElasticWriter(es_client, base)
    writer.replace_all(corpus)
    current = {s.id: s for s in corpus}
    for changes in edit_rounds(corpus, seed=23):
        written = writer.upsert(changes)
        assert len(written) > 50
        current.update({s.id: s for s in written})
    yield list(current.values()), ElasticIndex(es_client, base)
    drop_indices(es_client, base)


@pytest.fixture(scope="session")
def opensearch_index(corpus, os_client):
    """The same corpus built and read with the OpenSearch client, on its own alias."""
    base = f"rehabmap-test-{uuid.uuid4().hex[:10]}"
    ElasticWriter(os_client, base).replace_all(corpus)
    yield ElasticIndex(os_client, base)
    drop_indices(os_client, base)


_INDEX_FIXTURES = {"embedded": "embedded_index", "elasticsearch": "elastic_index", "opensearch": "opensearch_index"}


@pytest.fixture(params=["elasticsearch", "opensearch"])
def engine_index(request) -> ElasticIndex:
    """The session's search engine index of the corpus (`elastic_index`, `opensearch_index`) for each engine in
    turn: for tests that only read it, which built the corpus again for themselves before."""
    return request.getfixturevalue(_INDEX_FIXTURES[request.param])


_BACKENDS = ["embedded", "embedded-after-edits", "embedded-opened-after-edits", "elasticsearch", "opensearch"]
_EDITED = {"embedded-after-edits": "edited_embedded_index", "embedded-opened-after-edits": "reopened_embedded_index",
           "elasticsearch-after-edits": "edited_elastic_index"}


@pytest.fixture(scope="session", params=_BACKENDS)
def backend(request, corpus):
    """(services, backend) for each backend in turn, over the same corpus (the search engine backend through
    each engine's client); and the embedded index read by a reader that followed maintainers' edits without
    loading it again, and by one opened after them, over the records as edited."""
    return _backend(request, corpus)


@pytest.fixture(scope="session", params=[*_BACKENDS, "elasticsearch-after-edits"])
def backend_or_edited_elastic(request, corpus):
    """`backend`, and the search engine backend after the same edits: for the tests of what an edit writes there
    (best fit's facts, the count by source). Searches of an osmem index edited document by document were several
    times slower, so the rest of the suite does not run on it. The cost grows with the write requests, not the
    refreshes (the figures: commit 2a80ecf's message), and is osmem's, not the client's: osmem (a Go binary,
    osmem-server 0.1.6, linking bleve) seems to keep each write as a segment that every search then walks, never
    merged; its `_forcemerge` answers 200 and changes nothing. An edit is now a bulk request (`ElasticWriter.upsert`),
    and the brute-force test here takes about what it takes on the unedited index (the figures: the message of the
    commit that made it one)."""
    return _backend(request, corpus)


def _backend(request, corpus):
    if request.param in _EDITED:
        return request.getfixturevalue(_EDITED[request.param])
    return corpus, request.getfixturevalue(_INDEX_FIXTURES[request.param])


@pytest.fixture
def proxy(es_server: SearchServer):
    """A proxy in front of the search server that can make it overloaded or unreachable (see cluster_proxy)."""
    with ClusterProxy(es_server.url) as cluster_proxy:
        yield cluster_proxy


@pytest.fixture(params=["embedded", "elasticsearch", "opensearch"])
def fresh(request, corpus, tmp_path) -> tuple[IndexBackend, LiveWriter, list[Service]]:
    """(reader, writer, services): a backend of each kind of its own, over part of the corpus, for tests
    that edit or rebuild it."""
    services = corpus[:400]
    if request.param == "embedded":
        path = tmp_path / "index.sqlite"
        writer: LiveWriter = EmbeddedWriter(path)
        writer.replace_all(services)
        return EmbeddedIndex(path), writer, services
    settings = request.getfixturevalue("es_settings")
    client = request.getfixturevalue("es_client" if request.param == "elasticsearch" else "os_client")
    writer = ElasticWriter.from_settings(settings, client=client)
    writer.replace_all(services)
    return ElasticIndex.from_settings(settings, client=client), writer, services
