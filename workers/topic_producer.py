"""The topic producer agents get from ``context.get_topic_producer()``: the shared producer."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

from sluice.kafka import Producer
from sluice.record import Record


class SharedTopicProducer:
    """Writes to any topic with the worker's idempotent producer, from async or sync code.

    ``write`` is for sync hooks, which the runtime runs in worker threads: it schedules the send
    on the worker's event loop and returns a future that completes on the broker's ack.
    """

    def __init__(self, producer: Producer, loop: asyncio.AbstractEventLoop, *, source: str) -> None:
        self._producer = producer
        self._loop = loop
        self._source = source

    async def awrite(self, topic: str, record: Record) -> None:
        await self._producer.send(topic, record, source=self._source)

    def write(self, topic: str, record: Record) -> Future[None]:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError(
                "TopicProducer.write() blocks: call it from sync code, or use await awrite()"
            )
        return asyncio.run_coroutine_threadsafe(self.awrite(topic, record), self._loop)
