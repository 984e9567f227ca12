"""The shared reply consumer of service gateways (topics mode), against the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.headers import SERVICE_REQUEST_ID_HEADER
from gateway.replies import (
    ReplyRouter,
    ReplyRouterClosed,
    TooManyPending,
)
from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.record import Record
from tests.gateway.conftest import MakeTopic

pytestmark = pytest.mark.kafka

SOURCE = "/default/test-app/gateways/service"


@pytest.fixture
async def output(make_topic: MakeTopic) -> TopicSpec:
    return await make_topic(partitions=3)


@pytest.fixture
async def router(settings: KafkaSettings, output: TopicSpec) -> AsyncIterator[ReplyRouter]:
    async with ReplyRouter(settings, output, max_pending=1000) as shared:
        yield shared


async def reply(producer: Producer, output: TopicSpec, request_id: str, value: object) -> None:
    # One partition, so that replies are read in the order they were written.
    await producer.send(
        output.name,
        Record(value, headers={SERVICE_REQUEST_ID_HEADER: request_id}),
        source=SOURCE,
        partition=0,
    )


@contextlib.asynccontextmanager
async def worker(
    settings: KafkaSettings, producer: Producer, requests: TopicSpec, output: TopicSpec
) -> AsyncIterator[None]:
    """A service agent: answers each request on the output topic, carrying the request id, and
    writes a stray record with an unknown id for each, which the router must ignore."""
    consumer = Consumer(settings, [requests], start_at="beginning")
    await consumer.start()

    async def serve() -> None:
        while True:
            acks = []
            for item in await consumer.poll(timeout_ms=200):
                assert isinstance(item, ConsumedRecord)
                request_id = item.record.headers[SERVICE_REQUEST_ID_HEADER]
                answer = Record(f"reply:{item.record.value}", headers=item.record.headers)
                stray = Record("stray", headers={SERVICE_REQUEST_ID_HEADER: str(uuid.uuid4())})
                for record in (stray, answer):
                    acks.append(await producer.enqueue(output.name, record, source=SOURCE))
                assert request_id
            await asyncio.gather(*acks)

    task = asyncio.create_task(serve())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


async def test_concurrent_requests_each_get_their_own_reply(
    settings: KafkaSettings,
    router: ReplyRouter,
    producer: Producer,
    make_topic: MakeTopic,
    output: TopicSpec,
) -> None:
    requests = await make_topic(partitions=3)

    async def call(n: int) -> ConsumedRecord:
        request_id = str(uuid.uuid4())
        pending = await router.expect(request_id)
        await producer.send(
            requests.name, Record(n, headers={SERVICE_REQUEST_ID_HEADER: request_id}), source=SOURCE
        )
        answer = await pending.wait(30)
        assert answer.record.headers[SERVICE_REQUEST_ID_HEADER] == request_id
        return answer

    async with worker(settings, producer, requests, output):
        answers = await asyncio.gather(*(call(n) for n in range(200)))
    assert [a.record.value for a in answers] == [f"reply:{n}" for n in range(200)]
    assert router.pending_count == 0


async def test_a_timeout_removes_the_pending_entry_and_a_late_reply_is_ignored(
    router: ReplyRouter, producer: Producer, output: TopicSpec
) -> None:
    pending = await router.expect("late")
    assert router.pending_count == 1
    with pytest.raises(TimeoutError):
        await pending.wait(0.2)
    assert router.pending_count == 0

    await reply(producer, output, "late", "too late")
    marker = await router.expect("marker")
    await reply(producer, output, "marker", "here")
    # The marker is behind the late reply on the same partition: the late one was read first.
    assert (await marker.wait(10)).record.value == "here"
    assert router.late_replies == 1
    assert router.pending_count == 0
    with pytest.raises(RuntimeError, match="already stopped waiting"):
        await pending.wait(1)


async def test_only_the_first_reply_that_matches_resolves_the_request(
    router: ReplyRouter, producer: Producer, output: TopicSpec
) -> None:
    pending = await router.expect(
        "r1", lambda consumed: consumed.record.headers.get("session") == "s1"
    )
    await producer.send(
        output.name,
        Record("other", headers={SERVICE_REQUEST_ID_HEADER: "r1", "session": "s2"}),
        source=SOURCE,
    )
    await producer.send(
        output.name,
        Record("mine", headers={SERVICE_REQUEST_ID_HEADER: "r1", "session": "s1"}),
        source=SOURCE,
    )
    assert (await pending.wait(10)).record.value == "mine"


async def test_max_pending_is_enforced(settings: KafkaSettings, output: TopicSpec) -> None:
    async with ReplyRouter(settings, output, max_pending=3) as router:
        waiting = [await router.expect(f"r{n}") for n in range(3)]
        with pytest.raises(TooManyPending) as raised:
            await router.expect("r3")
        assert raised.value.max_pending == 3
        assert router.pending_count == 3
        waiting[0].cancel()
        await router.expect("r3")
        with pytest.raises(ValueError, match="already waiting"):
            await router.expect("r1")
        assert router.pending_count == 3


async def test_close_fails_the_waiting_requests(settings: KafkaSettings, output: TopicSpec) -> None:
    router = ReplyRouter(settings, output)
    await router.start()
    pending = await router.expect("r")
    waiter = asyncio.create_task(pending.wait(30))
    await asyncio.sleep(0)
    await router.close()
    with pytest.raises(ReplyRouterClosed):
        await waiter
    assert router.pending_count == 0
    with pytest.raises(ReplyRouterClosed):
        await router.expect("again")
