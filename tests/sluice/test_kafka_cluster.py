"""The Kafka adapter against the replicated cluster with TLS and SCRAM (``kafka_cluster``): topics
get the cluster's replication, records travel, and a wrong password, an untrusted certificate or
a plaintext client against the TLS listener are refused at once with the cause named."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from sluice.application.model import TopicSpec
from sluice.errors import KafkaError
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.kafka.admin import delete_topics, describe_topic, ensure_topics, list_topics
from sluice.kafka.local.certs import make_ca, pem
from sluice.record import Record
from tests.kafka_cluster import SecuredCluster

pytestmark = pytest.mark.kafka


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def test_topics_take_the_cluster_replication_and_records_travel(
    kafka_cluster: SecuredCluster,
) -> None:
    settings = kafka_cluster.settings
    default = TopicSpec(unique("replicated"), creation_mode="create-if-not-exists", partitions=2)
    chosen = TopicSpec(
        unique("chosen"),
        creation_mode="create-if-not-exists",
        options={"replication-factor": 2},
        config={"min.insync.replicas": "1"},
    )
    try:
        assert set(await ensure_topics(settings, [default, chosen])) == {default.name, chosen.name}
        described = await describe_topic(settings, default.name)
        assert (described.partitions, described.replication_factor) == (2, 3)
        assert described.config["min.insync.replicas"] == "2"
        described = await describe_topic(settings, chosen.name)
        assert described.replication_factor == 2
        assert described.config["min.insync.replicas"] == "1"

        impossible = TopicSpec(
            unique("impossible"),
            creation_mode="create-if-not-exists",
            options={"replication-factor": 1},
            config={"min.insync.replicas": "2"},
        )
        with pytest.raises(KafkaError, match=r"min\.insync\.replicas 2 is more than its"):
            await ensure_topics(settings, [impossible])
        assert impossible.name not in await list_topics(settings)

        async with Producer(settings) as producer:
            sent = [
                await producer.send(default.name, Record(n, key=n), source="/test")
                for n in range(20)
            ]
        assert {result.partition for result in sent} == {0, 1}
        async with Consumer(settings, [default], group_id=unique("group")) as consumer:
            values: list[Any] = []
            async with asyncio.timeout(30):
                while len(values) < 20:
                    items = await consumer.poll(timeout_ms=500)
                    values += [i.record.value for i in items if isinstance(i, ConsumedRecord)]
        assert sorted(values) == list(range(20))
    finally:
        await delete_topics(settings, [default.name, chosen.name])


def test_brokers_replicate_with_the_same_tls_and_scram(kafka_cluster: SecuredCluster) -> None:
    server = kafka_cluster.data_dir / "node-1" / "server.properties"
    text = server.read_text()
    protocols = "CLIENT:SASL_SSL,INTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert f"listener.security.protocol.map={protocols}" in text
    assert "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512" in text
    assert oct(server.stat().st_mode & 0o777) == "0o600"  # it holds the password


def _wrong_password(cluster: SecuredCluster) -> dict[str, str]:
    properties = cluster.properties
    properties["sasl.jaas.config"] = properties["sasl.jaas.config"].replace(
        cluster.password, "not-the-password"
    )
    return properties


def _untrusted(cluster: SecuredCluster) -> dict[str, str]:
    other = cluster.data_dir / "other-ca.pem"
    other.write_bytes(pem(make_ca("another CA")[1]))
    return {**cluster.properties, "ssl.truststore.location": str(other)}


def _plaintext(cluster: SecuredCluster) -> dict[str, str]:
    return {"bootstrap.servers": cluster.properties["bootstrap.servers"]}


def _sasl_without_tls(cluster: SecuredCluster) -> dict[str, str]:
    properties = {k: v for k, v in cluster.properties.items() if not k.startswith("ssl.")}
    return {**properties, "security.protocol": "SASL_PLAINTEXT"}


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (_wrong_password, "refused the SASL credentials for user 'sluice' (SCRAM-SHA-512)"),
        (_untrusted, "is not trusted: self-signed certificate in certificate chain"),
        (_plaintext, "speaks TLS but security.protocol is PLAINTEXT"),
        (_sasl_without_tls, "speaks TLS but security.protocol is SASL_PLAINTEXT"),
    ],
)
async def test_refused_at_once_with_the_cause(
    kafka_cluster: SecuredCluster, make: Any, cause: str
) -> None:
    settings = KafkaSettings.from_properties(make(kafka_cluster))
    topic = TopicSpec(unique("never"), creation_mode="create-if-not-exists")
    starts: list[Any] = [
        lambda: ensure_topics(settings, [topic]),
        lambda: Producer(settings).start(),
        lambda: Consumer(settings, [topic], group_id="g").start(),
    ]
    for start in starts:
        began = time.monotonic()
        with pytest.raises(KafkaError) as caught:
            await asyncio.wait_for(start(), 30)
        assert cause in str(caught.value)
        assert not caught.value.retriable
        assert "not-the-password" not in str(caught.value)
        assert kafka_cluster.password not in str(caught.value)
        assert time.monotonic() - began < 15
