"""The WebSocket gateways under Hypercorn on loopback, against the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from gateway.app import create_app
from gateway.runtime import runtime_of
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.application.model import Application, TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port
from sluice.record import Record
from tests.gateway.test_http_app import read_until, with_session

pytestmark = pytest.mark.kafka

TENANT = "my-tenant"
APP_ID = "my-app"
SESSION = "langstream-client-session-id"


@dataclass(frozen=True)
class Gateway:
    url: str
    questions: str
    answers: str
    kafka: KafkaSettings
    application: Application

    def ws(self, kind: str, gateway: str, query: str = "") -> str:
        return f"{self.url}/v1/{kind}/{TENANT}/{APP_ID}/{gateway}{query}"


def write_app(directory: Path, questions: str, answers: str) -> Path:
    directory.mkdir()
    (directory / "pipeline.yaml").write_text(
        "topics:\n"
        + "".join(
            f"  - name: {name}\n    creation-mode: create-if-not-exists\n"
            for name in (questions, answers)
        )
    )
    session_header = f"""
        - key: {SESSION}
          value-from-parameters: sessionId"""
    (directory / "gateways.yaml").write_text(
        f"""
gateways:
  - id: user-input
    type: produce
    topic: {questions}
    parameters: [sessionId]
    produce-options:
      headers:{session_header}
  - id: bot-output
    type: consume
    topic: {answers}
    parameters: [sessionId]
    consume-options:
      filters:
        headers:{session_header}
  - id: chat
    type: chat
    parameters: [sessionId]
    chat-options:
      questions-topic: {questions}
      answers-topic: {answers}
      headers:{session_header}
  - id: secured
    type: consume
    topic: {answers}
    authentication:
      provider: http
      configuration:
        base-url: http://127.0.0.1:9/never-called
"""
    )
    return directory


@contextlib.asynccontextmanager
async def served(quart_app: Quart) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """``quart_app`` under Hypercorn on loopback: its ws:// URL and the event that stops it."""
    config = Config()
    port = free_port()
    config.bind = [f"{LOOPBACK}:{port}"]
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(quart_app, config, shutdown_trigger=stop.wait))
    for _ in range(200):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(LOOPBACK, port)
            writer.close()
            await writer.wait_closed()
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("the gateway did not start")
    try:
        yield f"ws://{LOOPBACK}:{port}", stop
    finally:
        stop.set()
        await task


