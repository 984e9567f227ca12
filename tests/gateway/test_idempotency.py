"""Idempotency keys (F17): a produce request retried with the same key is written once.

Against a gateway under Hypercorn on loopback and the real broker: the ``Idempotency-Key``
header and a structured CloudEvent's source and id, sent again in sequence and concurrently.
The bounds (oldest keys forgotten, time to live) and a late acknowledgement are checked on
:class:`~gateway.idempotency.IdempotencyKeys` itself, with real futures and a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from gateway.app import create_app
from gateway.errors import Unavailable
from gateway.idempotency import IdempotencyKeys, KeyReused
from gateway.runtime import runtime_of
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, SendResult
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port

TENANT = "t"
APP_ID = "idem"


@dataclass
class Gateway:
    url: str
    topic: str
    kafka: KafkaSettings
    server: Quart

    @property
    def produce_url(self) -> str:
        return f"{self.url}/api/gateways/produce/{TENANT}/{APP_ID}/in"

    async def records(self, *, settle: float = 1.5) -> list[ConsumedRecord]:
        """Every record of the topic, read from the beginning for ``settle`` seconds."""
        got: list[ConsumedRecord] = []
        async with Consumer(self.kafka, [TopicSpec(self.topic)], start_at="beginning") as c:
            end = asyncio.get_running_loop().time() + settle
            while asyncio.get_running_loop().time() < end:
                got.extend(i for i in await c.poll(timeout_ms=200) if isinstance(i, ConsumedRecord))
        return got


@pytest.fixture
async def gateway(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    kafka = KafkaSettings(kafka_bootstrap)
    topic = f"idem-{uuid.uuid4().hex[:10]}"
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "pipeline.yaml").write_text(
        f"topics:\n  - name: {topic}\n    creation-mode: create-if-not-exists\n"
    )
    (app_dir / "gateways.yaml").write_text(
        f"gateways:\n  - id: in\n    type: produce\n    topic: {topic}\n"
    )
    application = load_application(app_dir)
    await ensure_topics(kafka, list(application.topics.values()))
    server = create_app({(TENANT, APP_ID): application}, kafka, GatewaySettings())
    config = Config()
    port = free_port()
    config.bind = [f"{LOOPBACK}:{port}"]
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(server, config, shutdown_trigger=stop.wait))
    url = f"http://{LOOPBACK}:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
    try:
        yield Gateway(url, topic, kafka, server)
    finally:
        stop.set()
        await task
        await delete_topics(kafka, [topic])


def _event(event_id: str, source: str = "/client", data: object = "hello") -> bytes:
    return json.dumps(
        {"specversion": "1.0", "id": event_id, "source": source, "type": "t", "data": data}
    ).encode()


@pytest.mark.kafka
async def test_a_retried_key_is_written_once(gateway: Gateway) -> None:
    async with httpx.AsyncClient(timeout=30) as client:

        async def post(key: str, value: str) -> httpx.Response:
            return await client.post(
                gateway.produce_url,
                json={"value": value},
                headers={"Idempotency-Key": key},
            )

        # In sequence: the retry answers OK and writes nothing.
        first, retry = await post("k-seq", "seq"), await post("k-seq", "seq")
        # Concurrently: the retries wait for the first write's acknowledgement.
        together = await asyncio.gather(*(post("k-conc", "conc") for _ in range(10)))
        # Other keys: written each.
        others = [await post("k-a", "other"), await post("k-b", "other")]
        # No key: written each time, as before.
        plain = [await client.post(gateway.produce_url, json={"value": "plain"}) for _ in "ab"]
        # The same key for another body: a mistake, refused.
        reused = await post("k-seq", "something else")

    for response in [first, retry, *together, *others, *plain]:
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "OK", "reason": None}
    assert reused.status_code == 422, reused.text
    assert "Idempotency-Key" in reused.json()["detail"]
    values = sorted(r.record.value for r in await gateway.records())
    assert values == ["conc", "other", "other", "plain", "plain", "seq"]


@pytest.mark.kafka
async def test_a_structured_cloudevent_is_identified_by_its_source_and_id(
    gateway: Gateway,
) -> None:
    ce = {"Content-Type": "application/cloudevents+json"}
    async with httpx.AsyncClient(timeout=30) as client:
        answers = [
            await client.post(gateway.produce_url, content=_event("e1"), headers=ce),
            await client.post(gateway.produce_url, content=_event("e1"), headers=ce),
            *await asyncio.gather(
                *(client.post(gateway.produce_url, content=_event("e2"), headers=ce) for _ in "abc")
            ),
            # Another source, the same id: another event.
            await client.post(gateway.produce_url, content=_event("e1", "/other"), headers=ce),
        ]
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    records = await gateway.records()
    assert sorted(r.event_id or "" for r in records) == ["e1", "e1", "e2"]


@pytest.mark.kafka
async def test_the_oldest_keys_are_forgotten(gateway: Gateway) -> None:
    runtime_of(gateway.server).idempotency = IdempotencyKeys(max_keys=3)
    async with httpx.AsyncClient(timeout=30) as client:
        for key in ["k1", "k2", "k3", "k4", "k1", "k4"]:
            response = await client.post(
                gateway.produce_url, json={"value": key}, headers={"Idempotency-Key": key}
            )
            assert response.status_code == 200, response.text
    values = sorted(r.record.value for r in await gateway.records())
    # k1 was forgotten when k4 came (3 keys at most): its retry is written again; k4's is not.
    assert values == ["k1", "k1", "k2", "k3", "k4"]


@pytest.mark.kafka
async def test_a_bad_key_is_a_400(gateway: Gateway) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            gateway.produce_url, json={"value": 1}, headers={"Idempotency-Key": "x" * 300}
        )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert await gateway.records(settle=0.5) == []


# -- the registry on its own -----------------------------------------------------------------


class Writes:
    """``write``/``wait`` callables for IdempotencyKeys.once, counting the writes."""

    def __init__(self, deadline: float = 1.0) -> None:
        self.count = 0
        self.acks: list[asyncio.Future[list[SendResult]]] = []
        self.deadline = deadline
        self.acknowledge = False
        """Whether writes are acknowledged at once."""

    async def write(self) -> asyncio.Future[list[SendResult]]:
        self.count += 1
        acks: asyncio.Future[list[SendResult]] = asyncio.get_running_loop().create_future()
        self.acks.append(acks)
        if self.acknowledge:
            acks.set_result([])
        return acks

    async def wait(self, acks: asyncio.Future[list[SendResult]]) -> list[SendResult]:
        try:
            async with asyncio.timeout(self.deadline):
                return await asyncio.shield(acks)
        except TimeoutError as error:
            raise Unavailable("not acknowledged in time") from error


async def test_an_acknowledgement_after_the_deadline_still_counts() -> None:
    keys: IdempotencyKeys[list[SendResult]] = IdempotencyKeys()
    writes = Writes(deadline=0.05)
    with pytest.raises(Unavailable):  # the client sees 503 ...
        await keys.once("k", b"d", writes.write, writes.wait)
    writes.acks[0].set_result([])  # ... and Kafka acknowledges the record afterwards
    assert await keys.once("k", b"d", writes.write, writes.wait) is False
    assert writes.count == 1


async def test_a_failed_write_is_written_again_and_its_waiters_fail_with_it() -> None:
    keys: IdempotencyKeys[list[SendResult]] = IdempotencyKeys()
    writes = Writes()
    first = asyncio.create_task(keys.once("k", b"d", writes.write, writes.wait))
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(keys.once("k", b"d", writes.write, writes.wait))
    await asyncio.sleep(0.01)
    writes.acks[0].set_exception(ConnectionError("broker gone"))
    for task in (first, waiting):
        with pytest.raises(ConnectionError):
            await task
    assert "k" not in keys
    writes.acknowledge = True
    assert await keys.once("k", b"d", writes.write, writes.wait) is True
    assert writes.count == 2


async def test_keys_expire_after_their_ttl_and_another_body_is_refused() -> None:
    now = [0.0]
    keys: IdempotencyKeys[list[SendResult]] = IdempotencyKeys(ttl=10, clock=lambda: now[0])
    writes = Writes()
    writes.acknowledge = True
    assert await keys.once("k", b"d", writes.write, writes.wait) is True
    with pytest.raises(KeyReused):
        await keys.once("k", b"other", writes.write, writes.wait)
    now[0] = 9.0
    assert await keys.once("k", b"d", writes.write, writes.wait) is False
    now[0] = 10.5
    assert "k" not in keys
    with pytest.raises(ValueError, match="max_keys"):
        IdempotencyKeys(max_keys=0)
