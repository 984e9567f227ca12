"""Acceptance: service gateways in topics mode under concurrency, through a real gateway, real
HTTP clients and the broker.

A responder in the test plays the pipeline: it reads the input topic, and writes replies that
carry the request's headers (``langstream-service-request-id`` among them) to the output topic,
in the order the test decides (shuffled, late, never).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.headers import SERVICE_REQUEST_ID_HEADER
from gateway.replies import ReplyRouter
from gateway.runtime import GatewayRuntime, runtime_of
from gateway.settings import GatewaySettings
from sluice.application.model import TopicSpec
from sluice.events import RECORD_TYPE, ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.record import Record
from tests.gateway.support import (
    APP_ID,
    SESSION_HEADER,
    Served,
    assert_problem,
    serve_gateway,
    unique,
    write_app,
)

pytestmark = pytest.mark.kafka

REQUESTS = 200
PARTITIONS = 3
GATEWAY = "user-input-await"


class Responder:
    """Reads the service's input topic from the end; the test decides which requests get a
    reply, with what value, on which partition, in which order."""

    def __init__(self, kafka: KafkaSettings, inputs: str, results: str) -> None:
        self._consumer = Consumer(kafka, [TopicSpec(inputs)], start_at="end")
        self._producer = Producer(kafka)
        self._results = results
        self._requests: asyncio.Queue[Record] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Responder:
        await self._consumer.start()
        for topic, partition in self._consumer.assignment():
            await self._consumer.position(topic, partition)  # resolve the lazy seek to the end
        await self._producer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._consumer.stop()
        await self._producer.stop()

    async def _read(self) -> None:
        while True:
            for item in await self._consumer.poll(timeout_ms=200):
                assert isinstance(item, ConsumedRecord), item
                self._requests.put_nowait(item.record)

    async def take(self, count: int) -> list[Record]:
        """The next ``count`` requests the gateway wrote to the input topic."""
        async with asyncio.timeout(60):
            return [await self._requests.get() for _ in range(count)]

    @property
    def waiting(self) -> int:
        return self._requests.qsize()

    async def answer(
        self,
        requests: Sequence[Record],
        value: Callable[[Record], object] = lambda r: {"answer": r.value},
        *,
        partition: Callable[[int], int | None] = lambda i: None,
        headers: Callable[[Record], dict[str, str]] = lambda r: dict(r.headers),
    ) -> None:
        """Reply to ``requests`` in this order, each with the request's headers."""
        acks = []
        for index, request in enumerate(requests):
            reply = Record(value(request), headers=headers(request))
            acks.append(
                await self._producer.enqueue(
                    self._results, reply, source="/test/responder", partition=partition(index)
                )
            )
        await asyncio.gather(*acks)


@dataclass(frozen=True)
class Env:
    served: Served
    inputs: str
    results: str
    kafka: KafkaSettings

    @property
    def url(self) -> str:
        return self.served.http("service", GATEWAY)

    @property
    def runtime(self) -> GatewayRuntime:
        return runtime_of(self.served.app)

    @property
    def router(self) -> ReplyRouter:
        return self.runtime.routers[self.results]

    def responder(self) -> Responder:
        return Responder(self.kafka, self.inputs, self.results)


def service_app(directory: Path, inputs: str, results: str) -> Path:
    return write_app(
        directory,
        {inputs: PARTITIONS, results: PARTITIONS},
        f"""
gateways:
  - id: {GATEWAY}
    type: service
    parameters: [sessionId]
    service-options:
      input-topic: {inputs}
      output-topic: {results}
      headers:
        - key: {SESSION_HEADER}
          value-from-parameters: sessionId
""",
    )


@contextlib.asynccontextmanager
async def service_gateway(
    kafka_bootstrap: str, directory: Path, settings: GatewaySettings | None = None
) -> AsyncIterator[Env]:
    kafka = KafkaSettings(kafka_bootstrap)
    inputs, results = unique("service-inputs"), unique("service-results")
    app_dir = service_app(directory / APP_ID, inputs, results)
    async with serve_gateway(kafka, app_dir, settings) as served:
        yield Env(served, inputs, results, kafka)


@pytest.fixture(scope="module")
async def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    async with service_gateway(kafka_bootstrap, tmp_path_factory.mktemp("service")) as shared:
        yield shared


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=REQUESTS + 50, max_keepalive_connections=REQUESTS + 50)
    async with httpx.AsyncClient(timeout=60, limits=limits) as shared:
        yield shared


