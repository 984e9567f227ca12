"""Session-wide fixtures: the Kafka broker every Kafka-touching test uses."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(scope="session")
async def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Bootstrap servers of a real broker: ``SLUICE_TEST_KAFKA`` or a local one for the session."""
    external = os.environ.get("SLUICE_TEST_KAFKA")
    if external:
        yield external
        return
    from sluice.kafka.local import LocalKafka, LocalKafkaSettings

    settings = LocalKafkaSettings(port=0, data_dir=tmp_path_factory.mktemp("kafka"))
    async with LocalKafka(settings) as kafka:
        yield kafka.bootstrap_servers
