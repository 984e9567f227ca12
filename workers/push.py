"""Push mode: an executor fed one event per HTTP request (Knative's KafkaSource), not by polling.

The same chain and error policy as pull mode (:mod:`workers.pull`), with the answer taking the
place of the offset commit: KafkaSource treats a 2xx as done and retries anything else, so an
event is answered 2xx only once its effects are acknowledged by Kafka.

======================================  =========================================================
what happened                           answer (:class:`Answer`)
======================================  =========================================================
processed, outputs acknowledged         204, outcome ``done``
the agent raised ``SkipRecord``         204, outcome ``skipped``
failed, ``on-failure: skip``            204, outcome ``skipped``
failed, ``on-failure: dead-letter``     204, outcome ``dead-lettered``, once the dead letter is
                                        acknowledged
failed, ``on-failure: fail``            500: KafkaSource retries it (``fail`` maps to a very
                                        large retry count on Knative), the worker keeps serving
an output that cannot be encoded, or    a failure of the event, without retries: as the three
larger than the output topic takes      rows above, by ``on-failure``
malformed event                         400 (not retried by KafkaSource), after its dead letter
                                        when ``on-failure: dead-letter``
an output or dead letter not written    503 (Kafka unavailable; retried)
the agent raised ``FatalError``         500, and the worker stops (exit 1), as in pull mode
======================================  =========================================================

Agents are called one event at a time, as in pull mode (agents are not required to be
reentrant), or up to the chain's ``window`` at once when an agent gathers records into batches
(``compute-ai-embeddings`` with a ``flush-interval``); writing and acknowledging outputs is not
serialised, so a slow acknowledgement does not hold the next event back. Per-partition order is
KafkaSource's: with ``ordering: ordered`` it sends the next event of a partition only after this
one's 2xx.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from sluice.application.model import ErrorsSpec, TopicSpec
from sluice.errors import KafkaError
from sluice.events import Consumed, ConsumedRecord, Undecodable
from sluice.kafka import Producer, SendResult
from sluice.record import Record
from workers.chain import Chain
from workers.errors import ExecutorFailed
from workers.health import Observer
from workers.outputs import BAD_OUTPUT, encode_outputs
from workers.policy import (
    Backoff,
    DeadLetter,
    Done,
    Drop,
    Failed,
    Skipped,
    Stop,
    after_failure,
    attempt,
    describe,
)

__all__ = ["Answer", "Outcome", "PushExecutor", "PushSettings"]

log = logging.getLogger("sluice.worker")

Outcome = Literal["done", "skipped", "dead-lettered", "malformed", "failed", "unavailable"]

_Write = Callable[[], Awaitable[asyncio.Future[SendResult]]]


@dataclass(frozen=True)
class PushSettings:
    input_topic: TopicSpec
    """The topic KafkaSource reads for this executor: its schema decodes pushed values."""
    output_topic: str | None
    dead_letter_topic: str | None
    errors: ErrorsSpec
    source: str
    """CloudEvent source of the outputs: ``/{tenant}/{application}/agents/{agent-id}``."""
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True)
class Answer:
    """What the push endpoint answers for one event; ``detail`` says why for non-2xx."""

    status: int
    outcome: Outcome
    detail: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class PushExecutor:
    """Runs the chain for pushed events. ``failure`` is set once a ``FatalError`` was raised;
    ``on_fatal`` is then called (the worker stops)."""

    def __init__(
        self,
        settings: PushSettings,
        producer: Producer,
        chain: Chain,
        observe: Observer | None = None,
        on_fatal: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._producer = producer
        self._chain = chain
        self._observe = observe or (lambda _name, _count: None)
        self._on_fatal = on_fatal or (lambda: None)
        self._agents = asyncio.Semaphore(chain.window)
        self.failure: ExecutorFailed | None = None

    @property
    def settings(self) -> PushSettings:
        return self._settings

    async def handle(self, item: Consumed) -> Answer:
        """Process one decoded event (see the module's table for the answers)."""
        self._observe("in", 1)
        if isinstance(item, Undecodable):
            return await self._malformed(item)
        what = f"event {item.event_id or '(no id)'} from {item.event_source or '?'}"
        if self.failure is not None:
            return Answer(500, "failed", f"the executor stopped: {self.failure}")
        record = item.record
        started = time.perf_counter()
        try:
            async with self._agents:
                outcome = await attempt(
                    lambda: self._chain.run(record),
                    self._settings.errors,
                    self._settings.backoff,
                    what=what,
                )
        except ExecutorFailed as error:
            log.error("%s", error)
            self.failure = error
            self._on_fatal()
            return Answer(500, "failed", str(error))
        self._observe("seconds", time.perf_counter() - started)
        if isinstance(outcome, Done):
            return await self._outputs(item, outcome.value, what)
        if isinstance(outcome, Skipped):
            return Answer(204, "skipped")
        return await self._failed(item, outcome, what)

    async def _outputs(self, item: ConsumedRecord, records: list[Record], what: str) -> Answer:
        try:
            routed = await encode_outputs(
                self._producer, self._settings.output_topic, records, source=self._settings.source
            )
        except BAD_OUTPUT as error:
            # Kafka would refuse it on every redelivery, so a 503 would have KafkaSource send it
            # forever: it is a failure of the event, through the policy.
            return await self._failed(item, Failed(error, 1), what)
        if not routed:
            return Answer(204, "done")
        writes: list[_Write] = [
            (lambda t=t, m=m: self._producer.enqueue_message(t, m))  # type: ignore[misc]
            for t, m in routed
        ]
        failure = await self._write(writes, "output")
        if failure is not None:
            return failure
        self._observe("out", len(routed))
        return Answer(204, "done")

    async def _failed(self, item: ConsumedRecord, failed: Failed, what: str) -> Answer:
        self._observe("error", 1)
        summary = f"{what} failed after {failed.attempts} attempt(s): {describe(failed)}"
        decision = self._after(item, failed)
        if isinstance(decision, Drop):
            log.warning("%s; skipped", summary)
            return Answer(204, "skipped")
        if isinstance(decision, DeadLetter):
            log.warning("%s; sent to %s", summary, decision.topic)
            failure = await self._dead_letter(decision)
            return failure or Answer(204, "dead-lettered")
        log.warning(
            "%s; answered 500 for a retry (errors.on-failure is %s)",
            summary,
            self._settings.errors.on_failure,
        )
        return Answer(500, "failed", summary)

    async def _malformed(self, item: Undecodable) -> Answer:
        self._observe("undecodable", 1)
        log.warning("malformed event: %s", item.reason)
        # Answered 400 whatever the policy: KafkaSource must not retry it; dead-lettered first
        # when the policy says so.
        decision = self._after(item, Failed(ValueError(item.reason), 1), reason=item.reason)
        if isinstance(decision, DeadLetter):
            failure = await self._dead_letter(decision)
            if failure is not None:
                return failure
        return Answer(400, "malformed", item.reason)

    def _after(
        self, item: Consumed, failed: Failed, reason: str | None = None
    ) -> Drop | DeadLetter | Stop:
        settings = self._settings
        return after_failure(
            item,
            failed,
            settings.errors,
            settings.dead_letter_topic,
            source=settings.source,
            reason=reason,
        )

    async def _dead_letter(self, decision: DeadLetter) -> Answer | None:
        """Write the dead letter; None once acknowledged, else the answer saying why not."""
        topic, message = decision.topic, decision.message
        failure = await self._write(
            [lambda: self._producer.enqueue_message(topic, message)], "dead letter"
        )
        if failure is None:
            self._observe("dead_letter", 1)
        return failure

    async def _write(self, writes: list[_Write], what: str) -> Answer | None:
        """Enqueue in order, then await every acknowledgement; None when all were written."""
        acks: list[asyncio.Future[SendResult]] = []
        problem: BaseException | None = None
        try:
            for write in writes:
                acks.append(await write())
        except KafkaError as error:
            problem = error
        results = await asyncio.gather(*acks, return_exceptions=True)
        if problem is None:
            problem = next((r for r in results if isinstance(r, BaseException)), None)
        if problem is None:
            return None
        if isinstance(problem, asyncio.CancelledError):
            raise problem
        log.warning("%s not written: %s: %s", what, type(problem).__name__, problem)
        return Answer(503, "unavailable", f"{what} not acknowledged by Kafka: {problem}")