@pytest.fixture
def gateway_logs(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The warnings and errors the gateway logged during the test."""
    caplog.set_level(logging.WARNING)

    def records() -> list[str]:
        return [
            f"{r.name}: {r.getMessage()}"
            for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.split(".")[0] in ("gateway", "hypercorn")
        ]

    return records


async def call(
    env: Env,
    client: httpx.AsyncClient,
    value: str,
    *,
    session: str | None = None,
    wait: str | None = None,
) -> httpx.Response:
    params = {}
    if session is not None:
        params["param:sessionId"] = session
    if wait is not None:
        params["option:timeout"] = wait
    return await client.post(env.url, params=params, json={"value": value})


async def test_200_concurrent_requests_each_get_their_own_reply(
    env: Env, client: httpx.AsyncClient, gateway_logs: Callable[[], list[str]]
) -> None:
    sessions = [f"s{i}" for i in range(7)]
    shuffle = random.Random(20231122)

    async def respond(responder: Responder) -> list[Record]:
        requests = await responder.take(REQUESTS)
        order = list(requests)
        shuffle.shuffle(order)
        # Noise first: replies nobody waits for, and replies with the right request id but
        # another session (the service-options header must match too).
        strays = [
            Record("stray", headers={SERVICE_REQUEST_ID_HEADER: str(uuid.uuid4())})
            for _ in range(20)
        ]
        await responder.answer(strays, lambda r: r.value)
        await responder.answer(
            order[:50],
            lambda r: "wrong session",
            headers=lambda r: {**r.headers, SESSION_HEADER: "someone-else"},
        )
        await responder.answer(order, partition=lambda i: i % PARTITIONS)
        return requests

    async with env.responder() as responder:
        responses, requests = await asyncio.gather(
            asyncio.gather(
                *(
                    call(env, client, f"q{i}", session=sessions[i % len(sessions)])
                    for i in range(REQUESTS)
                )
            ),
            respond(responder),
        )

    ids = set()
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        record = response.json()["record"]
        assert record["value"] == {"answer": f"q{i}"}
        assert record["headers"][SESSION_HEADER] == sessions[i % len(sessions)]
        request_id = record["headers"][SERVICE_REQUEST_ID_HEADER]
        assert str(uuid.UUID(request_id)) == request_id
        ids.add(request_id)
    assert len(ids) == REQUESTS
    # What the gateway wrote: one record per request, with its own id and the session header.
    assert {r.headers[SERVICE_REQUEST_ID_HEADER] for r in requests} == ids
    assert sorted(r.value for r in requests) == sorted(f"q{i}" for i in range(REQUESTS))
    # One shared reply consumer for the output topic, nothing left waiting.
    assert list(env.runtime.routers) == [env.results]
    assert env.router.pending_count == 0
    assert env.runtime.pending_count == 0
    assert gateway_logs() == []


async def test_unanswered_requests_time_out_with_504_and_late_replies_are_dropped(
    env: Env, client: httpx.AsyncClient, gateway_logs: Callable[[], list[str]]
) -> None:
    ignored, answered = 10, 10
    async with env.responder() as responder:

        async def respond() -> list[Record]:
            requests = await responder.take(ignored + answered)
            await responder.answer([r for r in requests if r.value.startswith("answer-me")])
            return [r for r in requests if r.value.startswith("ignore-me")]

        responses, unanswered = await asyncio.gather(
            asyncio.gather(
                *(call(env, client, f"ignore-me-{i}", wait="1") for i in range(ignored)),
                *(call(env, client, f"answer-me-{i}", wait="30") for i in range(answered)),
            ),
            respond(),
        )
        for response in responses[:ignored]:
            assert_problem(response, 504, f"no reply from service gateway {GATEWAY} within 1 s")
        for i, response in enumerate(responses[ignored:]):
            assert response.status_code == 200, response.text
            assert response.json()["record"]["value"] == {"answer": f"answer-me-{i}"}
        assert len(unanswered) == ignored
        assert env.router.pending_count == 0
        assert env.runtime.pending_count == 0

        # The pipeline answers after the clients gave up: the replies are dropped, and the
        # gateway goes on serving. Everything on partition 0, so the fresh request's reply is
        # read after every late one.
        late_before = env.router.late_replies
        await responder.answer(unanswered, lambda r: "too late", partition=lambda i: 0)

        async def respond_fresh() -> None:
            (fresh,) = await responder.take(1)
            await responder.answer([fresh], partition=lambda i: 0)

        response, _ = await asyncio.gather(
            call(env, client, "fresh", session="s1"), respond_fresh()
        )
    assert response.status_code == 200, response.text
    assert response.json()["record"]["value"] == {"answer": "fresh"}
    assert env.router.late_replies - late_before == ignored
    assert env.router.pending_count == 0
    assert responder.waiting == 0
    assert gateway_logs() == []


async def test_a_full_pending_table_answers_503_then_serves_again(
    kafka_bootstrap: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    settings = GatewaySettings(max_pending=3, retry_after=2)
    async with (
        service_gateway(kafka_bootstrap, tmp_path, settings) as env,
        env.responder() as responder,
    ):
        waiting = [asyncio.create_task(call(env, client, f"w{i}", wait="60")) for i in range(3)]
        held = await responder.take(3)  # all three were produced, so all three are pending
        assert env.runtime.pending_count == 3
        refused = await call(env, client, "one too many", wait="60")
        assert_problem(refused, 503, "3 service requests already wait for a reply")
        assert refused.headers["retry-after"] == "2"
        await responder.answer(held)
        for i, task in enumerate(waiting):
            response = await task
            assert response.status_code == 200, response.text
            assert response.json()["record"]["value"] == {"answer": f"w{i}"}
        assert env.runtime.pending_count == 0

        async def respond() -> None:
            await responder.answer(await responder.take(1))

        again, _ = await asyncio.gather(call(env, client, "room again"), respond())
        assert again.status_code == 200, again.text
        assert responder.waiting == 0


async def test_a_client_that_gives_up_leaves_nothing_pending(env: Env) -> None:
    # The clients hang up long before the service timeout (300 s): their entries go away with
    # them, not when the timeout fires.
    async with env.responder() as responder:
        async with httpx.AsyncClient(timeout=60) as impatient:
            calls = [
                asyncio.create_task(call(env, impatient, f"gone-{i}", wait="300")) for i in range(5)
            ]
            await responder.take(5)  # all five are produced, so all five are pending
            assert env.router.pending_count == 5
            for task in calls:
                task.cancel()
            for task in calls:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for _ in range(600):
            if env.router.pending_count == 0:
                break
            await asyncio.sleep(0.05)
        assert env.router.pending_count == 0
        assert env.runtime.pending_count == 0


async def test_an_in_flight_request_finishes_during_a_graceful_shutdown(
    kafka_bootstrap: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    # Shutdown: readiness goes false, the in-flight request still gets its reply (the grace
    # period is longer than its wait), and the gateway stops once it is answered.
    settings = GatewaySettings(shutdown_grace=60)
    gateway = service_gateway(kafka_bootstrap, tmp_path, settings)
    env = await gateway.__aenter__()
    stopping: asyncio.Task[bool | None] | None = None
    try:
        async with env.responder() as responder:
            in_flight = asyncio.create_task(call(env, client, "in flight", wait="30"))
            (held,) = await responder.take(1)
            stopping = asyncio.create_task(gateway.__aexit__(None, None, None))
            for _ in range(600):
                if not env.runtime.ready:
                    break
                await asyncio.sleep(0.05)
            assert not env.runtime.ready
            assert not stopping.done()
            await responder.answer([held])
            response = await in_flight
            assert response.status_code == 200, response.text
            assert response.json()["record"]["value"] == {"answer": "in flight"}
    finally:
        if stopping is None:
            await gateway.__aexit__(None, None, None)
        else:
            await stopping


async def test_a_client_may_ask_for_the_reply_as_a_structured_cloudevent(
    env: Env, client: httpx.AsyncClient
) -> None:
    # Half of 40 concurrent requests ask for application/cloudevents+json: each gets its own
    # reply as a structured CloudEvent (the reply's attributes, the value as data).
    count = 40
    structured = {"Accept": "application/cloudevents+json"}

    async def ask(i: int) -> httpx.Response:
        return await client.post(
            env.url,
            json={"value": f"ce{i}"},
            headers=structured if i % 2 == 0 else {},
        )

    async def respond(responder: Responder) -> None:
        requests = await responder.take(count)
        random.Random(7).shuffle(requests)
        await responder.answer(requests)

    async with env.responder() as responder:
        responses, _ = await asyncio.gather(
            asyncio.gather(*(ask(i) for i in range(count))), respond(responder)
        )
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        if i % 2:
            assert response.headers["content-type"] == "application/json"
            assert response.json()["record"]["value"] == {"answer": f"ce{i}"}
            continue
        assert response.headers["content-type"] == "application/cloudevents+json"
        event = response.json()
        assert event["specversion"] == "1.0"
        assert event["source"] == "/test/responder"
        assert event["type"] == RECORD_TYPE
        assert event["id"]
        assert event["data"] == {"answer": f"ce{i}"}
    assert env.router.pending_count == 0
