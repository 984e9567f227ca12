"""The HTTP gateway under Hypercorn on loopback, against the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from gateway.app import create_app
from gateway.headers import SERVICE_REQUEST_ID_HEADER
from gateway.messages import decode_offset
from gateway.runtime import runtime_of
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.application.model import Application, TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port
from sluice.record import Record

pytestmark = pytest.mark.kafka

TENANT = "my-tenant"
APP_ID = "my-app"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Topics:
    questions: str
    inputs: str
    results: str


@dataclass
class Gateway:
    """A running gateway: its base URL, the app, and the topics of its application."""

    url: str
    topics: Topics
    app: Application
    kafka: KafkaSettings
    server: Quart

    def produce_url(self, gateway: str = "user-input") -> str:
        return f"{self.url}/api/gateways/produce/{TENANT}/{APP_ID}/{gateway}"

    def service_url(self, gateway: str = "user-input-await") -> str:
        return f"{self.url}/api/gateways/service/{TENANT}/{APP_ID}/{gateway}"


def write_app(directory: Path, topics: Topics) -> Path:
    directory.mkdir()
    (directory / "pipeline.yaml").write_text(
        "topics:\n"
        + "".join(
            f"  - name: {name}\n    creation-mode: create-if-not-exists\n"
            for name in (topics.questions, topics.inputs, topics.results)
        )
    )
    (directory / "gateways.yaml").write_text(
        f"""
gateways:
  - id: user-input
    type: produce
    topic: {topics.questions}
    parameters:
      - sessionId
    produce-options:
      headers:
        - key: langstream-client-session-id
          value-from-parameters: sessionId
  - id: user-input-await
    type: service
    parameters:
      - sessionId
    service-options:
      input-topic: {topics.inputs}
      output-topic: {topics.results}
