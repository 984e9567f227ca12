"""The replicated cluster the tests of production-shaped Kafka share: three KRaft nodes on
loopback with TLS (certificates made for the run) and SCRAM-SHA-512, replication factor 3 and
``min.insync.replicas`` 2 by default (:class:`~sluice.kafka.local.cluster.LocalKafkaCluster`).

Started once per session, only when a selected test asks for ``kafka_cluster`` (about 30 s on
a busy 2-core machine); a test that kills a node restarts it before it ends
(:func:`all_nodes_back`), so the next test finds three brokers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from sluice.kafka import KafkaSettings
from sluice.kafka.local import LocalKafkaSettings
from sluice.kafka.local.cluster import LocalClusterSettings, LocalKafkaCluster

__all__ = ["SecuredCluster", "all_nodes_back", "kafka_cluster"]


@dataclass(frozen=True)
class SecuredCluster:
    """The running cluster and what a client needs to reach it."""

    cluster: LocalKafkaCluster
    data_dir: Path

    @property
    def properties(self) -> dict[str, str]:
        """Java client properties, ``bootstrap.servers`` included (instance.yaml's admin)."""
        return dict(self.cluster.client_properties)

    @property
    def settings(self) -> KafkaSettings:
        return KafkaSettings.from_properties(self.properties)

    @property
    def password(self) -> str:
        jaas = self.properties["sasl.jaas.config"]
        return jaas.split('password="', 1)[1].split('"', 1)[0]

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "certs" / "ca.pem"


@pytest.fixture(scope="session")
async def kafka_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[SecuredCluster]:
    """Three brokers with TLS and SCRAM for the session."""
    data_dir = tmp_path_factory.mktemp("kafka-cluster")
    settings = LocalClusterSettings(
        brokers=3,
        tls=True,
        sasl="scram",
        data_dir=data_dir,
        base=LocalKafkaSettings(start_timeout=180, stop_grace=5),
    )
    async with LocalKafkaCluster(settings) as cluster:
        yield SecuredCluster(cluster, data_dir)


@asynccontextmanager
async def all_nodes_back(cluster: LocalKafkaCluster) -> AsyncIterator[None]:
    """Restart every node the block killed, once it ends."""
    nodes = list(cluster.pids)
    try:
        yield
    finally:
        for node_id in nodes:
            if node_id not in cluster.pids:
                await cluster.restart(node_id)
