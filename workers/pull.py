"""Pull mode: an executor reading its input topic as a member of a consumer group.

At-least-once: a record is *finished* when every output (or its dead letter) is acknowledged by
Kafka; offsets are committed only up to contiguous finished records, periodically, on
revocation and on shutdown. Records of a partition are processed in order; their writes are
pipelined, so a slow acknowledgement does not stall processing.

Polling and processing are two tasks: the group measures ``max.poll.interval.ms`` between polls,
so the poll loop keeps polling while an agent works on a slow record (the member stays in the
group and its records are not handed to another member and processed again). Fetched records wait
in a bounded queue; when it is full the partitions are paused and the loop polls only to stay a
member.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sluice.application.model import ErrorsSpec, TopicSpec
from sluice.errors import KafkaError
from sluice.events import Consumed, Undecodable
from sluice.kafka import Consumer, Partition, Producer, RebalanceListener, SendResult
from sluice.record import Record
from workers.chain import Chain
from workers.errors import ExecutorFailed
from workers.health import Observer
from workers.offsets import OffsetTracker
from workers.outputs import BAD_OUTPUT, encode_outputs
from workers.policy import (
    Backoff,
    DeadLetter,
    Done,
    Drop,
    Failed,
    Skipped,
    after_failure,
    attempt,
    describe,
    stopped,
)

log = logging.getLogger("sluice.worker")

Effects = list[Callable[[], Awaitable[asyncio.Future[SendResult]]]]
"""What must be acknowledged before a record is finished: its outputs or its dead letter."""


@dataclass(frozen=True)
class PullSettings:
    group_id: str
    input_topic: TopicSpec
    output_topic: str | None
    dead_letter_topic: str | None
    errors: ErrorsSpec
    source: str
    """CloudEvent source of the outputs: ``/{tenant}/{application}/agents/{agent-id}``."""
    backoff: Backoff = field(default_factory=Backoff)
    commit_interval: float = 0.5
    max_in_flight: int = 1000
    poll_records: int = 200
    max_queued: int = 400
    """Records fetched and not yet started; the partitions are paused above it."""
    keep_alive: float = 0.5
    """Seconds between polls while the partitions are paused (well under any poll interval)."""
    drain_timeout: float = 20.0
    fault_kill_after: int | None = None
    """Test hook: SIGKILL this process once this many records are finished, before commit."""


class PullExecutor(RebalanceListener):
    """Runs one planned executor against its input topic until ``stop`` is set."""

    def __init__(
        self,
        settings: PullSettings,
        consumer_factory: Callable[[RebalanceListener], Consumer],
        producer: Producer,
        chain: Chain,
        observe: Observer | None = None,
    ) -> None:
        self._settings = settings
        self._consumer_factory = consumer_factory
        self._producer = producer
        self._chain = chain
        self._observe = observe or (lambda _name, _count: None)
        self._tracker = OffsetTracker()
        self._consumer: Consumer | None = None
        self._writes: set[asyncio.Future[list[SendResult]]] = set()
        self._room = asyncio.Event()
        self._failure: BaseException | None = None
        self._finished = 0
        self._queue: deque[Consumed] = deque()
        self._queued = asyncio.Event()
        """Set when the processing task has something to look at: records, stop or failure."""
        self._drained = asyncio.Event()
        """Set when the queue went down to half its bound: the poll loop fetches again."""
        self._running: dict[Partition, int] = {}
        """Records started and not yet handed to the producer, per partition."""
        self._handed = asyncio.Event()
        """Set whenever a started record's outputs were handed to the producer."""
        self.ready = False

    # -- the loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        consumer = self._consumer_factory(self)
        self._consumer = consumer
        await consumer.start()
        self.ready = True
        processing = asyncio.create_task(self._process(stop))
        try:
            try:
                await self._poll(consumer, processing, stop)
            finally:
                # Also when failing: what finished before the failure is committed, so only the
                # failed record (and what followed it) is read again after the restart.
                if not processing.done():
                    processing.cancel()
                await asyncio.wait({processing})
                await self._drain()
                await self._commit_quietly()
            if not processing.cancelled() and processing.exception() is not None:
                raise processing.exception()  # type: ignore[misc]
            self._raise_failure()
        finally:
            self.ready = False
            await self._cancel_writes()
            self._queue.clear()
            self._consumer = None
            await consumer.stop()

    async def _poll(
        self, consumer: Consumer, processing: asyncio.Task[None], stop: asyncio.Event
    ) -> None:
        """Fetch into the queue, commit now and then, until the processing task ends."""
        settings = self._settings
        paused = False
        last_commit = time.monotonic()
        while not processing.done():
            stopping = stop.is_set() or self._failure is not None
            if stopping:
                self._queued.set()  # the processing task ends after its current record
            if len(self._queue) >= settings.max_queued:
                paused = True
            elif len(self._queue) <= settings.max_queued // 2:
                paused = False
            if stopping or paused:
                # Polled only so that the group keeps this member: nothing new is fetched.
                consumer.pause(consumer.assignment())
                self._drained.clear()
                drained = asyncio.ensure_future(self._drained.wait())
                try:
                    await asyncio.wait(
                        {processing, drained},
                        timeout=settings.keep_alive,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    drained.cancel()
                if processing.done():
                    break
                items = await consumer.poll(timeout_ms=0)
            else:
                consumer.resume()
                items = await consumer.poll(timeout_ms=200, max_records=settings.poll_records)
            if items and not stopping:
                # Records of partitions revoked while the poll returned belong to another member.
                assigned = consumer.assignment()
                self._queue.extend(i for i in items if (i.topic, i.partition) in assigned)
                self._queued.set()
            # Records polled while stopping (a partition assigned meanwhile) were never started:
            # they stay uncommitted and are read again later.
            if time.monotonic() - last_commit >= settings.commit_interval:
                try:
                    await self._commit()
                except KafkaError as error:
                    # The group moved on meanwhile (a broker restart, a rebalance): the offsets
                    # stay to commit, and what the next owner reads again is a duplicate, not a
                    # loss. Ending the worker here would only restart it.
                    log.warning("commit failed (tried again at the next one): %s", error)
                last_commit = time.monotonic()

    async def _process(self, stop: asyncio.Event) -> None:
        """Handle queued records in order until ``stop`` or a failed write.

        Up to the chain's ``window`` records are in the agents at once (a batching agent
        gathers several records into one model call); their outputs are handed to the producer
        strictly in input order, and a record is finished only when they are acknowledged.
        """
        # Room for more records comes only from records this loop hands over: a window as large
        # as max_in_flight would wait for room that only its own handing over can make.
        window = max(1, min(self._chain.window, self._settings.max_in_flight // 2))
        running: deque[tuple[Consumed, asyncio.Future[Effects]]] = deque()
        try:
            while True:
                if self._failure is not None:
                    return  # what is not written stays uncommitted and is read again later
                while running and running[0][1].done():
                    item, head = running.popleft()
                    await self._hand_over(item, head.result())
                can_start = len(running) < window and not stop.is_set()
                if self._queue and can_start:
                    item = self._queue.popleft()
                    if len(self._queue) <= self._settings.max_queued // 2:
                        self._drained.set()
                    if not await self._room_for_one():
                        return  # not started: read again after the restart
                    self._start(item)
                    if window == 1:  # the common case: no task per record
                        await self._hand_over(item, await self._effects(item))
                    else:
                        running.append((item, asyncio.ensure_future(self._effects(item))))
                elif running:
                    # The oldest record is still in the agents (a batch filling up, say): wait
                    # for it, or for new records to start meanwhile while there is room.
                    waiting: set[asyncio.Future[Any]] = {running[0][1]}
                    if can_start:
                        self._queued.clear()
                        waiting.add(asyncio.ensure_future(self._queued.wait()))
                    try:
                        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for future in waiting - {running[0][1]}:
                            future.cancel()
                elif stop.is_set():
                    return  # what is not started stays uncommitted and is read again later
                else:
                    self._queued.clear()
                    await self._queued.wait()
        finally:
            for _, effects in running:
                effects.cancel()
            if running:
                await asyncio.wait({effects for _, effects in running})
                for item, effects in running:
                    if not effects.cancelled():
                        effects.exception()  # retrieved: the record is read again anyway
                    self._not_running(item)

    async def _room_for_one(self) -> bool:
        """Wait until fewer than ``max_in_flight`` records are unfinished; False on failure."""
        while self._tracker.in_flight() >= self._settings.max_in_flight:
            if self._failure is not None:
                return False
            self._room.clear()
            await self._room.wait()
        return True

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure = self._failure
            raise ExecutorFailed(f"{failure}") from failure

    def _start(self, item: Consumed) -> None:
        partition: Partition = (item.topic, item.partition)
        self._tracker.started(partition, item.offset)
        self._running[partition] = self._running.get(partition, 0) + 1
        self._observe("in", 1)

    def _not_running(self, item: Consumed) -> None:
        partition: Partition = (item.topic, item.partition)
        left = self._running.get(partition, 0) - 1
        if left > 0:
            self._running[partition] = left
        else:
            self._running.pop(partition, None)
        self._handed.set()

    async def _hand_over(self, item: Consumed, effects: Effects) -> None:
        """Buffer ``item``'s writes in order; it is finished when all are acknowledged."""
        partition: Partition = (item.topic, item.partition)
        try:
            # Buffered in order by this one task; their acknowledgements are awaited together.
            acks = [await effect() for effect in effects]
        finally:
            self._not_running(item)
        if not acks:  # nothing to wait for (a sink's record, a skipped one): finished now
            self._finish(partition, item.offset)
            return
        writes = asyncio.gather(*acks)
        self._writes.add(writes)
        writes.add_done_callback(lambda done: self._acknowledged(done, item.offset, partition))

    async def _effects(self, item: Consumed) -> Effects:
        """What must be acknowledged before ``item`` is finished: outputs or a dead letter."""
        what = f"record {item.topic}/{item.partition}@{item.offset}"
        if isinstance(item, Undecodable):
            self._observe("undecodable", 1)
            outcome: Done[list[Record]] | Skipped | Failed = Failed(
                ValueError(f"undecodable record: {item.reason}"), 1
            )
            reason: BaseException | str = item.reason
        else:
            record = item.record
            started = time.perf_counter()
            outcome = await attempt(
                lambda: self._chain.run(record),
                self._settings.errors,
                self._settings.backoff,
                what=what,
            )
            self._observe("seconds", time.perf_counter() - started)
            reason = outcome.error if isinstance(outcome, Failed) else ""
        if isinstance(outcome, Done):
            try:
                routed = await encode_outputs(
                    self._producer,
                    self._settings.output_topic,
                    outcome.value,
                    source=self._settings.source,
                )
            except BAD_OUTPUT as error:
                # Writing them would fail the same way every time: a bad record, not an outage.
                return self._on_failure(item, Failed(error, 1), error, what)
            self._observe("out", len(routed))
            return [
                (lambda t=t, m=m: self._producer.enqueue_message(t, m))  # type: ignore[misc]
                for t, m in routed
            ]
        if isinstance(outcome, Skipped):
            return []
        return self._on_failure(item, outcome, reason, what)

    def _on_failure(
        self, item: Consumed, failed: Failed, reason: BaseException | str, what: str
    ) -> Effects:
        self._observe("error", 1)
        settings = self._settings
        decision = after_failure(
            item,
            failed,
            settings.errors,
            settings.dead_letter_topic,
            source=settings.source,
            reason=reason,
        )
        if isinstance(decision, Drop):
            log.warning(
                "%s skipped after %d attempt(s): %s", what, failed.attempts, describe(failed)
            )
            return []
        if isinstance(decision, DeadLetter):
            topic, message = decision.topic, decision.message
            log.warning(
                "%s sent to %s after %d attempt(s): %s",
                what,
                topic,
                failed.attempts,
                describe(failed),
            )
            self._observe("dead_letter", 1)
            return [lambda: self._producer.enqueue_message(topic, message)]
        raise stopped(what, failed) from failed.error

    def _acknowledged(
        self, writes: asyncio.Future[list[SendResult]], offset: int, partition: Partition
    ) -> None:
        self._writes.discard(writes)
        if writes.cancelled():
            return
        error = writes.exception()
        if error is not None:
            if self._failure is None:
                self._failure = error
            self._queued.set()
            self._room.set()
            return
        self._finish(partition, offset)

    def _finish(self, partition: Partition, offset: int) -> None:
        """Every effect of the record at ``offset`` is acknowledged: it may be committed."""
        self._tracker.finished(partition, offset)
        self._finished += 1
        kill_after = self._settings.fault_kill_after
        if kill_after is not None and self._finished >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        self._room.set()

    # -- offsets ---------------------------------------------------------------------------------

    async def _commit(self, only: frozenset[Partition] | None = None) -> None:
        consumer = self._consumer
        points = self._tracker.to_commit()
        if only is not None:
            points = {p: o for p, o in points.items() if p in only}
        if consumer is None or not points:
            return
        await consumer.commit(points)
        self._tracker.committed(points)

    async def _commit_quietly(self) -> None:
        try:
            await self._commit()
        except Exception as error:
            log.warning("final commit failed (the records will be read again): %s", error)

    async def _drain(self) -> None:
        if not self._writes:
            return
        _, pending = await asyncio.wait(set(self._writes), timeout=self._settings.drain_timeout)
        if pending:
            log.warning(
                "%d write(s) still unacknowledged after %.0fs; their inputs stay "
                "uncommitted and will be read again",
                len(pending),
                self._settings.drain_timeout,
            )

    async def _cancel_writes(self) -> None:
        for writes in list(self._writes):
            writes.cancel()
        self._writes.clear()

    async def on_revoked(self, partitions: frozenset[Partition]) -> None:
        # Their queued records are read again by the next owner (or by this member, from the
        # committed offset, if the partitions come back). Records already in the agents are
        # handed over first, so a rebalance does not process them twice.
        self._queue = deque(i for i in self._queue if (i.topic, i.partition) not in partitions)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._handed_over(partitions), self._settings.drain_timeout)
        await self._drain()
        try:
            await self._commit(only=partitions)
        except Exception as error:  # the group moved on: the new owner redoes that work
            log.warning("could not commit revoked partitions: %s", error)
        self._tracker.forget(partitions)

    async def _handed_over(self, partitions: frozenset[Partition]) -> None:
        """Return once no record of ``partitions`` is in the agents any more."""
        while not self._running.keys().isdisjoint(partitions):
            self._handed.clear()
            await self._handed.wait()

    async def on_assigned(self, partitions: frozenset[Partition]) -> None:
        log.info("assigned %s", ", ".join(f"{t}/{p}" for t, p in sorted(partitions)) or "nothing")
