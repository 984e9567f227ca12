"""Shared fixtures: the Kafka broker every Kafka-touching test uses, and a stand-in for
Google's JWKS endpoint."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.auth.jwks_server import JwksServer, jwks_server


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


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    """A local JWKS endpoint publishing one RSA key made for the test (kid ``k1``)."""
    from tests.auth.google_tokens import new_key

    async with jwks_server() as server:
        server.keys.append(new_key("k1"))
        yield server
