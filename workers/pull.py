"""Pull mode: an executor reading its input topic as a member of a consumer group.

At-least-once: a record is *finished* when every output (or its dead letter) is acknowledged by
Kafka; offsets are committed only up to contiguous finished records, periodically, on
revocation and on shutdown. Records of a partition are processed in order; their writes are
pipelined, so a slow acknowledgement does not stall processing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sluice.application.model import ErrorsSpec, TopicSpec
from sluice.events import Consumed, Undecodable, UnencodableRecord, WireMessage, to_kafka
from sluice.kafka.client import Consumer, Partition, Producer, RebalanceListener, SendResult
from sluice.kafka.producer import RECORD_OVERHEAD, RecordTooLarge, encoded_size
from sluice.record import Record
from workers.chain import Chain
from workers.deadletter import dead_letter
from workers.errors import ExecutorFailed
from workers.offsets import OffsetTracker
from workers.policy import Backoff, Done, Failed, Skipped, attempt

log = logging.getLogger("sluice.worker")


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
    drain_timeout: float = 20.0
    fault_kill_after: int | None = None
    """Test hook: SIGKILL this process once this many records are finished, before commit."""


Observer = Callable[[str, float], None]
"""Told ``(kind, amount)``: in, out, error, undecodable, dead_letter counts; seconds."""


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
        self.ready = False

    # -- the loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        consumer = self._consumer_factory(self)
        self._consumer = consumer
        await consumer.start()
        self.ready = True
        last_commit = time.monotonic()
        try:
            try:
                while not stop.is_set():
                    self._raise_failure()
                    items = await consumer.poll(
                        timeout_ms=200, max_records=self._settings.poll_records
                    )
                    for item in items:
                        if stop.is_set():
                            break  # not started: it stays uncommitted and is read again later
                        await self._handle(item)
                    if time.monotonic() - last_commit >= self._settings.commit_interval:
                        await self._commit()
                        last_commit = time.monotonic()
            finally:
                # Also when failing: what finished before the failure is committed, so only the
                # failed record (and what followed it) is read again after the restart.
                await self._drain()
                await self._commit_quietly()
            self._raise_failure()
        finally:
            self.ready = False
            await self._cancel_writes()
            self._consumer = None
            await consumer.stop()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure = self._failure
            raise ExecutorFailed(f"{failure}") from failure

    async def _handle(self, item: Consumed) -> None:
        partition: Partition = (item.topic, item.partition)
        while self._tracker.in_flight() >= self._settings.max_in_flight:
            self._room.clear()
            await self._room.wait()
        self._tracker.started(partition, item.offset)
        self._observe("in", 1)
        effects = await self._effects(item)
        # Buffered in order by this one task; their acknowledgements are awaited together.
        acks = [await effect() for effect in effects]
        writes = asyncio.gather(*acks)
        self._writes.add(writes)
        writes.add_done_callback(lambda done: self._acknowledged(done, item.offset, partition))

    async def _effects(
        self, item: Consumed
    ) -> list[Callable[[], Awaitable[asyncio.Future[SendResult]]]]:
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
            output = self._settings.output_topic
            if output is None:
                return []
            try:
                messages = await self._encode(output, outcome.value)
            except (UnencodableRecord, RecordTooLarge) as error:
                # Writing them would fail the same way every time: a bad record, not an outage.
                return self._on_failure(item, Failed(error, 1), error, what)
            self._observe("out", len(messages))
            return [
                (lambda m=m: self._producer.enqueue_message(output, m))  # type: ignore[misc]
                for m in messages
            ]
        if isinstance(outcome, Skipped):
            return []
        return self._on_failure(item, outcome, reason, what)

    async def _encode(self, topic: str, records: list[Record]) -> list[WireMessage]:
        """The outputs as Kafka messages; RecordTooLarge for one over the topic's limit."""
        source = self._settings.source
        messages = [to_kafka(record, source=source) for record in records]
        if messages:
            limit = await self._producer.record_limit(topic) - RECORD_OVERHEAD
            for message in messages:
                size = encoded_size(message)
                if size > limit:
                    raise RecordTooLarge(
                        f"an output is {size} bytes once encoded; topic {topic} takes records "
                        f"up to {limit} bytes",
                        topic=topic,
                    )
        return messages

    def _on_failure(
        self, item: Consumed, failed: Failed, reason: BaseException | str, what: str
    ) -> list[Callable[[], Awaitable[asyncio.Future[SendResult]]]]:
        error = failed.error
        self._observe("error", 1)
        policy = self._settings.errors.on_failure
        if policy == "skip":
            log.warning(
                "%s skipped after %d attempt(s): %s: %s",
                what,
                failed.attempts,
                type(error).__name__,
                error,
            )
            return []
        if policy == "dead-letter" and self._settings.dead_letter_topic is not None:
            topic = self._settings.dead_letter_topic
            message = dead_letter(item, reason, source=self._settings.source)
            log.warning(
                "%s sent to %s after %d attempt(s): %s: %s",
                what,
                topic,
                failed.attempts,
                type(error).__name__,
                error,
            )
            self._observe("dead_letter", 1)
            return [lambda: self._producer.enqueue_message(topic, message)]
        raise ExecutorFailed(
            f"{what} failed after {failed.attempts} attempt(s) and errors.on-failure is fail: "
            f"{type(error).__name__}: {error}"
        ) from error

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
            return
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
        await self._drain()
        try:
            await self._commit(only=partitions)
        except Exception as error:  # the group moved on: the new owner redoes that work
            log.warning("could not commit revoked partitions: %s", error)
        self._tracker.forget(partitions)

    async def on_assigned(self, partitions: frozenset[Partition]) -> None:
        log.info("assigned %s", ", ".join(f"{t}/{p}" for t, p in sorted(partitions)) or "nothing")
