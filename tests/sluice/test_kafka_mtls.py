"""Client certificates against a real broker that requires them (``ssl.client.auth=required``):
a PKCS12 key store from instance.yaml's ``ssl.keystore.*`` reaches the handshake, and a client
without one is refused with the TLS cause named, not left waiting."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from sluice.application.model import TopicSpec
from sluice.errors import KafkaError
from sluice.kafka import KafkaSettings, Producer
from sluice.kafka.admin import ensure_topics, list_topics
from sluice.kafka.local import LocalKafkaSettings
from sluice.kafka.local.certs import make_certificate, write_certificates
from sluice.kafka.local.cluster import LocalClusterSettings, LocalKafkaCluster
from sluice.record import Record

pytestmark = pytest.mark.kafka


@dataclass(frozen=True)
class MutualTls:
    properties: dict[str, str]
    keystore: Path


@pytest.fixture(scope="module")
async def mutual_tls(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MutualTls]:
    data_dir = Path(tmp_path_factory.mktemp("mtls-kafka"))
    # The cluster's CA made first, so a client certificate can be signed by it.
    certificates = write_certificates(data_dir / "certs", [1])
    ca_key = serialization.load_pem_private_key(
        (data_dir / "certs" / "ca-key.pem").read_bytes(), None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(certificates.ca.read_bytes())
    key, certificate = make_certificate(ca_key, ca, "sluice-client", hosts=("client",))
    keystore = data_dir / "client.p12"
    keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"client", key, certificate, [ca], serialization.BestAvailableEncryption(b"storepw")
        )
    )
    settings = LocalClusterSettings(
        brokers=1,
        tls=True,
        data_dir=data_dir,
        base=LocalKafkaSettings(start_timeout=180, stop_grace=5),
        extra_properties={
            "listener.name.client.ssl.client.auth": "required",
            "listener.name.client.ssl.truststore.type": "PEM",
            "listener.name.client.ssl.truststore.location": str(certificates.ca),
        },
    )
    async with LocalKafkaCluster(settings) as cluster:
        yield MutualTls(dict(cluster.client_properties), keystore)


async def test_a_pkcs12_client_certificate_is_accepted(mutual_tls: MutualTls) -> None:
    settings = KafkaSettings.from_properties(
        {
            **mutual_tls.properties,
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(mutual_tls.keystore),
            "ssl.keystore.password": "storepw",
        }
    )
    topic = TopicSpec(f"mtls-{uuid.uuid4().hex[:8]}", creation_mode="create-if-not-exists")
    assert await ensure_topics(settings, [topic]) == (topic.name,)
    async with Producer(settings) as producer:
        result = await producer.send(topic.name, Record("signed"), source="/test")
    assert result.offset == 0
    assert topic.name in await list_topics(settings)


async def test_without_a_client_certificate_the_handshake_is_refused(
    mutual_tls: MutualTls,
) -> None:
    settings = KafkaSettings.from_properties(mutual_tls.properties)
    began = time.monotonic()
    with pytest.raises(KafkaError) as caught:
        await Producer(settings).start()
    assert "refused the TLS session (SSLV3_ALERT_BAD_CERTIFICATE)" in str(caught.value)
    assert "check ssl.keystore.*" in str(caught.value)
    assert not caught.value.retriable
    assert time.monotonic() - began < 15
