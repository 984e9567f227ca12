"""Shared topic consumers for consume and chat gateways: one Kafka consumer per topic, many sockets.

A :class:`TopicFanout` owns ONE group-less consumer of a topic (all partitions, no group, started
at the end) and hands every record to the :class:`Subscription` objects whose filter accepts it.
Sockets never create a consumer of their own, so the cost grows with topics, not with clients
(docs/ARCHITECTURE.md). :class:`FanoutRegistry` creates the fanouts lazily, one per topic per
process.

Positions. The fanout tracks, per partition, the offset after the last record it dispatched (the
*dispatch point*). A subscription registers synchronously (no ``await`` between reading the
dispatch points and joining the subscriber set), so the shared stream hands it every record at
or after its *live point*:

- ``"latest"``: the live point is the dispatch point. Every record written after
  :meth:`TopicFanout.subscribe` returns has an offset at or past the partition's end at that time,
  which is at or past the dispatch point, so none is missed. (Records written just before the
  call that the shared consumer had not dispatched yet are delivered too: harmless.)
- ``"earliest"`` or explicit offsets (``{partition: next offset}``, from an offset token) behind
  the dispatch point: the live point is the dispatch point and a short-lived *catch-up reader*
  (its own group-less consumer) reads ``[start, dispatch point)`` of those partitions, then
  stops. Live records that arrive meanwhile are held and delivered after the catch-up, so each
  partition arrives in order, without gaps or duplicates. Catch-up readers are bounded per
  fanout (``max_catchup_readers``; further subscribers wait their turn) and live only as long as
  the backlog: steady-state cost stays one consumer per topic.
- explicit offsets at or past the dispatch point: the live point is that offset. Partitions the
  mapping does not name start at ``"latest"`` (partitions the topic lacks are ignored);
  offsets before the partition's first retained record start at that record.

Back-pressure. Each subscription has a bounded buffer (``max_queue``). The shared stream never
waits for a subscriber: when a buffer is full the subscription is dropped and its iterator raises
:class:`SlowConsumer`, while the others keep receiving. A catch-up reader does wait for its own
subscriber (it reads at that subscriber's pace); live records held during a catch-up are bounded
by ``max_queue`` too.

A fanout whose last subscriber left stays open until the registry closes: one idle consumer per
topic used since start is cheap, and the next socket needs no start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Final, Literal, Self, TypeAlias

from gateway.shared_reader import POLL_TIMEOUT_MS, read_forever
from sluice.errors import SluiceError
from sluice.events import Consumed, ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings

if TYPE_CHECKING:
    from sluice.application.model import TopicSpec

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "FanoutClosed",
    "FanoutRegistry",
    "Position",
    "RecordFilter",
    "SlowConsumer",
    "Subscription",
    "TopicFanout",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE: Final = 1000
DEFAULT_MAX_CATCHUP_READERS: Final = 4
_POLL_MAX_RECORDS: Final = 1000

RecordFilter: TypeAlias = Callable[[ConsumedRecord], bool]
"""Decides whether a subscriber gets a record (the gateway's header filters)."""

Position: TypeAlias = Literal["latest", "earliest"] | Mapping[int, int]
"""Where a subscription starts: ``"latest"``, ``"earliest"`` or ``{partition: next offset}``."""


class SlowConsumer(SluiceError, RuntimeError):
    """A subscriber fell ``max_queue`` records behind the shared stream and was dropped."""

    def __init__(self, topic: str, max_queue: int) -> None:
        super().__init__(
            f"subscriber of topic {topic!r} dropped: more than {max_queue} records "
            "waited for it (the client reads too slowly)"
        )
        self.topic = topic
        self.max_queue = max_queue


class FanoutClosed(SluiceError, RuntimeError):
    """The fanout is closed (gateway shutdown, or its consumer failed)."""


class Subscription:
    """One subscriber's view of a topic: an async iterator of matching records.

    Iteration ends (``StopAsyncIteration``) after :meth:`close` or when the fanout closes; it
    raises :class:`SlowConsumer` when the subscriber was dropped for falling behind, and the
    :class:`~sluice.errors.KafkaError` when reading failed. :attr:`positions` and
    :attr:`last_delivered` describe what the iterator has returned, for offset tokens.
    """

    def __init__(
        self,
        fanout: TopicFanout,
        matches: RecordFilter,
        *,
        max_queue: int,
        live_from: dict[int, int],
        positions: dict[int, int],
        catching_up: bool,
    ) -> None:
        self._fanout = fanout
        self._matches = matches
        self._max_queue = max_queue
        self._live_from = live_from
        self._positions = positions
        self._last_delivered: dict[int, int] = {}
        self._buffer: deque[ConsumedRecord] = deque()
        # Live records that arrive while a catch-up reader still reads older ones.
        self._held: deque[ConsumedRecord] | None = deque() if catching_up else None
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._ended = False
        self._error: BaseException | None = None
        self.catchup_task: asyncio.Task[None] | None = None

    @property
    def topic(self) -> str:
        return self._fanout.topic

    @property
    def positions(self) -> Mapping[int, int]:
        """Per partition, the next offset this subscription would deliver: a resume point that
        covers every partition (pass it back as ``position`` to continue after what was read)."""
        return MappingProxyType(self._positions)

    @property
    def last_delivered(self) -> Mapping[int, int]:
        """Per partition, the offset of the last record the iterator returned."""
        return MappingProxyType(self._last_delivered)

    @property
    def closed(self) -> bool:
        return self._ended

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ConsumedRecord:
        while True:
            if self._error is not None:
                raise self._error
            if self._buffer:
                record = self._buffer.popleft()
                self._space.set()
                self._positions[record.partition] = record.offset + 1
                self._last_delivered[record.partition] = record.offset
                return record
            if self._ended:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    async def close(self) -> None:
        """Leave the topic; a running catch-up reader is stopped."""
        task = self.catchup_task
        self._end(None)
        self._buffer.clear()
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- called by the fanout and the catch-up reader -------------------------------------------

    def accepts(self, record: ConsumedRecord) -> bool:
        try:
            return self._matches(record)
        except Exception as error:  # a broken filter ends this subscriber, not the fanout
            logger.exception("record filter of a subscriber of %r failed", self.topic)
            self._end(error)
            return False

    def offer_live(self, record: ConsumedRecord) -> None:
        """Hand a record of the shared stream over, without ever waiting."""
        if self._ended or record.offset < self._live_from.get(record.partition, 0):
            return
        if self._matches is not _everything and not self.accepts(record):
            return
        if self._held is not None:
            if len(self._held) >= self._max_queue:
                self._end(SlowConsumer(self.topic, self._max_queue))
                return
            self._held.append(record)
            return
        if len(self._buffer) >= self._max_queue:
            self._end(SlowConsumer(self.topic, self._max_queue))
            return
        self._buffer.append(record)
        self._ready.set()

    async def put_backlog(self, record: ConsumedRecord) -> None:
        """Hand a catch-up record over, waiting for room (the reader follows its subscriber)."""
        while len(self._buffer) >= self._max_queue and not self._ended:
            self._space.clear()
            await self._space.wait()
        if self._ended:
            return
        self._buffer.append(record)
        self._ready.set()

    def set_start(self, partition: int, offset: int) -> None:
        if partition not in self._last_delivered:
            self._positions[partition] = offset

    def finish_catchup(self) -> None:
        """The backlog is read: release the live records held meanwhile, in order."""
        held, self._held = self._held, None
        if held and not self._ended:
            self._buffer.extend(held)
            self._ready.set()

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._error = error
        if error is not None:
            self._buffer.clear()
        self._held = None
        self._ready.set()
        self._space.set()
        self._fanout.remove(self)
        task = self.catchup_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()


class TopicFanout:
    """The shared consumer of one topic and its subscribers (see the module docstring).

    ``async with TopicFanout(settings, topic) as fanout`` or :meth:`start` / :meth:`close`.
    ``catchup_readers_created`` counts the short-lived consumers made for backlogs.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topic: TopicSpec,
        *,
        max_catchup_readers: int = DEFAULT_MAX_CATCHUP_READERS,
    ) -> None:
        if max_catchup_readers < 1:
            raise ValueError("max_catchup_readers must be at least 1")
        self._settings = settings
        self._spec = topic
        self._consumer: Consumer | None = None
        self._dispatched: dict[int, int] = {}
        self._subscriptions: set[Subscription] = set()
        self._catchups: set[asyncio.Task[None]] = set()
        self._catchup_slots = asyncio.Semaphore(max_catchup_readers)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.catchup_readers_created = 0

    @property
    def topic(self) -> str:
        return self._spec.name

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def catchup_count(self) -> int:
        """Catch-up readers running now (each is a short-lived consumer of its own)."""
        return len(self._catchups)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    async def start(self) -> None:
        """Start the shared consumer at the end of every partition."""
        if self._consumer is not None or self._closed:
            raise FanoutClosed(f"the fanout of {self.topic!r} was already started")
        consumer = Consumer(self._settings, [self._spec], start_at="end")
        await consumer.start()
        try:
            for topic, partition in consumer.assignment():
                if topic == self.topic:
                    self._dispatched[partition] = await consumer.position(topic, partition)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer), name=f"fanout {self.topic}")

    async def close(self) -> None:
        """Stop the shared consumer and any catch-up reader; subscriptions end."""
        self._closed = True
        for subscription in tuple(self._subscriptions):
            subscription._end(None)
        tasks = [t for t in (self._task, *self._catchups) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
        await self.close()

    async def subscribe(
        self,
        matches: RecordFilter | None = None,
        *,
        position: Position = "latest",
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> Subscription:
        """A new subscriber of the records ``matches`` accepts (all when ``None``), from
        ``position`` on. Every record written after this returns will be delivered."""
        if self._closed or self._consumer is None:
            raise FanoutClosed(f"the fanout of {self.topic!r} is not running")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        # From here to the registration there is no await: the dispatch points read now are
        # exactly where the shared stream starts handing records to this subscriber.
        dispatched = dict(self._dispatched)
        live_from = dict(dispatched)
        positions = dict(dispatched)
        backlog: dict[int, int | None] = {}  # partition -> start (None: the beginning)
        if position == "earliest":
            # A partition whose dispatch point is 0 has nothing behind it.
            backlog = {partition: None for partition, end in dispatched.items() if end > 0}
            positions = dict.fromkeys(dispatched, 0)
        elif not isinstance(position, str):
            for partition, offset in position.items():
                if partition not in dispatched:
                    continue
                positions[partition] = max(offset, 0)
                if offset >= dispatched[partition]:
                    live_from[partition] = offset
                else:
                    backlog[partition] = max(offset, 0)
        subscription = Subscription(
            self,
            matches if matches is not None else _everything,
            max_queue=max_queue,
            live_from=live_from,
            positions=positions,
            catching_up=bool(backlog),
        )
        self._subscriptions.add(subscription)
        if backlog:
            until = {partition: dispatched[partition] for partition in backlog}
            task = asyncio.create_task(
                self._catch_up(subscription, backlog, until), name=f"catch-up {self.topic}"
            )
            subscription.catchup_task = task
            self._catchups.add(task)
            task.add_done_callback(self._catchups.discard)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    async def _run(self, consumer: Consumer) -> None:
        try:
            await self._dispatch_forever(consumer)
        except Exception as error:  # subscribers must not wait forever on a dead stream
            logger.exception("the shared consumer of %r stopped", self.topic)
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        self._closed = True
        for subscription in tuple(self._subscriptions):
            subscription._end(error)

    async def _dispatch_forever(self, consumer: Consumer) -> None:
        error = await read_forever(
            consumer,
            self._deliver,
            what=repr(self.topic),
            max_records=_POLL_MAX_RECORDS,
            log=logger,
        )
        logger.error("reading %r failed, closing its subscribers: %s", self.topic, error)
        self._fail(error)

    def _deliver(self, items: list[Consumed]) -> None:
        for item in items:
            self._dispatched[item.partition] = item.offset + 1
            if isinstance(item, ConsumedRecord):
                for subscription in tuple(self._subscriptions):
                    subscription.offer_live(item)

    async def _catch_up(
        self,
        subscription: Subscription,
        starts: Mapping[int, int | None],
        until: Mapping[int, int],
    ) -> None:
        """Read ``[start, until)`` of each partition for one subscriber, then hand it over to
        the shared stream (whose live point for it is ``until``)."""
        try:
            async with self._catchup_slots:
                if subscription.closed:
                    return
                reader = Consumer(self._settings, [self._spec], start_at="beginning")
                self.catchup_readers_created += 1
                async with reader:
                    await self._read_backlog(reader, subscription, starts, until)
            subscription.finish_catchup()
        except Exception as error:  # ends this subscriber only; the shared stream goes on
            logger.warning("catching up on %r failed: %s", self.topic, error)
            subscription._end(error)

    async def _read_backlog(
        self,
        reader: Consumer,
        subscription: Subscription,
        starts: Mapping[int, int | None],
        until: Mapping[int, int],
    ) -> None:
        topic = self.topic
        remaining: dict[int, int] = {}
        for partition, end in until.items():
            first = await reader.position(topic, partition)
            wanted = starts[partition]
            start = first if wanted is None else max(wanted, first)
            subscription.set_start(partition, start)
            if start < end:
                remaining[partition] = end
                reader.seek(topic, partition, start)
        # Partitions without backlog are parked at the live point: little to read there.
        for assigned_topic, partition in reader.assignment():
            if assigned_topic == topic and partition not in remaining:
                reader.seek(topic, partition, self._dispatched.get(partition, 0))
        while remaining and not subscription.closed:
            for item in await reader.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=500):
                stop = remaining.get(item.partition)
                if stop is None or item.offset >= stop or not isinstance(item, ConsumedRecord):
                    continue
                if subscription.accepts(item):
                    await subscription.put_backlog(item)
            for partition in tuple(remaining):
                if await reader.position(topic, partition) >= remaining[partition]:
                    del remaining[partition]


def _everything(record: ConsumedRecord) -> bool:
    return True


class FanoutRegistry:
    """The process's fanouts, one per topic, made on first use; :meth:`close` stops them all.

    ``consumers_created`` counts the shared consumers started (one per topic, plus one when a
    fanout whose consumer failed is replaced). Fanouts stay open without subscribers.
    """

    def __init__(
        self, settings: KafkaSettings, *, max_catchup_readers: int = DEFAULT_MAX_CATCHUP_READERS
    ) -> None:
        self._settings = settings
        self._max_catchup_readers = max_catchup_readers
        self._fanouts: dict[str, TopicFanout] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closed = False
        self.consumers_created = 0

    @property
    def fanouts(self) -> Mapping[str, TopicFanout]:
        return MappingProxyType(self._fanouts)

    async def get(self, topic: TopicSpec) -> TopicFanout:
        """The running fanout of ``topic``, started on first use.

        The start is shielded: a caller that goes away (a client that aborts its handshake)
        does not abort the shared consumer halfway, which would leak its connections.
        """
        fanout = self._fanouts.get(topic.name)
        if fanout is not None and not fanout.closed and not self._closed:
            return fanout
        return await asyncio.shield(self._get_or_start(topic))

    async def _get_or_start(self, topic: TopicSpec) -> TopicFanout:
        lock = self._locks.setdefault(topic.name, asyncio.Lock())
        async with lock:
            if self._closed:
                raise FanoutClosed("the fanout registry is closed")
            fanout = self._fanouts.get(topic.name)
            if fanout is not None and not fanout.closed:
                return fanout
            if fanout is not None:
                await fanout.close()
            fanout = TopicFanout(
                self._settings, topic, max_catchup_readers=self._max_catchup_readers
            )
            await fanout.start()
            self.consumers_created += 1
            self._fanouts[topic.name] = fanout
            return fanout

    async def close(self) -> None:
        self._closed = True
        fanouts, self._fanouts = list(self._fanouts.values()), {}
        for fanout in fanouts:
            await fanout.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