"""
    )
    return directory


@pytest.fixture(scope="module")
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(kafka_bootstrap)


@pytest.fixture(scope="module")
async def gateway(
    kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    suffix = uuid.uuid4().hex[:10]
    topics = Topics(f"questions-{suffix}", f"inputs-{suffix}", f"results-{suffix}")
    app_dir = write_app(tmp_path_factory.mktemp("gateway") / "app", topics)
    application = load_application(app_dir)
    await ensure_topics(kafka, list(application.topics.values()))
    settings = GatewaySettings(max_body_bytes=64 * 1024)
    quart_app = create_app({(TENANT, APP_ID): application}, kafka, settings)
    config = Config()
    port = free_port()
    config.bind = [f"{LOOPBACK}:{port}"]
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(quart_app, config, shutdown_trigger=stop.wait))
    url = f"http://{LOOPBACK}:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the gateway did not start")
    try:
        yield Gateway(url, topics, application, kafka, quart_app)
    finally:
        stop.set()
        await task
        await delete_topics(kafka, [topics.questions, topics.inputs, topics.results])


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as shared:
        yield shared


async def read_until(
    kafka: KafkaSettings, topic: str, wanted: Callable[[ConsumedRecord], bool]
) -> ConsumedRecord:
    """The first record of ``topic`` that is ``wanted``."""
    consumer = Consumer(kafka, [TopicSpec(topic)], start_at="beginning")
    await consumer.start()
    try:
        async with asyncio.timeout(20):
            while True:
                for item in await consumer.poll(timeout_ms=200):
                    assert isinstance(item, ConsumedRecord)
                    if wanted(item):
                        return item
    finally:
        await consumer.stop()


def with_session(session: str) -> Callable[[ConsumedRecord], bool]:
    return lambda item: item.record.headers.get("langstream-client-session-id") == session


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    return body


async def test_health_and_readiness(gateway: Gateway, client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{gateway.url}/healthz")).status_code == 200
    assert (await client.get(f"{gateway.url}/readyz")).status_code == 200


async def test_the_documented_curl_produces_the_record_with_the_session_header(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        gateway.produce_url(),
        params={"param:sessionId": "12543yusi1"},
        content=b'{"value": {"question": "hello"}, "key": "k1", "headers": {"h1": "v1"}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "OK", "reason": None}
    consumed = await read_until(gateway.kafka, gateway.topics.questions, with_session("12543yusi1"))
    record = consumed.record
    assert record.value == {"question": "hello"}
    assert record.key == "k1"
    assert record.headers["h1"] == "v1"
    assert record.headers["langstream-client-session-id"] == "12543yusi1"
    assert consumed.event_source == f"/{TENANT}/{APP_ID}/gateways/user-input"


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/plain", b"plain hello", "plain hello"),
        ("application/json; charset=utf-8", b'{"value": "json hello"}', "json hello"),
    ],
)
async def test_bodies_by_media_type(
    gateway: Gateway,
    client: httpx.AsyncClient,
    content_type: str,
    body: bytes,
    expected: str,
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        gateway.produce_url(),
        params={"param:sessionId": marker},
        content=body,
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200, response.text
    consumed = await read_until(gateway.kafka, gateway.topics.questions, with_session(marker))
    assert consumed.record.value == expected


async def test_missing_required_parameter(gateway: Gateway, client: httpx.AsyncClient) -> None:
    response = await client.post(gateway.produce_url(), content=b"hi")
    body = assert_problem(response, 400)
    assert "missing required parameter sessionId" in str(body["detail"])


async def test_unknown_query_key(gateway: Gateway, client: httpx.AsyncClient) -> None:
    response = await client.post(
        gateway.produce_url(), params={"param:sessionId": "s", "foo": "bar"}, content=b"hi"
    )
    body = assert_problem(response, 400)
    assert str(body["detail"]).startswith("invalid query parameter foo.")


async def test_unsupported_media_type(gateway: Gateway, client: httpx.AsyncClient) -> None:
    response = await client.post(
        gateway.produce_url(),
        params={"param:sessionId": "s"},
        content=b"<x/>",
        headers={"Content-Type": "application/xml"},
    )
    assert_problem(response, 415)


async def test_body_above_the_limit(gateway: Gateway, client: httpx.AsyncClient) -> None:
    response = await client.post(
        gateway.produce_url(), params={"param:sessionId": "s"}, content=b"x" * (65 * 1024)
    )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    "path",
    [
        "/api/gateways/produce/my-tenant/my-app/nope",
        "/api/gateways/produce/other-tenant/my-app/user-input",
        "/api/gateways/produce/my-tenant/my-app/user-input-await",
        "/no/such/route",
    ],
)
async def test_unknown_gateway(gateway: Gateway, client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.post(f"{gateway.url}{path}", content=b"hi"), 404)


@contextlib.asynccontextmanager
async def worker(gateway: Gateway, seen: list[Record]) -> AsyncIterator[None]:
    """A tiny service: answers each request on the output topic, carrying its request id."""
    consumer = Consumer(gateway.kafka, [TopicSpec(gateway.topics.inputs)], start_at="end")
    await consumer.start()
    for topic, partition in consumer.assignment():
        await consumer.position(topic, partition)

    async def serve_requests(producer: Producer) -> None:
        while True:
            for item in await consumer.poll(timeout_ms=200):
                assert isinstance(item, ConsumedRecord)
                seen.append(item.record)
                answer = Record(
                    f"answer to {item.record.value}",
                    headers={
                        SERVICE_REQUEST_ID_HEADER: item.record.headers[SERVICE_REQUEST_ID_HEADER]
                    },
                )
                await producer.send(gateway.topics.results, answer, source="/test/worker")

    async with Producer(gateway.kafka) as producer:
        task = asyncio.create_task(serve_requests(producer))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await consumer.stop()


async def test_service_round_trip(gateway: Gateway, client: httpx.AsyncClient) -> None:
    seen: list[Record] = []
    async with worker(gateway, seen):
        response = await client.post(
            gateway.service_url(),
            content=json.dumps(
                {"value": "ping", "headers": {SERVICE_REQUEST_ID_HEADER: "client-id"}}
            ),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["record"]["value"] == "answer to ping"
    request_id = body["record"]["headers"][SERVICE_REQUEST_ID_HEADER]
    # The client's own request id was overwritten by a fresh one.
    assert request_id != "client-id"
    assert str(uuid.UUID(request_id)) == request_id
    assert [r.headers[SERVICE_REQUEST_ID_HEADER] for r in seen] == [request_id]
    assert decode_offset(body["offset"])


async def test_service_timeout(gateway: Gateway, client: httpx.AsyncClient) -> None:
    response = await client.post(
        gateway.service_url(), params={"option:timeout": "1"}, content=b"nobody answers"
    )
    assert_problem(response, 504)
    router = runtime_of(gateway.server).routers[gateway.topics.results]
    assert router.pending_count == 0


async def test_service_in_topics_mode_takes_only_post(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    response = await client.get(gateway.service_url())
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


async def test_a_batch_is_all_or_nothing(gateway: Gateway, client: httpx.AsyncClient) -> None:
    marker = uuid.uuid4().hex
    bad = await client.post(
        gateway.produce_url(),
        params={"param:sessionId": marker},
        json=[{"value": "first"}, {"key": None, "value": None}],
    )
    body = assert_problem(bad, 400)
    assert body["detail"] == "message [1]: Either key or value must be set."
    good = await client.post(
        gateway.produce_url(),
        params={"param:sessionId": marker},
        json=[{"value": "one"}, {"value": "two"}],
    )
    assert good.status_code == 200, good.text
    # "first" was never produced: the first record of this session is "one".
    consumed = await read_until(gateway.kafka, gateway.topics.questions, with_session(marker))
    assert consumed.record.value == "one"


async def test_a_configured_header_cannot_be_set_by_the_message(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        gateway.produce_url(),
        params={"param:sessionId": "s"},
        json={"value": "v", "headers": {"langstream-client-session-id": "forged"}},
    )
    body = assert_problem(response, 400)
    assert body["detail"] == (
        "Header langstream-client-session-id is configured as parameter-level header."
    )


async def test_routing_errors_are_problems_too(gateway: Gateway, client: httpx.AsyncClient) -> None:
    response = await client.get(gateway.produce_url())
    assert_problem(response, 405)
    assert response.headers["allow"].split(", ").count("POST") == 1
