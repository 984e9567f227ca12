"""Correlated replies for service gateways in topics mode: one shared consumer per output topic.

The gateway sets ``langstream-service-request-id: <uuid4>`` on the request, and the worker
carries the header to its outputs. A :class:`ReplyRouter` reads the output topic with ONE
group-less consumer, started at the end before any request is produced, and resolves the waiting
request by a dictionary lookup on that header: per request, one produce and one lookup, never a
consumer (docs/gateway.md, "Service gateways").

Use::

    pending = await router.expect(request_id, matches)  # before producing the request
    try:
        await producer.send(input_topic, request, source=...)
    except BaseException:
        pending.cancel()
        raise
    reply = await pending.wait(timeout)  # TimeoutError -> 504

The entry is removed whatever happens (reply, timeout, cancel, close), so nothing leaks; a reply
arriving after its request gave up is counted in ``late_replies`` and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from gateway.headers import SERVICE_REQUEST_ID_HEADER
from gateway.shared_reader import read_forever
from sluice.errors import SluiceError
from sluice.events import Consumed, ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings

if TYPE_CHECKING:
    from sluice.application.model import TopicSpec

__all__ = [
    "DEFAULT_MAX_PENDING",
    "PendingReply",
    "ReplyMatcher",
    "ReplyRouter",
    "ReplyRouterClosed",
    "TooManyPending",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_PENDING: Final = 10_000

ReplyMatcher = Callable[[ConsumedRecord], bool]
"""Further conditions on a reply (the service-options headers), beyond the request id."""


class TooManyPending(SluiceError, RuntimeError):
    """``max_pending`` requests already wait for a reply (503 with Retry-After)."""

    retriable = True

    def __init__(self, topic: str, max_pending: int) -> None:
        super().__init__(
            f"{max_pending} service requests already wait for a reply on topic {topic!r}"
        )
        self.topic = topic
        self.max_pending = max_pending


class ReplyRouterClosed(SluiceError, RuntimeError):
    """The router stopped (gateway shutdown, or its consumer failed) before a reply came."""


class PendingReply:
    """A request waiting for its reply; made by :meth:`ReplyRouter.expect`."""

    def __init__(
        self,
        router: ReplyRouter,
        request_id: str,
        matches: ReplyMatcher | None,
        future: asyncio.Future[ConsumedRecord],
    ) -> None:
        self._router = router
        self.request_id = request_id
        self.matches = matches
        self.future = future

    # The deadline is the request's own (option:timeout), so it belongs to the call.
    async def wait(self, timeout: float | None) -> ConsumedRecord:  # noqa: ASYNC109
        """The reply; raises :class:`TimeoutError` after ``timeout`` seconds and
        :class:`ReplyRouterClosed` when the router closes first. Always removes the entry."""
        if self.future.cancelled():
            raise RuntimeError(f"request {self.request_id!r} already stopped waiting for a reply")
        try:
            return await asyncio.wait_for(asyncio.shield(self.future), timeout)
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop waiting (the request could not be produced, say); idempotent."""
        self._router.forget(self)
        if not self.future.done():
            self.future.cancel()


class ReplyRouter:
    """The shared reply consumer of one output topic and its pending requests.

    ``async with ReplyRouter(settings, topic) as router`` or :meth:`start` / :meth:`close`.
    """

    def __init__(
        self, settings: KafkaSettings, topic: TopicSpec, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._settings = settings
        self._spec = topic
        self._max_pending = max_pending
        self._pending: dict[str, PendingReply] = {}
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.late_replies = 0
        """Replies whose request had already given up (timeout, cancel) or never existed."""

    @property
    def topic(self) -> str:
        return self._spec.name

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def max_pending(self) -> int:
        return self._max_pending

    async def start(self) -> None:
        """Start the consumer at the end of every partition (positions resolved on return)."""
        if self._consumer is not None or self._closed:
            raise ReplyRouterClosed(f"the reply router of {self.topic!r} was already started")
        consumer = Consumer(self._settings, [self._spec], start_at="end")
        await consumer.start()
        try:
            for topic, partition in consumer.assignment():
                await consumer.position(topic, partition)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer), name=f"replies {self.topic}")

    async def close(self) -> None:
        """Stop the consumer; requests still waiting fail with :class:`ReplyRouterClosed`."""
        self._closed = True
        self._fail_all(ReplyRouterClosed(f"the reply router of {self.topic!r} closed"))
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
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

    async def expect(self, request_id: str, matches: ReplyMatcher | None = None) -> PendingReply:
        """Register a request before producing it; its reply is the first record of the output
        topic with ``langstream-service-request-id: request_id`` that ``matches`` accepts."""
        if self._closed or self._consumer is None:
            raise ReplyRouterClosed(f"the reply router of {self.topic!r} is not running")
        if request_id in self._pending:
            raise ValueError(f"request id {request_id!r} is already waiting for a reply")
        if len(self._pending) >= self._max_pending:
            raise TooManyPending(self.topic, self._max_pending)
        future: asyncio.Future[ConsumedRecord] = asyncio.get_running_loop().create_future()
        pending = PendingReply(self, request_id, matches, future)
        self._pending[request_id] = pending
        return pending

    def forget(self, pending: PendingReply) -> None:
        if self._pending.get(pending.request_id) is pending:
            del self._pending[pending.request_id]

    def _dispatch(self, record: ConsumedRecord) -> None:
        request_id = record.record.headers.get(SERVICE_REQUEST_ID_HEADER)
        if request_id is None:
            return
        pending = self._pending.get(request_id)
        if pending is None or pending.future.done():
            self.late_replies += 1
            return
        if pending.matches is not None:
            try:
                accepted = pending.matches(record)
            except Exception as error:  # a broken matcher fails its request, not the router
                del self._pending[request_id]
                pending.future.set_exception(error)
                pending.future.exception()  # retrieved here; its waiter still gets it
                return
            if not accepted:
                return
        del self._pending[request_id]
        pending.future.set_result(record)

    def _fail_all(self, error: Exception) -> None:
        pending, self._pending = list(self._pending.values()), {}
        for entry in pending:
            if not entry.future.done():
                entry.future.set_exception(error)
                # A waiter still gets the error; one that already gave up must not leave a
                # "Future exception was never retrieved" behind.
                entry.future.exception()

    async def _run(self, consumer: Consumer) -> None:
        error = await read_forever(
            consumer, self._deliver, what=f"replies from {self.topic!r}", log=logger
        )
        logger.error("reading replies from %r failed: %s", self.topic, error)
        self._closed = True
        self._fail_all(ReplyRouterClosed(f"reading replies from {self.topic!r} failed"))

    def _deliver(self, items: list[Consumed]) -> None:
        for item in items:
            if isinstance(item, ConsumedRecord):
                self._dispatch(item)
