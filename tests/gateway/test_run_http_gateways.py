"""``sluice run`` serving a produce and a service HTTP gateway, called with the curl requests
of LangStream 0.4's gateway documentation.

``tests/gateway/apps/http-gateways`` holds the documented gateways (``user-input``, produce with
the ``sessionId`` parameter; ``user-input-await``, service in topics mode) and a python
processor. ``sluice run`` serves it as tenant ``my-tenant``, application ``my-app`` (the
documented URLs) on the test broker, and the documented curl requests are sent with httpx, as
curl sends them.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gateway.headers import SERVICE_REQUEST_ID_HEADER
from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings
from sluice.kafka.admin import delete_topics
from sluice.net import free_port
from tests.gateway.support import SESSION_HEADER, assert_problem

pytestmark = pytest.mark.kafka

HTTP_GATEWAYS_APP = Path(__file__).parent / "apps" / "http-gateways"
TOPICS = ("questions-topic", "inputs", "results")
CURL_HEADERS = {"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "curl/8.5.0"}

# The documented produce request, character for character: its `headers` key is not quoted,
# so it is not JSON (LangStream answered it with a Jackson parse error too).
DOCUMENTED_PRODUCE_BODY = b'{"value": {"question": "hello"}, "key": "k1", headers: {"h1": "v1"}}'
# The same request with the key quoted: what the documentation meant.
MEANT_PRODUCE_BODY = b'{"value": {"question": "hello"}, "key": "k1", "headers": {"h1": "v1"}}'
PRODUCE_PATH = "/api/gateways/produce/my-tenant/my-app/user-input?param:sessionId=12543yusi1"
SERVICE_BODY = b'{"value": "hello"}'
SERVICE_PATH = "/api/gateways/service/my-tenant/my-app/user-input-await"


@dataclass
class Running:
    process: asyncio.subprocess.Process
    gateway: str = ""
    bootstrap: str = ""
    lines: list[str] = field(default_factory=list)


@asynccontextmanager
async def sluice_run(
    app: Path, bootstrap: str, tmp_path: Path, extra: Sequence[str] = ()
) -> AsyncIterator[Running]:
    """``sluice run`` of ``app`` as my-tenant/my-app on the test broker with ``extra``
    arguments, until the block ends (then Ctrl-C, which must exit 0)."""
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n"
        "  streamingCluster:\n"
        "    type: kafka\n"
        "    configuration:\n"
        f"      admin: {{bootstrap.servers: '{bootstrap}'}}\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli.main",
        "run",
        str(app),
        "-i",
        str(instance),
        "--tenant",
        "my-tenant",
        "--app-id",
        "my-app",
        "--state-dir",
        str(tmp_path / "state"),
        "--gateway-port",
        str(free_port()),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    running = Running(process)
    assert process.stdout is not None
    drain: asyncio.Task[None] | None = None
    try:
        while not running.bootstrap:
            line = (await asyncio.wait_for(process.stdout.readline(), timeout=180)).decode()
            assert line, "sluice run ended early:\n" + "\n".join(running.lines)
            running.lines.append(line.rstrip())
            if line.startswith("gateway: "):
                running.gateway = line.strip().split(" ", 1)[1]
            if line.startswith("ready: kafka="):
                running.bootstrap = line.strip().split("=", 1)[1]
        drain = asyncio.create_task(_drain(process, running.lines))
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), timeout=90)
        if drain is not None:
            await drain
    assert code == 0, "\n".join(running.lines)


async def _drain(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert process.stdout is not None
    async for line in process.stdout:
        lines.append(line.decode().rstrip())


async def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    async with Consumer(kafka, [TopicSpec(topic)], start_at="end") as consumer:
        return {p: await consumer.position(t, p) for t, p in consumer.assignment()}


async def records_after(
    kafka: KafkaSettings, topic: str, start: dict[int, int]
) -> list[ConsumedRecord]:
    """The records of ``topic`` from ``start`` up to its end offsets now."""
    end = await end_offsets(kafka, topic)
    found: list[ConsumedRecord] = []
    async with Consumer(kafka, [TopicSpec(topic)], start_at="beginning") as consumer:
        remaining = {p: e for p, e in end.items() if e > start.get(p, 0)}
        for partition in remaining:
            consumer.seek(topic, partition, start.get(partition, 0))
        async with asyncio.timeout(30):
            while remaining:
                for item in await consumer.poll(timeout_ms=200):
                    assert isinstance(item, ConsumedRecord), item
                    if item.offset < remaining.get(item.partition, -1):
                        found.append(item)
                for partition in list(remaining):
                    if await consumer.position(topic, partition) >= remaining[partition]:
                        del remaining[partition]
    return found


@pytest.fixture
async def http_gateways(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Running]:
    try:
        async with sluice_run(HTTP_GATEWAYS_APP, kafka_bootstrap, tmp_path) as running:
            yield running
    finally:
        await delete_topics(KafkaSettings(kafka_bootstrap), list(TOPICS))


async def test_the_documented_curl_requests(http_gateways: Running, kafka_bootstrap: str) -> None:
    kafka = KafkaSettings(kafka_bootstrap)
    assert http_gateways.bootstrap == kafka_bootstrap
    before = await end_offsets(kafka, "questions-topic")
    async with httpx.AsyncClient(timeout=60) as client:
        # curl -X POST -d '{"value": {"question": "hello"}, "key": "k1", headers: {"h1": "v1"}}'
        #   -H 'Content-Type: application/json'
        #   "http://localhost:8091/api/gateways/produce/my-tenant/my-app/user-input?param:sessionId=12543yusi1"
        literal = await client.post(
            http_gateways.gateway + PRODUCE_PATH,
            content=DOCUMENTED_PRODUCE_BODY,
            headers=CURL_HEADERS,
        )
        column = DOCUMENTED_PRODUCE_BODY.index(b"headers")
        assert_problem(
            literal,
            400,
            "Error while parsing JSON payload: Expecting property name enclosed in double "
            f"quotes: line 1 column {column + 1} (char {column})",
        )
        assert await records_after(kafka, "questions-topic", before) == []

        meant = await client.post(
            http_gateways.gateway + PRODUCE_PATH, content=MEANT_PRODUCE_BODY, headers=CURL_HEADERS
        )
        assert meant.status_code == 200, meant.text
        assert meant.json() == {"status": "OK", "reason": None}

        # curl -X POST -d '{"value": "hello"}' -H 'Content-Type: application/json'
        #   "http://localhost:8091/api/gateways/service/my-tenant/my-app/user-input-await"
        service = await client.post(
            http_gateways.gateway + SERVICE_PATH, content=SERVICE_BODY, headers=CURL_HEADERS
        )
    (produced,) = await records_after(kafka, "questions-topic", before)
    assert produced.record.key == "k1"
    assert produced.record.value == {"question": "hello"}
    assert produced.record.headers == {"h1": "v1", SESSION_HEADER: "12543yusi1"}
    assert produced.event_source == "/my-tenant/my-app/gateways/user-input"

    assert service.status_code == 200, service.text
    assert service.headers["content-type"] == "application/json"
    reply = service.json()
    assert set(reply) == {"record", "offset"}
    assert reply["record"]["key"] is None
    assert reply["record"]["value"] == "hello!!"
    request_id = reply["record"]["headers"][SERVICE_REQUEST_ID_HEADER]
    assert str(uuid.UUID(request_id)) == request_id
    # The documented service call has no sessionId (declared): no session header.
    assert SESSION_HEADER not in reply["record"]["headers"]

    # sluice run printed ready-to-paste requests for both gateways.
    output = "\n".join(http_gateways.lines)
    assert re.search(r"user-input \(produce\): curl -X POST", output), output
    assert re.search(r"user-input-await \(service\): curl -X POST", output), output
