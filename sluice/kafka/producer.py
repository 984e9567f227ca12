"""The producer: writes records as CloudEvents and waits for the broker's ack.

The reliability settings are fixed (spec/reliability.md): the producer is idempotent with
``acks=all`` and a bounded request timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self

import aiokafka
import aiokafka.errors

from sluice.errors import KafkaError
from sluice.events import RECORD_TYPE, WireMessage, to_kafka
from sluice.kafka.connection import KafkaSettings
from sluice.kafka.errors import kafka_error
from sluice.record import Record

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_REQUEST_SIZE",
    "DEFAULT_REQUEST_TIMEOUT_MS",
    "Producer",
    "SendResult",
]

DEFAULT_MAX_REQUEST_SIZE: Final = 1_048_576
DEFAULT_REQUEST_TIMEOUT_MS: Final = 30_000
DEFAULT_BATCH_SIZE: Final = 65_536
"""Bytes per partition per produce request (aiokafka's default is 16 KiB). aiokafka keeps one
request in flight per broker, so a partition gets at most one batch per round trip: larger
batches are what lets a busy gateway or worker write more than ~25 records of a few hundred
bytes per round trip (reference/perf.md §8.3: >= 64 KiB)."""


@dataclass(frozen=True)
class SendResult:
    """Where the broker stored a message; ``timestamp`` in ms, ``event_id`` its ``ce_id``."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    event_id: str | None


class Producer:
    """The process's Kafka producer: share one per process (aiokafka batches across callers).

    Idempotent with ``acks=all``; :meth:`send` returns only once the broker acknowledged the
    write, so a caller may then answer its client or commit its input.

    ``max_request_size`` and ``request_timeout_ms`` default to the client options
    ``max.request.size`` / ``request.timeout.ms`` when set there, else to 1 MiB and 30 s;
    ``batch.size`` to :data:`DEFAULT_BATCH_SIZE`.
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
        self._producer: Any = None

    @property
    def max_request_size(self) -> int:
        size: int = self._kwargs["max_request_size"]
        return size

    async def start(self) -> None:
        """Connect to the cluster."""
        if self._producer is not None:
            raise KafkaError("the producer is already started")
        producer = aiokafka.AIOKafkaProducer(**self._kwargs)
        try:
            await producer.start()
        except aiokafka.errors.KafkaError as error:
            await producer.stop()
            servers = self._kwargs["bootstrap_servers"]
            raise kafka_error(error, f"cannot start a Kafka producer for {servers}") from error
        except BaseException:
            # Cancelled while connecting: close what was opened, or it leaks its connections.
            await asyncio.shield(producer.stop())
            raise
        self._producer = producer

    async def stop(self) -> None:
        """Send what is pending and disconnect."""
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
        :class:`~sluice.events.UnencodableRecord` for a record that cannot be encoded and
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

        Returns once the record is buffered (waiting only while the buffer is full), so one
        task writes many records in order and awaits their acks together, the way a worker
        pipelines its outputs. Many tasks each awaiting :meth:`send` at once would instead all
        wake up whenever the buffer drains. The future fails with :class:`KafkaError`.
        """
        message = to_kafka(record, source=source, type=type, id=id, time=time)
        return await self.enqueue_message(topic, message, partition=partition)

    async def enqueue_message(
        self, topic: str, message: WireMessage, *, partition: int | None = None
    ) -> asyncio.Future[SendResult]:
        """:meth:`enqueue` for an encoded message."""
        if self._producer is None:
            raise KafkaError("the producer is not started")
        try:
            delivery = await self._producer.send(
                topic,
                value=message.value,
                key=message.key,
                partition=partition,
                timestamp_ms=message.timestamp,
                headers=list(message.headers),
            )
        except aiokafka.errors.KafkaError as error:
            raise kafka_error(error, f"producing to topic {topic!r} failed") from error
        result: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        event_id = message.header("ce_id")

        def done(future: asyncio.Future[Any]) -> None:
            if result.done():
                return
            if future.cancelled():
                result.cancel()
                return
            error = future.exception()
            if error is not None:
                if isinstance(error, aiokafka.errors.KafkaError):
                    error = kafka_error(error, f"producing to topic {topic!r} failed")
                result.set_exception(error)
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
