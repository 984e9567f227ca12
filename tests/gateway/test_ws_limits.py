"""WebSocket limits under Hypercorn with the gateway's own configuration (gateway.serving)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import wsproto
import wsproto.events
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.app import create_app
from gateway.serving import serving
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.application.model import Application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port
from tests.gateway.test_websockets import write_app

pytestmark = pytest.mark.kafka

TENANT = "my-tenant"
APP_ID = "my-app"
LIMITS = GatewaySettings(
    max_message_bytes=1024, messages_per_second=1.0, message_burst=3, ping_interval=0.2
)


@dataclass(frozen=True)
class Topics:
    kafka: KafkaSettings
    application: Application
    questions: str


@pytest.fixture(scope="module")
async def topics(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Topics]:
    kafka = KafkaSettings(kafka_bootstrap)
    suffix = uuid.uuid4().hex[:10]
    questions, answers = f"limits-q-{suffix}", f"limits-a-{suffix}"
    application = load_application(
        write_app(tmp_path_factory.mktemp("limits") / "app", questions, answers)
    )
    await ensure_topics(kafka, list(application.topics.values()))
    try:
        yield Topics(kafka, application, questions)
    finally:
        await delete_topics(kafka, [questions, answers])


@pytest.fixture
async def url(topics: Topics) -> AsyncIterator[str]:
    served = create_app({(TENANT, APP_ID): topics.application}, topics.kafka, LIMITS)
    async with serving(served, LOOPBACK, free_port()) as base_url:
        yield base_url.replace("http://", "ws://")


def produce_url(url: str) -> str:
    return f"{url}/v1/produce/{TENANT}/{APP_ID}/user-input?param:sessionId=s1"


async def closed_with(socket: ClientConnection) -> tuple[int | None, str | None]:
    async with asyncio.timeout(20):
        await socket.wait_closed()
    return socket.close_code, socket.close_reason


async def read_until_closed(socket: ClientConnection) -> list[dict[str, object]]:
    answers = []
    async with asyncio.timeout(20):
        try:
            while True:
                answers.append(json.loads(await socket.recv()))
        except ConnectionClosed:
            return answers


async def test_a_message_above_the_limit_closes_with_1009(url: str) -> None:
    async with connect(produce_url(url), max_size=None) as socket:
        await socket.send(json.dumps({"value": "x" * 2000}))
        code, _ = await closed_with(socket)
    assert code == 1009


async def test_a_message_at_the_limit_is_accepted(url: str) -> None:
    async with connect(produce_url(url)) as socket:
        body = json.dumps({"value": ""})
        await socket.send(json.dumps({"value": "x" * (1024 - len(body))}))
        async with asyncio.timeout(20):
            assert json.loads(await socket.recv()) == {"status": "OK", "reason": None}


async def test_a_flood_beyond_the_burst_closes_with_1008(url: str) -> None:
    async with connect(produce_url(url)) as socket:
        for _ in range(10):
            await socket.send(json.dumps({"value": "v"}))
        answers = await read_until_closed(socket)
        code, reason = await closed_with(socket)
    assert code == 1008
    assert reason == "more than 1 messages per second"
    # The burst went through: at most the burst of messages was answered before the close.
    assert 1 <= len(answers) <= 3
    assert all(answer["status"] == "OK" for answer in answers)


async def test_the_gateway_pings_idle_sockets(url: str) -> None:
    host, port = url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    path = f"/v1/consume/{TENANT}/{APP_ID}/bot-output?param:sessionId=s1"
    writer.write(client.send(wsproto.events.Request(host=host, target=path)))
    pings = 0
    try:
        async with asyncio.timeout(20):
            while pings < 2:
                client.receive_data(await reader.read(65536))
                for event in client.events():
                    if isinstance(event, wsproto.events.Ping):
                        pings += 1
                        writer.write(client.send(event.response()))
    finally:
        writer.close()
        await writer.wait_closed()
    assert pings == 2


async def test_shutdown_does_not_wait_for_the_ping_interval(topics: Topics) -> None:
    settings = GatewaySettings(ping_interval=60)
    served = create_app({(TENANT, APP_ID): topics.application}, topics.kafka, settings)

    async def serve_one_socket() -> None:
        async with serving(served, LOOPBACK, free_port()) as base_url:
            ws_url = produce_url(base_url.replace("http://", "ws://"))
            async with connect(ws_url) as socket:
                await socket.send(json.dumps({"value": "v"}))
                assert json.loads(await socket.recv())["status"] == "OK"

    # Well below the 60 s a sleeping ping task would hold the server.
    await asyncio.wait_for(serve_one_socket(), 30)
