"""Helpers of the gateway acceptance tests: a real gateway under Hypercorn on loopback, real
topics on the broker, and a probe that reads a topic from its beginning to its end offsets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiokafka
import httpx
from aiokafka.structs import TopicPartition
from quart import Quart
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from gateway.app import create_app
from gateway.serving import serving
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.application.model import Application, TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port

__all__ = [
    "APP_ID",
    "PROBLEM",
    "SESSION_HEADER",
    "TENANT",
    "Served",
    "TopicProbe",
    "app_topics",
    "assert_problem",
    "receive_json",
    "refusal",
    "serve_gateway",
    "unique",
    "write_app",
]

TENANT = "my-tenant"
APP_ID = "my-app"
PROBLEM = "application/problem+json"
SESSION_HEADER = "langstream-client-session-id"


def unique(prefix: str) -> str:
    """A topic name nobody else uses on the shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def write_app(directory: Path, topics: Mapping[str, int], gateways_yaml: str) -> Path:
    """An application folder declaring ``topics`` (name -> partitions) and the gateways."""
    directory.mkdir(parents=True)
    declared = "".join(
        f"  - name: {name}\n    creation-mode: create-if-not-exists\n    partitions: {count}\n"
        for name, count in topics.items()
    )
    (directory / "pipeline.yaml").write_text(f"topics:\n{declared}")
    (directory / "gateways.yaml").write_text(gateways_yaml)
    return directory


def app_topics(application: Application) -> list[TopicSpec]:
    return list(application.topics.values())


@dataclass(frozen=True)
class Served:
    """A running gateway: base URLs, the Quart app (for ``runtime_of``) and its application."""

    url: str
    app: Quart
    application: Application

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def http(self, kind: str, gateway: str, tenant: str = TENANT, app: str = APP_ID) -> str:
        return f"{self.url}/api/gateways/{kind}/{tenant}/{app}/{gateway}"

    def ws(self, kind: str, gateway: str, query: str = "") -> str:
        return f"{self.ws_url}/v1/{kind}/{TENANT}/{APP_ID}/{gateway}{query}"


@contextlib.asynccontextmanager
async def serve_gateway(
    kafka: KafkaSettings, app_dir: Path, settings: GatewaySettings | None = None
) -> AsyncIterator[Served]:
    """The application in ``app_dir`` behind a gateway served the way ``sluice run`` serves it
    (:func:`gateway.serving.serving`: Hypercorn on loopback, its limits and pings, graceful
    shutdown); its topics are created first and deleted after."""
    application = load_application(app_dir, name=APP_ID)
    topics = app_topics(application)
    await ensure_topics(kafka, topics)
    quart_app = create_app({(TENANT, APP_ID): application}, kafka, settings or GatewaySettings())
    try:
        async with serving(quart_app, LOOPBACK, free_port()) as url:
            yield Served(url, quart_app, application)
    finally:
        await delete_topics(kafka, [topic.name for topic in topics])


class TopicProbe:
    """Reads topics from their beginning to their end offsets (taken now), without a group."""

    def __init__(self, kafka: KafkaSettings, topics: Iterable[TopicSpec]) -> None:
        self._kafka = kafka
        self._topics = {topic.name: topic for topic in topics}
        kwargs = kafka.client_kwargs("consumer")
        kwargs.update(group_id=None, enable_auto_commit=False)
        self._consumer = aiokafka.AIOKafkaConsumer(**kwargs)

    async def __aenter__(self) -> TopicProbe:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._consumer.stop()

    def _partitions(self, topic: str) -> list[TopicPartition]:
        spec = self._topics[topic]
        return [TopicPartition(topic, p) for p in range(spec.partitions or 1)]

    async def bounds(self, topic: str) -> dict[int, tuple[int, int]]:
        """Per partition, (beginning offset, end offset) as the broker says now."""
        partitions = self._partitions(topic)
        begin = await self._consumer.beginning_offsets(partitions)
        end = await self._consumer.end_offsets(partitions)
        return {tp.partition: (begin[tp], end[tp]) for tp in partitions}

    async def records(self, topic: str) -> list[Any]:
        """Every record of ``topic`` from the beginning up to the end offsets taken now."""
        bounds = await self.bounds(topic)
        if all(first >= last for first, last in bounds.values()):
            return []
        found: list[Any] = []
        async with Consumer(self._kafka, [self._topics[topic]], start_at="beginning") as consumer:
            remaining = {p: last for p, (first, last) in bounds.items() if first < last}
            async with asyncio.timeout(30):
                while remaining:
                    for item in await consumer.poll(timeout_ms=200):
                        stop = remaining.get(item.partition)
                        if stop is not None and item.offset < stop:
                            found.append(item.record if isinstance(item, ConsumedRecord) else item)
                    for partition in list(remaining):
                        if await consumer.position(topic, partition) >= remaining[partition]:
                            del remaining[partition]
        return found

    async def assert_empty(self, *topics: str) -> None:
        for topic in topics or tuple(self._topics):
            assert await self.records(topic) == [], f"records were written to {topic}"


def assert_problem(response: httpx.Response, status: int, detail: str | None = None) -> str:
    """``response`` is an RFC 9457 problem with ``status`` (and ``detail``); its detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.headers
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "instance"}, body
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    if detail is not None:
        assert body["detail"] == detail
    return str(body["detail"])


async def refusal(url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """The HTTP status and problem body of a refused WebSocket handshake."""
    try:
        async with connect(url, **kwargs):
            pass
    except InvalidStatus as refused:
        response = refused.response
        assert response.headers["content-type"] == PROBLEM
        return response.status_code, json.loads(response.body or b"{}")
    raise AssertionError(f"the handshake to {url} was accepted")


async def receive_json(socket: ClientConnection, timeout: float = 20) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        return json.loads(await socket.recv())
