"""The consumer: reads topics, yields decoded records and commits only the offsets it is given.

Consumers never auto-commit (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeAlias

import aiokafka
import aiokafka.errors
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from sluice.errors import KafkaError
from sluice.events import Consumed, WireMessage, from_kafka
from sluice.kafka.connection import KafkaSettings
from sluice.kafka.diagnosis import startup_error
from sluice.kafka.errors import kafka_error

if TYPE_CHECKING:
    from sluice.application.model import TopicSpec

__all__ = ["Consumer", "Partition", "RebalanceListener"]

Partition: TypeAlias = tuple[str, int]
"""A topic partition as ``(topic, partition)``."""


class RebalanceListener:
    """Hooks a group :class:`Consumer` calls when its partitions change; no-ops here.

    ``on_revoked`` runs before the partitions move to another member, once fetching stopped:
    commit the finished offsets of those partitions there. It is not called when the consumer
    stops, so commit before :meth:`Consumer.stop` too. Do not wait in a hook for a lock held
    around :meth:`Consumer.poll`: the rebalance waits for the hook.
    """

    async def on_revoked(self, partitions: frozenset[Partition]) -> None:
        """The consumer is about to lose ``partitions``."""

    async def on_assigned(self, partitions: frozenset[Partition]) -> None:
        """The consumer now reads ``partitions`` (from their committed offsets)."""


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, listener: RebalanceListener) -> None:
        self._listener = listener

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        await self._listener.on_revoked(frozenset((tp.topic, tp.partition) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        await self._listener.on_assigned(frozenset((tp.topic, tp.partition) for tp in assigned))


class Consumer:
    """Reads topics and yields decoded records, committing only what it is told to.

    Two modes:

    - with ``group_id``: a member of a consumer group (partitions shared among members, offsets
      committed with :meth:`commit`, reading from the committed offset, else the earliest);
      ``listener`` is told about rebalances;
    - without: all partitions of the topics, no group, no commits, starting at the end
      (``start_at="end"``, the default) or the beginning; :meth:`seek` moves to any offset. The
      gateway's shared consumers work this way.

    ``topics`` are the topics' specs; their schema types decide how plain records are decoded
    (``TopicSpec(name)`` for a topic without schema).

    >>> async def read(settings: KafkaSettings, topic: TopicSpec) -> None:  # doctest: +SKIP
    ...     async with Consumer(settings, [topic], group_id="g") as consumer:
    ...         for item in await consumer.poll(timeout_ms=1000):
    ...             ...  # handle item, a ConsumedRecord or an Undecodable
    ...             await consumer.commit({(item.topic, item.partition): item.next_offset})
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Iterable[TopicSpec],
        *,
        group_id: str | None = None,
        listener: RebalanceListener | None = None,
        start_at: Literal["beginning", "end"] | None = None,
        max_partition_fetch_bytes: int | None = None,
        client_id: str | None = None,
    ) -> None:
        self._topics = {topic.name: topic for topic in topics}
        if not self._topics:
            raise ValueError("a consumer needs at least one topic")
        if group_id is not None and start_at is not None:
            raise ValueError(
                "start_at applies without group_id: a group resumes from its committed offsets"
            )
        if group_id is None and listener is not None:
            raise ValueError("a rebalance listener needs a group_id")
        kwargs = settings.client_kwargs("consumer")
        kwargs.setdefault("client_id", "sluice")
        if max_partition_fetch_bytes is not None:
            kwargs["max_partition_fetch_bytes"] = max_partition_fetch_bytes
        if client_id is not None:
            kwargs["client_id"] = client_id
        self._start_at = start_at or "end"
        reset = "earliest" if group_id is not None or self._start_at == "beginning" else "latest"
        kwargs.update(group_id=group_id, enable_auto_commit=False, auto_offset_reset=reset)
        self._kwargs = kwargs
        self._group_id = group_id
        self._listener = listener
        self._consumer: Any = None

    async def start(self) -> None:
        """Connect; a group member returns once it has its first assignment, a group-less
        consumer once every partition is at its start position."""
        if self._consumer is not None:
            raise KafkaError("the consumer is already started")
        consumer = aiokafka.AIOKafkaConsumer(**self._kwargs)
        listener = _Listener(self._listener) if self._listener is not None else None
        consumer.subscribe(list(self._topics), listener=listener)
        try:
            await consumer.start()
            if self._group_id is None:
                if self._start_at == "beginning":
                    await consumer.seek_to_beginning()
                else:
                    await consumer.seek_to_end()
        except aiokafka.errors.KafkaError as error:
            await consumer.stop()
            servers = self._kwargs["bootstrap_servers"]
            what = f"cannot start a Kafka consumer of {sorted(self._topics)} on {servers}"
            raise await startup_error(error, self._kwargs, what) from error
        except BaseException:
            # Cancelled while connecting: close what was opened, or it leaks its connections.
            await asyncio.shield(consumer.stop())
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        """Leave the group and disconnect (without committing: commit first)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _started(self) -> Any:
        if self._consumer is None:
            raise KafkaError("the consumer is not started")
        return self._consumer

    async def poll(
        self, *, timeout_ms: int = 1000, max_records: int | None = None
    ) -> list[Consumed]:
        """The next records, in offset order per partition; empty after ``timeout_ms``."""
        consumer = self._started()
        try:
            batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except aiokafka.errors.KafkaError as error:
            raise kafka_error(error, f"consuming {sorted(self._topics)} failed") from error
        return [self._decode(message) for messages in batches.values() for message in messages]

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Consumed:
        consumer = self._started()
        try:
            message = await consumer.getone()
        except aiokafka.errors.ConsumerStoppedError:
            raise StopAsyncIteration from None
        except aiokafka.errors.KafkaError as error:
            raise kafka_error(error, f"consuming {sorted(self._topics)} failed") from error
        return self._decode(message)

    def _decode(self, message: Any) -> Consumed:
        spec = self._topics.get(message.topic)
        headers = tuple((name, b"" if value is None else value) for name, value in message.headers)
        wire = WireMessage(message.key, message.value, headers, message.timestamp)
        return from_kafka(
            wire,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            value_type=spec.value_type if spec else None,
            key_type=spec.key_type if spec else None,
        )

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit ``{(topic, partition): next offset to read}`` for the group.

        Raises :class:`~sluice.errors.KafkaError` when the group rebalanced meanwhile (the new
        owner then re-reads from the last commit: duplicates, never loss).
        """
        consumer = self._started()
        if self._group_id is None:
            raise KafkaError("a consumer without group_id cannot commit offsets")
        if not offsets:
            return
        try:
            await consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
        except aiokafka.errors.KafkaError as error:
            raise kafka_error(
                error, f"committing offsets of group {self._group_id!r} failed"
            ) from error

    async def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset of a partition, ``None`` when there is none."""
        consumer = self._started()
        try:
            offset: int | None = await consumer.committed(TopicPartition(topic, partition))
        except aiokafka.errors.KafkaError as error:
            raise kafka_error(error, f"reading the offsets of {self._group_id!r} failed") from error
        return offset

    def assignment(self) -> frozenset[Partition]:
        """The partitions this consumer reads now."""
        return frozenset((tp.topic, tp.partition) for tp in self._started().assignment())

    def pause(self, partitions: Iterable[Partition]) -> None:
        """Stop fetching ``partitions`` (those still assigned): :meth:`poll` returns none of
        their records until :meth:`resume`, and a poll still counts as one for the group's
        ``max.poll.interval.ms``, so a member can keep polling while it works on a slow record.
        Records fetched and not yet returned are dropped and fetched again after resuming."""
        consumer = self._started()
        assigned = consumer.assignment()
        for topic, partition in partitions:
            tp = TopicPartition(topic, partition)
            if tp in assigned:
                consumer.pause(tp)

    def resume(self, partitions: Iterable[Partition] | None = None) -> None:
        """Fetch paused ``partitions`` again (every paused partition when ``None``)."""
        consumer = self._started()
        paused = consumer.paused()
        wanted = (
            paused if partitions is None else {TopicPartition(t, p) for t, p in partitions} & paused
        )
        if wanted:
            consumer.resume(*wanted)

    async def position(self, topic: str, partition: int) -> int:
        """The offset of the next record this consumer will read from a partition."""
        try:
            position: int = await self._started().position(TopicPartition(topic, partition))
        except aiokafka.errors.KafkaError as error:
            raise kafka_error(error, f"no position for {topic}[{partition}]") from error
        return position

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read a partition from ``offset`` on (the next :meth:`poll` starts there)."""
        try:
            self._started().seek(TopicPartition(topic, partition), offset)
        except aiokafka.errors.KafkaError as error:
            raise kafka_error(error, f"cannot seek {topic}[{partition}] to {offset}") from error
