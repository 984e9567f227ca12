"""The producer: writes records as CloudEvents and waits for the broker's ack.

The reliability settings are fixed (docs/reliability.md): the producer is idempotent with
``acks=all`` and a bounded request timeout.

An idempotent aiokafka producer numbers the batches of each partition; once a batch fails after
it was numbered (it expired during a broker outage, or the broker refused it as too large) the
broker sees a gap and refuses every later batch of that partition with
``OutOfOrderSequenceNumber``, for good. :class:`Producer` therefore replaces its aiokafka
producer, which gets a new producer id and starts its sequences afresh, whenever a batch fails.
Acknowledged records are untouched by that, and the records of the failed batches were answered
with an error, so nothing acknowledged is lost or written twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self

import aiokafka
import aiokafka.errors

from sluice.errors import KafkaError
from sluice.events import RECORD_TYPE, WireMessage, to_kafka
from sluice.kafka.admin import describe_topic
from sluice.kafka.connection import KafkaSettings
from sluice.kafka.diagnosis import startup_error
from sluice.kafka.errors import RecordTooLarge, UnknownTopic, kafka_error
from sluice.kafka.logs import quiet_retry_logs
from sluice.record import Record

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_REQUEST_SIZE",
    "DEFAULT_REQUEST_TIMEOUT_MS",
    "RECORD_OVERHEAD",
    "Producer",
    "RecordTooLarge",
    "SendResult",
    "encoded_size",
]

DEFAULT_MAX_REQUEST_SIZE: Final = 1_048_576
DEFAULT_REQUEST_TIMEOUT_MS: Final = 30_000
log = logging.getLogger("sluice.kafka")

DEFAULT_BATCH_SIZE: Final = 65_536
"""Bytes per partition per produce request (aiokafka's default is 16 KiB). aiokafka keeps one
request in flight per broker, so a partition gets at most one batch per round trip: larger
batches are what lets a busy gateway or worker write more than ~25 records of a few hundred
bytes per round trip (docs/benchmarks.md)."""


def encoded_size(message: WireMessage) -> int:
    """Bytes of ``message``'s key, value and headers: what counts against the size limits,
    less :data:`RECORD_OVERHEAD`."""
    headers = sum(len(key.encode("utf-8")) + len(value) for key, value in message.headers)
    return len(message.key or b"") + len(message.value or b"") + headers


@dataclass(frozen=True)
class SendResult:
    """Where the broker stored a message; ``timestamp`` in ms, ``event_id`` its ``ce_id``."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    event_id: str | None


_WATCH_INTERVAL: Final = 1.0
"""Seconds between two checks that the cluster is reachable."""
RECORD_OVERHEAD: Final = 512
"""Bytes of a produce request that are not the record's key, value and headers (batch and
record framing, with a margin)."""
_LIMIT_RETRY: Final = 60.0
"""Seconds before a topic's size limit that could not be read is asked for again."""
_MAX_BACKOFF: Final = 2.0
"""Longest pause between two attempts to start a replacement producer."""


class Producer:
    """The process's Kafka producer: share one per process (aiokafka batches across callers).

    Idempotent with ``acks=all``; :meth:`send` returns only once the broker acknowledged the
    write, so a caller may then answer its client or commit its input.

    ``max_request_size`` and ``request_timeout_ms`` default to the client options
    ``max.request.size`` / ``request.timeout.ms`` when set there, else to 1 MiB and 30 s;
    ``batch.size`` to :data:`DEFAULT_BATCH_SIZE`. ``request_timeout_ms`` is also how long a
    batch may wait for a broker that is away before it fails.

    While started it checks every second that a broker of the cluster accepts connections
    (:attr:`reachable`) and logs when that changes; when a batch fails it replaces its aiokafka
    producer (module docstring), and callers of :meth:`enqueue` wait for the replacement.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        max_request_size: int | None = None,
        request_timeout_ms: int | None = None,
        client_id: str | None = None,
    ) -> None:
        kwargs = settings.client_kwargs("producer")
        kwargs.setdefault("client_id", "sluice")
        kwargs.setdefault("max_request_size", DEFAULT_MAX_REQUEST_SIZE)
        kwargs.setdefault("request_timeout_ms", DEFAULT_REQUEST_TIMEOUT_MS)
        kwargs.setdefault("max_batch_size", DEFAULT_BATCH_SIZE)
        overrides = {
            "max_request_size": max_request_size,
            "request_timeout_ms": request_timeout_ms,
            "client_id": client_id,
        }
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        kwargs.update(enable_idempotence=True, acks="all")
        self._kwargs = kwargs
        self._settings = settings
        self._limits: dict[str, tuple[asyncio.Future[int], float]] = {}
        self._producer: Any = None
        self._generation = 0
        self._renewal: asyncio.Task[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reachable = True
        self._away_since = 0.0
        self.replacements = 0
        """How often a failed batch made the producer start afresh."""
        self.failures: Counter[str] = Counter()
        """Records Kafka did not take, by reason (the aiokafka error's class name)."""

    @property
    def max_request_size(self) -> int:
        size: int = self._kwargs["max_request_size"]
        return size

    async def record_limit(self, topic: str, *, must_exist: bool = False) -> int:
        """The largest batch Kafka takes for ``topic``: the producer's ``max_request_size`` or
        the topic's ``max.message.bytes`` when smaller. With ``must_exist``, a topic the cluster
        does not have raises :class:`UnknownTopic` (asked again a minute later).

        Read from the cluster once per topic (one admin request however many callers ask at
        once) and kept; while it cannot be read (Kafka away, no DescribeConfigs permission)
        the answer is ``max_request_size`` and it is asked again a minute later. Checking a
        record against it before sending keeps the broker from refusing it, which would fail
        its whole batch, neighbours included.
        """
        entry = self._limits.get(topic)
        now = time.monotonic()
        if entry is None or (
            entry[0].done() and entry[0].exception() is not None and now - entry[1] > _LIMIT_RETRY
        ):
            entry = (asyncio.ensure_future(self._topic_limit(topic)), now)
            self._limits[topic] = entry
        try:
            return await asyncio.shield(entry[0])
        except UnknownTopic:
            if must_exist:
                raise
            return self.max_request_size
        except KafkaError:
            return self.max_request_size

    async def _topic_limit(self, topic: str) -> int:
        description = await describe_topic(self._settings, topic)
        configured = description.config.get("max.message.bytes")
        if configured is None or not configured.isdigit():
            return self.max_request_size
        return min(self.max_request_size, int(configured))

    @property
    def reachable(self) -> bool:
        """False while no broker of the cluster accepts a connection (checked every second)."""
        return self._reachable

    @property
    def servers(self) -> str:
        servers: str = self._kwargs["bootstrap_servers"]
        return servers

    async def start(self) -> None:
        """Connect to the cluster."""
        if self._producer is not None:
            raise KafkaError("the producer is already started")
        quiet_retry_logs()
        producer = aiokafka.AIOKafkaProducer(**self._kwargs)
        try:
            await producer.start()
        except aiokafka.errors.KafkaError as error:
            await producer.stop()
            what = f"cannot start a Kafka producer for {self.servers}"
            raise await startup_error(error, self._kwargs, what) from error
        except BaseException:
            # Cancelled while connecting: close what was opened, or it leaks its connections.
            await asyncio.shield(producer.stop())
            raise
        self._producer = producer
        self._reachable = True
        self._spawn(self._watch())

    async def stop(self) -> None:
        """Send what is pending and disconnect."""
        renewal, self._renewal = self._renewal, None
        if renewal is not None:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            if not task.get_name().startswith("retire"):
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

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

    async def send(
        self,
        topic: str,
        record: Record,
        *,
        source: str,
        type: str = RECORD_TYPE,
        id: str | None = None,
        time: datetime | None = None,
        partition: int | None = None,
    ) -> SendResult:
        """Write ``record`` to ``topic`` as a CloudEvent and wait for the broker's ack.

        ``source``, ``type``, ``id`` and ``time`` are the event's attributes
        (:func:`sluice.events.to_cloudevent`). Raises
        :class:`~sluice.events.UnencodableRecord` for a record that cannot be encoded,
        :class:`RecordTooLarge` for one Kafka refuses for its size and
        :class:`~sluice.errors.KafkaError` when Kafka did not take it.
        """
        message = to_kafka(record, source=source, type=type, id=id, time=time)
        return await self.send_message(topic, message, partition=partition)

    async def send_message(
        self, topic: str, message: WireMessage, *, partition: int | None = None
    ) -> SendResult:
        """Write an encoded message (a raw dead letter, say) and wait for the broker's ack."""
        return await (await self.enqueue_message(topic, message, partition=partition))

    async def enqueue(
        self,
        topic: str,
        record: Record,
        *,
        source: str,
        type: str = RECORD_TYPE,
        id: str | None = None,
        time: datetime | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[SendResult]:
        """Hand ``record`` to the producer's buffer; the future completes on the broker's ack.

        Returns once the record is buffered (waiting only while the buffer is full, or while
        the producer is being replaced), so one task writes many records in order and awaits
        their acks together, the way a worker pipelines its outputs. Many tasks each awaiting
        :meth:`send` at once would instead all wake up whenever the buffer drains. Raises, and
        the future fails with, :class:`KafkaError` (:class:`RecordTooLarge` for a size
        refusal).
        """
        message = to_kafka(record, source=source, type=type, id=id, time=time)
        return await self.enqueue_message(topic, message, partition=partition)

    async def enqueue_message(
        self, topic: str, message: WireMessage, *, partition: int | None = None
    ) -> asyncio.Future[SendResult]:
        """:meth:`enqueue` for an encoded message."""
        if self._producer is None:
            raise KafkaError("the producer is not started")
        if self._renewal is not None:
            await asyncio.shield(self._renewal)
            if self._producer is None:
                raise KafkaError("the producer is stopped")
        producer, generation = self._producer, self._generation
        what = f"producing to topic {topic!r} failed"
        try:
            delivery = await producer.send(
                topic,
                value=message.value,
                key=message.key,
                partition=partition,
                timestamp_ms=message.timestamp,
                headers=list(message.headers),
            )
        except aiokafka.errors.KafkaError as error:
            self.failures[type(error).__name__] += 1
            # Refused before it was numbered (too large, buffer full, unknown topic): the
            # sequence is intact. Anything else means this producer cannot go on.
            if not isinstance(
                error, aiokafka.errors.MessageSizeTooLargeError | aiokafka.errors.KafkaTimeoutError
            ):
                self._renew(generation, error)
            raise kafka_error(error, what, topic=topic) from error
        result: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        event_id = message.header("ce_id")

        def done(future: asyncio.Future[Any]) -> None:
            if future.cancelled():
                if not result.done():
                    result.cancel()
                return
            error = future.exception()
            if error is not None:
                self.failures[type(error).__name__] += 1
                self._renew(generation, error)
                if isinstance(error, aiokafka.errors.KafkaError):
                    error = kafka_error(error, what, topic=topic)
                if not result.done():
                    result.set_exception(error)
                return
            if result.done():
                return
            metadata = future.result()
            timestamp = metadata.timestamp if metadata.timestamp not in (None, -1) else None
            result.set_result(
                SendResult(
                    topic=metadata.topic,
                    partition=metadata.partition,
                    offset=metadata.offset,
                    timestamp=timestamp,
                    event_id=event_id.decode("utf-8", "replace") if event_id else None,
                )
            )

        delivery.add_done_callback(done)
        return result

    def _spawn(self, job: Any, name: str | None = None) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(job)
        if name is not None:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _renew(self, generation: int, cause: BaseException) -> None:
        """Replace the aiokafka producer of ``generation`` (once) because a batch failed."""
        if generation != self._generation or self._renewal is not None:
            return
        if self._producer is None:
            return
        log.warning(
            "a Kafka batch failed (%s: %s); starting a fresh producer so later records "
            "are not refused as out of sequence",
            type(cause).__name__,
            cause,
        )
        self._generation += 1
        self.replacements += 1
        self._renewal = asyncio.ensure_future(self._replace(self._producer))

    async def _replace(self, old: Any) -> None:
        """Start a new aiokafka producer (retrying while the cluster is away), swap it in and
        retire ``old``. Cancelled (by :meth:`stop`), ``old`` stays for :meth:`stop` to close."""
        delay = 0.1
        try:
            while True:
                candidate = aiokafka.AIOKafkaProducer(**self._kwargs)
                try:
                    await candidate.start()
                    break
                except aiokafka.errors.KafkaError:
                    await candidate.stop()
                except BaseException:
                    await asyncio.shield(candidate.stop())
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
            self._producer = candidate
            self._spawn(self._retire(old), name="retire")
            log.warning("a fresh Kafka producer is connected to %s", self.servers)
        finally:
            self._renewal = None

    async def _retire(self, old: Any) -> None:
        """Let ``old`` finish the batches it can (on other partitions) within the request
        timeout, then fail the rest and close it."""
        timeout = self._kwargs["request_timeout_ms"] / 1000
        try:
            await asyncio.wait_for(asyncio.shield(old.flush()), timeout)
        except (TimeoutError, aiokafka.errors.KafkaError):
            pass
        finally:
            # aiokafka has no public way to abandon pending batches; without this its stop()
            # waits for them forever while the broker is away.
            old._message_accumulator.fail_all(
                KafkaError("the producer was replaced before Kafka took the record", retriable=True)
            )
            await old.stop()

    async def _watch(self) -> None:
        """Track whether a broker accepts connections; log each change once."""
        while True:
            await asyncio.sleep(_WATCH_INTERVAL)
            reachable = await self._probe()
            if reachable == self._reachable:
                continue
            self._reachable = reachable
            if not reachable:
                self._away_since = time.monotonic()
                log.error("Kafka at %s is unreachable; retrying", self.servers)
            else:
                away = time.monotonic() - self._away_since
                log.warning("Kafka at %s is reachable again (away %.1f s)", self.servers, away)

    async def _probe(self) -> bool:
        if self._renewal is not None:
            return False
        producer = self._producer
        if producer is None:
            return self._reachable
        client = producer.client
        nodes = [broker.nodeId for broker in client.cluster.brokers()]
        for node in nodes:
            try:
                if await client.ready(node):
                    return True
            except aiokafka.errors.KafkaError:
                continue
        return not nodes and self._reachable
