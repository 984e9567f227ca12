"""The agent SDK: base classes users subclass, the context they get, control-flow exceptions.

Every hook has a no-op default and may be written as ``def`` or ``async def``: the runtime looks
at each hook once, when it loads the class, and runs blocking ones in a worker thread so they
never stall the event loop.

A processor that uppercases every value::

    from sluice import Processor, Record

    class Upper(Processor):
        def process(self, record: Record) -> Record:
            return record.with_value(str(record.value).upper())

Headers of the input record are carried to the outputs by the runtime unless the agent sets the
same header itself, so gateway session ids and service correlation ids survive your code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol

from sluice.errors import SluiceError
from sluice.record import Record

# Loose on purpose: Starlette, FastAPI, Quart and LangServe type their scopes differently.
ASGIApp = Callable[..., Awaitable[None]]


class TopicProducer(Protocol):
    """Writes records to any topic of the application, outside the agent's own output."""

    def write(self, topic: str, record: Record) -> Future[None]:
        """Send from sync code; the future completes when Kafka acknowledged the record."""
        ...

    async def awrite(self, topic: str, record: Record) -> None:
        """Send from async code; returns when Kafka acknowledged the record."""
        ...


class AgentContext:
    """What an agent knows about where it runs. Built by the runtime; passed to ``init``."""

    def __init__(
        self,
        *,
        agent_id: str,
        tenant: str,
        application: str,
        globals: Mapping[str, Any] | None = None,
        port: int | None = None,
        state_directory: str | None = None,
        topic_producer: TopicProducer | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.tenant = tenant
        self.application = application
        self.globals: Mapping[str, Any] = dict(globals or {})
        self.port = port
        self._state_directory = state_directory
        self._topic_producer = topic_producer

    def get_persistent_state_directory(self) -> str | None:
        """A directory that survives restarts and redeploys, or None without ``resources.disk``.

        Locally it is ``<state-root>/<tenant>/<application>/<agent-id>``; on Knative the
        PersistentVolumeClaim mounted at ``/persistent-state/<agent-id>``.
        """
        return self._state_directory

    def get_topic_producer(self) -> TopicProducer:
        """A producer for writing to other topics (the runtime's shared, idempotent one)."""
        if self._topic_producer is None:
            raise SluiceError(f"agent {self.agent_id} has no topic producer in this context")
        return self._topic_producer


class Agent:
    """Hooks shared by every agent. Override what you need; each default does nothing."""

    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        """Called once with the agent's ``configuration`` block and its context."""

    def start(self) -> None:
        """Called once after ``init``, before the first record."""

    def close(self) -> None:
        """Called once on shutdown, after the last record."""


class Processor(Agent):
    """Turns each input record into zero, one or more output records."""

    def process(self, record: Record) -> list[Record] | Record | None:
        """Return the outputs: a record, a list, or None / [] to drop the input.

        Raise :class:`Retry` to try again later, :class:`SkipRecord` to drop it without an
        error, any other exception to apply the pipeline's ``errors`` policy.
        """
        return [record]


class Source(Agent):
    """Produces records from outside (files, APIs, queues)."""

    def read(self) -> list[Record]:
        """Return the records available now; ``[]`` means none (the runtime backs off)."""
        return []

    def commit(self, records: list[Record]) -> None:
        """Called once these records are acknowledged by Kafka: safe to forget them."""

    def permanent_failure(self, record: Record, error: Exception) -> None:
        """Called when a record could not be written after the retries allowed."""


class Sink(Agent):
    """Writes records to the outside world."""

    def write(self, record: Record) -> None:
        """Return once the record is durable; raise to apply the ``errors`` policy."""


class Service(Agent):
    """A long-running HTTP service on ``context.port``.

    Either return an ASGI application (FastAPI, Starlette, Quart, LangServe) from :meth:`app`
    and the runtime serves it with Hypercorn, or override :meth:`main` to run your own server
    on ``context.port`` (also in the ``PORT`` environment variable); the runtime restarts it
    with backoff when it crashes.
    """

    def app(self) -> ASGIApp | None:
        return None

    def main(self) -> None:
        """Run until stopped (only when :meth:`app` returns None)."""


class Retry(SluiceError):
    """Raise from a hook to retry the current record after ``after`` seconds.

    Each retry counts against ``errors.retries`` of the agent.
    """

    def __init__(self, message: str = "retry requested", *, after: float = 1.0) -> None:
        super().__init__(message)
        self.after = after


class SkipRecord(SluiceError):
    """Raise from a hook to drop the current record: it is committed and not retried."""


class FatalError(SluiceError):
    """Raise from a hook to stop the agent: the executor exits and the record is redelivered."""
