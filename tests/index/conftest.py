"""One synthetic corpus, built into each index backend once per session.

`backend` is parametrised over both backends so every behaviour test runs against each; the search
server is osmem (started here) unless ELASTICSEARCH_URL names a real cluster.
"""

from __future__ import annotations

import os
import random
import uuid
from datetime import date

import pytest

from rehabmap.config import Settings
from rehabmap.index.base import IndexBackend
from search.elastic import ElasticIndex, ElasticWriter
from search.embedded import EmbeddedIndex, EmbeddedWriter
from rehabmap.record import Service
from rehabmap.index.base import LiveWriter
from tests.es_server import SearchServer, osmem_binary, search_server
from tests.index.cluster_proxy import ClusterProxy
from bench.synthetic import load_small_areas, make_services

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
    """What `make_services` leaves out: polygon catchments, languages, organisations, text to find."""
    rng = random.Random(seed)
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
        if i % 4 == 2:
            data["organisation"] = rng.choice(ORGANISATIONS)
        if i % 60 == 5:
            data["name"] = f"{NAME_WORD} House {i}"
        if i % 45 == 7:
            data["description"] = f"Peer-led {DESCRIPTION_WORD} and gardening group."
        if i % 31 == 0:  # names whose order depends on case folding, not on code points
            data["name"] = rng.choice(["alpha Court", "Alpha court", "ÉCOLE Road", "école road", "Zeta"])
        out.append(Service.model_validate(data))
    return out


@pytest.fixture(scope="session")
def corpus(small_areas) -> list[Service]:
    return _vary(make_services(small_areas, CORPUS_SIZE, seed=11, today=TODAY), seed=11)


@pytest.fixture(scope="session")
def es_server():
    if "ELASTICSEARCH_URL" not in os.environ and osmem_binary() is None:
        pytest.skip("no search server: install osmem-server or set ELASTICSEARCH_URL")
    with search_server() as server:
        yield server


@pytest.fixture(scope="session")
def es_client(es_server: SearchServer):
    client = es_server.client()
    yield client
    client.close()


@pytest.fixture
def es_settings(es_server: SearchServer, es_client):
    """Settings naming a fresh index alias; every index made under it is deleted afterwards."""
    base = f"rehabmap-test-{uuid.uuid4().hex[:10]}"
    yield Settings(ELASTICSEARCH_URL=es_server.url, elasticsearch_index=base)
    drop_indices(es_client, base)


def drop_indices(client, base: str) -> None:
    """Delete every index of one test alias, by name (clusters refuse wildcard deletes by default)."""
    found = client.options(ignore_status=404).indices.get_alias(index=f"{base}*")
    names = [name for name in found.body if name == base or name.startswith(f"{base}-")] \
        if found.meta.status == 200 else []
    if names:
        client.options(ignore_status=404).indices.delete(index=",".join(names))


@pytest.fixture(scope="session")
def embedded_index(corpus, tmp_path_factory) -> EmbeddedIndex:
    path = tmp_path_factory.mktemp("embedded") / "index.sqlite"
    EmbeddedWriter(path).replace_all(corpus)
    return EmbeddedIndex(path)


@pytest.fixture(scope="session")
def elastic_index(corpus, es_server: SearchServer, es_client):
    base = f"rehabmap-test-{uuid.uuid4().hex[:10]}"
    settings = Settings(ELASTICSEARCH_URL=es_server.url, elasticsearch_index=base)
    ElasticWriter.from_settings(settings, client=es_client).replace_all(corpus)
    yield ElasticIndex.from_settings(settings, client=es_client)
    drop_indices(es_client, base)


@pytest.fixture(scope="session", params=["embedded", "elasticsearch"])
def backend(request, corpus):
    """(services, backend) for each backend in turn, over the same corpus."""
    index = request.getfixturevalue("embedded_index" if request.param == "embedded" else "elastic_index")
    return corpus, index


@pytest.fixture
def proxy(es_server: SearchServer):
    """A proxy in front of the search server that can make it overloaded or unreachable (see cluster_proxy)."""
    with ClusterProxy(es_server.url) as cluster_proxy:
        yield cluster_proxy


@pytest.fixture(params=["embedded", "elasticsearch"])
def fresh(request, corpus, tmp_path) -> tuple[IndexBackend, LiveWriter, list[Service]]:
    """(reader, writer, services): a backend of each kind of its own, over part of the corpus, for tests
    that edit or rebuild it."""
    services = corpus[:400]
    if request.param == "embedded":
        path = tmp_path / "index.sqlite"
        writer: LiveWriter = EmbeddedWriter(path)
        writer.replace_all(services)
        return EmbeddedIndex(path), writer, services
    settings, client = request.getfixturevalue("es_settings"), request.getfixturevalue("es_client")
    writer = ElasticWriter.from_settings(settings, client=client)
    writer.replace_all(services)
    return ElasticIndex.from_settings(settings, client=client), writer, services