@pytest.fixture(scope="module")
async def gateway(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    kafka = KafkaSettings(kafka_bootstrap)
    suffix = uuid.uuid4().hex[:10]
    questions, answers = f"ws-questions-{suffix}", f"ws-answers-{suffix}"
    app_dir = write_app(tmp_path_factory.mktemp("ws") / "app", questions, answers)
    application = load_application(app_dir)
    await ensure_topics(kafka, list(application.topics.values()))
    quart_app = create_app({(TENANT, APP_ID): application}, kafka, GatewaySettings())
    try:
        async with served(quart_app) as (url, _):
            yield Gateway(url, questions, answers, kafka, application)
    finally:
        await delete_topics(kafka, [questions, answers])


async def receive_json(socket: ClientConnection) -> Any:
    async with asyncio.timeout(20):
        return json.loads(await socket.recv())


async def produce(gateway: Gateway, topic: str, *records: Record) -> None:
    async with Producer(gateway.kafka) as producer:
        for record in records:
            await producer.send(topic, record, source="/test")


def answer(text: str, session: str) -> Record:
    return Record({"text": text}, headers={SESSION: session})


async def test_produce_then_read_the_topic(gateway: Gateway) -> None:
    session = uuid.uuid4().hex
    url = gateway.ws("produce", "user-input", f"?param:sessionId={session}")
    async with connect(url) as socket:
        await socket.send(json.dumps({"key": "k1", "value": {"q": "hi"}, "headers": {"h": "v"}}))
        assert await receive_json(socket) == {"status": "OK", "reason": None}
        await socket.send(json.dumps({"value": "x", "headers": {SESSION: "forged"}}))
        bad = await receive_json(socket)
        assert bad["status"] == "BAD_REQUEST"
        assert "parameter-level header" in bad["reason"]
        await socket.send("not json")
        assert (await receive_json(socket))["status"] == "BAD_REQUEST"
        await socket.send(json.dumps({"value": "still open"}))
        assert (await receive_json(socket))["status"] == "OK"
    consumed = await read_until(gateway.kafka, gateway.questions, with_session(session))
    assert consumed.record.value == {"q": "hi"}
    assert consumed.record.key == "k1"
    assert consumed.record.headers["h"] == "v"


async def test_a_binary_frame_closes_with_1003(gateway: Gateway) -> None:
    url = gateway.ws("produce", "user-input", "?param:sessionId=s")
    async with connect(url) as socket:
        await socket.send(b"\x00\x01")
        async with asyncio.timeout(20):
            await socket.wait_closed()
        assert socket.close_code == 1003


async def test_consume_gets_only_its_session_from_the_handshake_on(gateway: Gateway) -> None:
    mine, other = uuid.uuid4().hex, uuid.uuid4().hex
    await produce(gateway, gateway.answers, answer("before", mine))
    url = gateway.ws("consume", "bot-output", f"?param:sessionId={mine}")
    async with connect(url) as socket:
        await produce(
            gateway, gateway.answers, answer("a", mine), answer("x", other), answer("b", mine)
        )
        first = await receive_json(socket)
        second = await receive_json(socket)
        assert [first["record"]["value"], second["record"]["value"]] == [
            {"text": "a"},
            {"text": "b"},
        ]
        assert first["record"]["headers"][SESSION] == mine
        await socket.send("ignored")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await socket.recv()


async def test_an_offset_token_resumes_strictly_after_its_record(gateway: Gateway) -> None:
    session = uuid.uuid4().hex
    url = gateway.ws("consume", "bot-output", f"?param:sessionId={session}")
    async with connect(url) as socket:
        await produce(gateway, gateway.answers, *(answer(str(i), session) for i in range(3)))
        first = await receive_json(socket)
        assert first["record"]["value"] == {"text": "0"}
    resume = f"?param:sessionId={session}&option:position={first['offset']}"
    async with connect(gateway.ws("consume", "bot-output", resume)) as socket:
        values = [(await receive_json(socket))["record"]["value"] for _ in range(2)]
        assert values == [{"text": "1"}, {"text": "2"}]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await socket.recv()


@contextlib.asynccontextmanager
async def worker(gateway: Gateway) -> AsyncIterator[None]:
    """A tiny chat bot: answers each question on the answers topic with its session header."""
    consumer = Consumer(gateway.kafka, [TopicSpec(gateway.questions)], start_at="end")
    await consumer.start()
    for topic, partition in consumer.assignment():
        await consumer.position(topic, partition)

    async def serve_questions(producer: Producer) -> None:
        while True:
            for item in await consumer.poll(timeout_ms=200):
                assert isinstance(item, ConsumedRecord)
                reply = answer(f"answer to {item.record.value}", item.record.headers[SESSION])
                await producer.send(gateway.answers, reply, source="/test/worker")

    async with Producer(gateway.kafka) as producer:
        task = asyncio.create_task(serve_questions(producer))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await consumer.stop()


async def test_chat_round_trip(gateway: Gateway) -> None:
    session = uuid.uuid4().hex
    async with worker(gateway):
        url = gateway.ws("chat", "chat", f"?param:sessionId={session}")
        async with connect(url) as socket:
            await socket.send(json.dumps({"value": "hello"}))
            frames = [await receive_json(socket) for _ in range(2)]
    status = next(frame for frame in frames if "status" in frame)
    push = next(frame for frame in frames if "record" in frame)
    assert status == {"status": "OK", "reason": None}
    assert push["record"]["value"] == {"text": "answer to hello"}
    assert push["record"]["headers"][SESSION] == session


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/produce/my-tenant/my-app/user-input", 400),
        ("/v1/consume/my-tenant/my-app/bot-output?param:sessionId=s&option:position=bad", 400),
        ("/v1/chat/my-tenant/my-app/chat?nonsense=1", 400),
        ("/v1/produce/my-tenant/my-app/nowhere?param:sessionId=s", 404),
        ("/v1/consume/my-tenant/other-app/bot-output?param:sessionId=s", 404),
        ("/v1/chat/my-tenant/my-app/user-input?param:sessionId=s", 404),
        ("/v1/consume/my-tenant/my-app/secured", 401),
    ],
)
async def test_a_refused_handshake_is_an_http_status(
    gateway: Gateway, path: str, status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{gateway.url}{path}"):
            pass
    assert refused.value.response.status_code == status
    body = json.loads(refused.value.response.body or b"{}")
    assert body["status"] == status
    if status == 401:
        assert body["detail"].startswith("gateway secured needs credentials")


async def test_shutdown_closes_open_sockets_with_1001_and_refuses_new_ones(
    gateway: Gateway,
) -> None:
    apps = {(TENANT, APP_ID): gateway.application}
    quart_app = create_app(apps, gateway.kafka, GatewaySettings())
    async with served(quart_app) as (url, stop):
        query = "?param:sessionId=s"
        consume = f"{url}/v1/consume/{TENANT}/{APP_ID}/bot-output{query}"
        produce_url = f"{url}/v1/produce/{TENANT}/{APP_ID}/user-input{query}"
        async with connect(consume) as reader, connect(produce_url) as writer:
            runtime_of(quart_app).closing.set()
            async with asyncio.timeout(2):  # well before Hypercorn's graceful timeout
                await reader.wait_closed()
                await writer.wait_closed()
            assert (reader.close_code, writer.close_code) == (1001, 1001)
            with pytest.raises(InvalidStatus) as refused:
                async with connect(consume):
                    pass
            assert refused.value.response.status_code == 503
        stop.set()
