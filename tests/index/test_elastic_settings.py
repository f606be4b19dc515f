"""A cluster as production runs it: several nodes, an API key, TLS with the deployment's own CA.

The production client of each engine (`from_settings`, no client handed in) builds and reads an index
through a proxy in front of osmem that plays a secured cluster: it refuses a request without the API key
(401) and serves HTTPS with a certificate signed by a CA made for the test. The first node named is down.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
import uuid
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rehabmap.config import InvalidSettings, SearchEngine, Settings, get_settings
from rehabmap.errors import IndexUnavailable
from search.elastic import ElasticIndex, ElasticWriter
from search.engine import ClusterError
from tests.index.cluster_proxy import ClusterProxy
from tests.es_server import drop_indices
from tests.listening import refused_port

API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="  # the shape a cluster gives


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for 127.0.0.1 signed by a fresh CA, and the CA's PEM file."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("rehabmap test CA")).issuer_name(_name("rehabmap test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "node.pem", folder / "node.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, str(ca_file)


@pytest.fixture(params=list(SearchEngine))
def engine_name(request) -> SearchEngine:
    return request.param


@pytest.fixture
def secured(es_server, es_client, tls, engine_name):
    """A secured cluster's address, behind a node that is down; every index made under the alias is
    dropped afterwards."""
    context, ca_file = tls
    base = f"rehabmap-test-{uuid.uuid4().hex[:10]}"
    with ClusterProxy(es_server.url, api_key=API_KEY, tls=context) as proxy, refused_port() as down:
        yield proxy, f"https://127.0.0.1:{down},{proxy.url}", base, ca_file
    drop_indices(es_client, base)


def test_several_nodes_an_api_key_and_a_ca_bundle(secured, corpus, caplog, engine_name):
    proxy, hosts, base, ca_file = secured
    settings = Settings(ELASTICSEARCH_URL=hosts, elasticsearch_index=base, elasticsearch_api_key=API_KEY,
                        elasticsearch_ca_file=ca_file, search_engine=engine_name)
    caplog.set_level(logging.DEBUG)
    assert ElasticWriter.from_settings(settings).replace_all(corpus[:20]) == 20
    index = ElasticIndex.from_settings(settings)
    assert index.info().count == 20
    assert index.get(corpus[0].id) == corpus[0]
    assert proxy.seen("_bulk")  # it reached the live node past the one that is down
    assert not [r for r in caplog.records if API_KEY in r.getMessage()]  # the key is never logged


def test_without_the_key_the_cluster_refuses_and_the_operator_is_told(secured, corpus, engine_name, caplog):
    """A refused key is the deployment's to fix: a build and a read each end in `IndexUnavailable` (the API's
    503 with a message, the CLI's one-line error; it used to escape as a raw ClusterError, a 500), and the
    log tells the operator which setting to check."""
    proxy, hosts, base, ca_file = secured
    keyed = Settings(ELASTICSEARCH_URL=hosts, elasticsearch_index=base, elasticsearch_ca_file=ca_file,
                     elasticsearch_api_key=API_KEY, search_engine=engine_name)
    assert ElasticWriter.from_settings(keyed).replace_all(corpus[:5]) == 5
    keyless = keyed.model_copy(update={"elasticsearch_api_key": None})
    caplog.set_level(logging.INFO)
    for call in (lambda: ElasticWriter.from_settings(keyless).replace_all(corpus[:5]),
                 lambda: ElasticIndex.from_settings(keyless).info()):
        with pytest.raises(IndexUnavailable, match="refused this service's credentials") as refused:
            call()
        cause = refused.value.__cause__
        assert isinstance(cause, ClusterError) and (cause.status, cause.error) == (401, "security_exception")
    told = [r for r in caplog.records if "refused rehabmap's credentials" in r.getMessage()]
    assert told and all(r.levelno == logging.ERROR and "API_KEY" in r.getMessage() for r in told)
    assert ElasticIndex.from_settings(keyed).info().count == 5  # the index served before is unchanged


def test_without_the_ca_the_certificate_is_refused(secured, corpus, engine_name):
    proxy, _, base, _ = secured
    settings = Settings(ELASTICSEARCH_URL=proxy.url, elasticsearch_index=base, elasticsearch_api_key=API_KEY,
                        search_engine=engine_name)
    with pytest.raises(IndexUnavailable) as refused:
        ElasticWriter.from_settings(settings).replace_all(corpus[:5])
    assert "certificate verify failed" in str(refused.value.__cause__).lower()
    assert not proxy.seen()  # nothing was sent to a node whose certificate did not check


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def test_a_failing_connection_shows_no_secret(corpus, engine_name, caplog):
    """No node answers: the error, every error it was raised from, and the log name the trouble, never the
    API key or a password written into the URL."""
    password = "pw-" + uuid.uuid4().hex
    with refused_port() as one, refused_port() as two:  # two nodes that are down, and stay down
        hosts = f"https://rehabmap:{password}@127.0.0.1:{one},https://127.0.0.1:{two}"
        settings = Settings(ELASTICSEARCH_URL=hosts, elasticsearch_index="rehabmap-test-none",
                            elasticsearch_api_key=API_KEY, search_engine=engine_name)
        caplog.set_level(logging.DEBUG)
        for call in (lambda: ElasticWriter.from_settings(settings).replace_all(corpus[:5]),
                     lambda: ElasticIndex.from_settings(settings).info()):
            with pytest.raises(IndexUnavailable, match="did not answer") as refused:
                call()
            told = [refused.value.message, *(f"{e!s} {e!r}" for e in _chain(refused.value)),
                    *(r.getMessage() for r in caplog.records)]
            assert "ConnectionError" in " ".join(told)  # what went wrong is said
            for secret in (API_KEY, password):
                assert not [text for text in told if secret in text]


def test_a_missing_ca_file_names_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("REHABMAP_ELASTICSEARCH_CA_FILE", str(tmp_path / "nowhere.pem"))
    get_settings.cache_clear()
    try:
        with pytest.raises(InvalidSettings, match="REHABMAP_ELASTICSEARCH_CA_FILE: no such file"):
            get_settings()
    finally:
        get_settings.cache_clear()
