"""Kafka fixtures shared by the gateway tests that talk to the broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sluice.application.model import TopicSpec
from sluice.kafka import KafkaSettings, Producer
from sluice.kafka.admin import delete_topics, ensure_topics

MakeTopic = Callable[..., Awaitable[TopicSpec]]


@pytest.fixture(scope="module")
def settings(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(kafka_bootstrap)


@pytest.fixture(scope="module")
async def producer(settings: KafkaSettings) -> AsyncIterator[Producer]:
    async with Producer(settings) as shared:
        yield shared


@pytest.fixture
async def make_topic(
    settings: KafkaSettings, request: pytest.FixtureRequest
) -> AsyncIterator[MakeTopic]:
    """Creates topics named after the test module (``fanout-…``, ``replies-…``), deleted after."""
    made: list[str] = []
    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")

    async def make(partitions: int = 1) -> TopicSpec:
        spec = TopicSpec(
            f"{prefix}-{uuid.uuid4().hex[:12]}", "create-if-not-exists", partitions=partitions
        )
        await ensure_topics(settings, [spec])
        made.append(spec.name)
        return spec

    yield make
    await delete_topics(settings, made)
