"""Shared topic consumers fanned out to subscribers, against the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.fanout import FanoutClosed, FanoutRegistry, SlowConsumer, Subscription
from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import KafkaSettings, Producer
from sluice.record import Record
from tests.gateway.conftest import MakeTopic

pytestmark = pytest.mark.kafka

SOURCE = "/default/test-app/gateways/consume"


@pytest.fixture
async def registry(settings: KafkaSettings, make_topic: MakeTopic) -> AsyncIterator[FanoutRegistry]:
    # Depends on make_topic so that the fanouts stop before their topics are deleted.
    async with FanoutRegistry(settings) as shared:
        yield shared


async def send(
    producer: Producer, topic: TopicSpec, value: object, *, partition: int = 0, **headers: str
) -> None:
    await producer.send(
        topic.name, Record(value, headers=headers), source=SOURCE, partition=partition
    )


async def take(subscription: Subscription, count: int, within: float = 20) -> list[ConsumedRecord]:
    async def collect() -> list[ConsumedRecord]:
        return [await anext(subscription) for _ in range(count)]

    return await asyncio.wait_for(collect(), within)


async def nothing_more(subscription: Subscription, wait: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(subscription), wait)


def header_is(name: str, value: str) -> Callable[[ConsumedRecord], bool]:
    return lambda consumed: consumed.record.headers.get(name) == value


def assert_contiguous(records: list[ConsumedRecord], first: dict[int, int]) -> None:
    """Per partition, offsets go up by one from ``first``: no gap, no duplicate."""
    by_partition: dict[int, list[int]] = {}
    for consumed in records:
        by_partition.setdefault(consumed.partition, []).append(consumed.offset)
    for partition, offsets in by_partition.items():
        start = first[partition]
        assert offsets == list(range(start, start + len(offsets))), partition


async def test_many_subscribers_with_filters_share_one_consumer(
    registry: FanoutRegistry, make_topic: MakeTopic, producer: Producer
) -> None:
    topic = await make_topic(partitions=3)
    fanout = await registry.get(topic)
    assert await registry.get(topic) is fanout
    sessions = [f"s{i}" for i in range(5)]
    filtered = [await fanout.subscribe(header_is("session", sessions[i % 5])) for i in range(20)]
    everything = await fanout.subscribe()

    for n in range(60):
        await send(producer, topic, n, partition=n % 3, session=sessions[n % 5])

    assert sorted(r.record.value for r in await take(everything, 60)) == list(range(60))
    for i, subscription in enumerate(filtered):
        records = await take(subscription, 12)
        assert sorted(r.record.value for r in records) == [n for n in range(60) if n % 5 == i % 5]
        assert {r.record.headers["session"] for r in records} == {sessions[i % 5]}
        await nothing_more(subscription, 0.05)
    assert registry.consumers_created == 1
    assert fanout.catchup_readers_created == 0
    assert fanout.subscriber_count == 21

    other = await make_topic()
    await registry.get(other)
    await registry.get(other)
    assert registry.consumers_created == 2


async def test_records_written_right_after_subscribe_are_never_missed(
    registry: FanoutRegistry, make_topic: MakeTopic, producer: Producer
) -> None:
    topic = await make_topic(partitions=2)
    fanout = await registry.get(topic)
    for attempt in range(40):
        subscription = await fanout.subscribe(header_is("attempt", str(attempt)))
        await send(producer, topic, attempt, partition=attempt % 2, attempt=str(attempt))
        (record,) = await take(subscription, 1, within=10)
        assert record.record.value == attempt
        await subscription.close()
    assert fanout.subscriber_count == 0
    assert registry.consumers_created == 1


async def test_latest_skips_what_was_already_dispatched(
    registry: FanoutRegistry, make_topic: MakeTopic, producer: Producer
) -> None:
    topic = await make_topic()
    fanout = await registry.get(topic)
    witness = await fanout.subscribe()
    await send(producer, topic, "old")
    await take(witness, 1)

    subscription = await fanout.subscribe(position="latest")
    await send(producer, topic, "new")
    assert [r.record.value for r in await take(subscription, 1)] == ["new"]
    assert subscription.last_delivered == {0: 1}
    assert subscription.positions == {0: 2}


async def test_earliest_delivers_the_backlog_then_continues_live(
    registry: FanoutRegistry, make_topic: MakeTopic, producer: Producer
) -> None:
    topic = await make_topic(partitions=2)
    for n in range(30):  # written before the shared consumer exists
        await send(producer, topic, n, partition=n % 2)
    fanout = await registry.get(topic)
    witness = await fanout.subscribe()
    for n in range(30, 60):  # read by the shared consumer before the subscription
        await send(producer, topic, n, partition=n % 2)
    await take(witness, 30)

    subscription = await fanout.subscribe(position="earliest")
    for n in range(60, 90):  # live, partly while the catch-up reader still runs
        await send(producer, topic, n, partition=n % 2)

    records = await take(subscription, 90)
    assert sorted(r.record.value for r in records) == list(range(90))
    assert_contiguous(records, {0: 0, 1: 0})
    await nothing_more(subscription)
    assert fanout.catchup_readers_created == 1
    assert registry.consumers_created == 1
    assert subscription.positions == {0: 45, 1: 45}
    assert subscription.last_delivered == {0: 44, 1: 44}


async def test_earliest_filters_the_backlog_too(
    registry: FanoutRegistry, make_topic: MakeTopic, producer: Producer
) -> None:
    topic = await make_topic()
    for n in range(20):
        await send(producer, topic, n, parity=str(n % 2))
    fanout = await registry.get(topic)
    subscription = await fanout.subscribe(header_is("parity", "0"), position="earliest")
    for n in range(20, 30):
        await send(producer, topic, n, parity=str(n % 2))
    records = await take(subscription, 15)
    assert [r.record.value for r in records] == list(range(0, 30, 2))
    await nothing_more(subscription)


async def test_explicit_offsets_resume_strictly_after_what_was_read(
    registry: FanoutRegistry, make_topic: MakeTopic, producer: Producer
) -> None:
    topic = await make_topic(partitions=2)
    fanout = await registry.get(topic)
    first = await fanout.subscribe()
    for n in range(40):
        await send(producer, topic, n, partition=n % 2)
    read = await take(first, 40)
    # A client read some records, then reconnects with the token of what it had.
    reader = await fanout.subscribe()
    await reader.close()
    token = {0: 7, 1: 12}

    resumed = await fanout.subscribe(position=token)
    for n in range(40, 50):
        await send(producer, topic, n, partition=n % 2)
    records = await take(resumed, (20 - 7) + (20 - 12) + 10)
    assert_contiguous(records, token)
    expected = {(r.partition, r.offset) for r in read if r.offset >= token[r.partition]}
    assert expected <= {(r.partition, r.offset) for r in records}
    await nothing_more(resumed)

    # Offsets ahead of what the shared consumer read: delivered once they exist.
    ahead = await fanout.subscribe(position={0: 27, 1: 25})
    for n in range(50, 60):
        await send(producer, topic, n, partition=n % 2)
    later = await take(ahead, 3 + 5)
    assert sorted((r.partition, r.offset) for r in later) == [
        *((0, o) for o in range(27, 30)),
        *((1, o) for o in range(25, 30)),
    ]
    # Resuming from a subscription's positions continues exactly after its last record.
    again = await fanout.subscribe(position=ahead.positions)
    await send(producer, topic, "next", partition=1)
    assert [(r.partition, r.offset) for r in await take(again, 1)] == [(1, 30)]


async def test_a_slow_subscriber_is_dropped_and_the_others_keep_everything(
    registry: FanoutRegistry, make_topic: MakeTopic, producer: Producer
) -> None:
    topic = await make_topic(partitions=2)
    fanout = await registry.get(topic)
    slow = await fanout.subscribe(max_queue=5)
    # Room for everything: a poll may hand several records over at once.
    fast = await fanout.subscribe(max_queue=100)

    async def write() -> None:
        for n in range(50):
            await send(producer, topic, n, partition=n % 2)

    writer = asyncio.create_task(write())
    records = await take(fast, 50)
    await writer
    assert sorted(r.record.value for r in records) == list(range(50))
    with pytest.raises(SlowConsumer) as raised:
        await anext(slow)
    assert raised.value.max_queue == 5
    assert slow.closed
    assert fanout.subscriber_count == 1


async def test_close_ends_subscriptions(
    settings: KafkaSettings, make_topic: MakeTopic, producer: Producer
) -> None:
    topic = await make_topic()
    registry = FanoutRegistry(settings)
    fanout = await registry.get(topic)
    leaving = await fanout.subscribe()
    staying = await fanout.subscribe()
    catching_up = await fanout.subscribe(position="earliest")

    await leaving.close()
    with pytest.raises(StopAsyncIteration):
        await anext(leaving)
    await send(producer, topic, "x")
    assert [r.record.value for r in await take(staying, 1)] == ["x"]

    await registry.close()
    # What was already buffered is still handed out, then the iteration ends.
    assert [r.record.value for r in await take(catching_up, 1)] == ["x"]
    for subscription in (staying, catching_up):
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(subscription), 5)
    with pytest.raises(FanoutClosed):
        await fanout.subscribe()
    with pytest.raises(FanoutClosed):
        await registry.get(topic)


async def test_catch_up_readers_follow_their_subscriber_and_stop_with_it(
    registry: FanoutRegistry, make_topic: MakeTopic, producer: Producer
) -> None:
    topic = await make_topic()
    for n in range(40):
        await send(producer, topic, n)
    fanout = await registry.get(topic)
    witness = await fanout.subscribe()

    # A reader that leaves during its catch-up: the catch-up reader stops too.
    leaving = await fanout.subscribe(position="earliest", max_queue=5)
    assert [r.record.value for r in await take(leaving, 3)] == [0, 1, 2]
    task = leaving.catchup_task
    assert task is not None
    await leaving.close()
    assert task.done()

    # A reader that never reads: live records held for it overflow, and it is dropped.
    stuck = await fanout.subscribe(position="earliest", max_queue=5)
    for n in range(40, 52):
        await send(producer, topic, n)
    assert [r.record.value for r in await take(witness, 12)] == list(range(40, 52))
    # (All 12 were offered to it before the witness could read the last one.)
    with pytest.raises(SlowConsumer):
        await anext(stuck)
    assert fanout.subscriber_count == 1
