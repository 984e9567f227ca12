"""The interfaces of LangStream's ``langstream.api``: records, agents and their context.

The names, abstract methods and defaults are those of the published ``langstream-ai`` 0.4
package, so code written against it (and the runtimes that subclass these classes) works
unchanged. The later runtime API (0.5 and 0.6) added :class:`TopicProducer` and
``AgentContext.get_topic_producer()``; both exist here too, but nothing that 0.4 did not require
is abstract, so a 0.4-style context that only implements ``get_persistent_state_directory()``
and a 0.6-style one that only implements ``get_topic_producer()`` can both be instantiated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import Any, Union

__all__ = [
    "Agent",
    "AgentContext",
    "Processor",
    "Record",
    "RecordType",
    "Service",
    "Sink",
    "Source",
    "TopicProducer",
]


class Record(ABC):
    """A record: accessors are methods, headers a list of ``(name, value)`` pairs."""

    @abstractmethod
    def key(self) -> Any:
        """The record key."""

    @abstractmethod
    def value(self) -> Any:
        """The record value."""

    @abstractmethod
    def origin(self) -> str | None:
        """Where the record came from (the topic), if known."""

    @abstractmethod
    def timestamp(self) -> int | None:
        """The record timestamp in milliseconds, if known."""

    @abstractmethod
    def headers(self) -> list[tuple[str, Any]]:
        """The record headers as ``(name, value)`` pairs."""


RecordType = Union[Record, dict[str, Any], list[Any], tuple[Any, ...]]  # noqa: UP007
"""What agents may return for a record: a :class:`Record`, a dict with the keys ``value``,
``key``, ``headers``, ``origin`` and ``timestamp``, or a ``(value, key, headers, origin,
timestamp)`` tuple or list (trailing items may be left out)."""


class TopicProducer(ABC):  # noqa: B024 - LangStream's has no abstract method either
    """Writes records to any topic of the application (``context.get_topic_producer()``).

    Added after LangStream 0.4. Neither method is abstract, as in LangStream; the runtime's
    producer implements both.
    """

    async def awrite(self, topic: str, record: RecordType) -> None:
        """Write ``record`` to ``topic`` from ``async def`` code; returns once it is written."""
        raise NotImplementedError(f"{type(self).__qualname__} does not implement awrite()")

    def write(self, topic: str, record: RecordType) -> Future[None]:
        """Write ``record`` to ``topic`` from sync code; the future completes once written."""
        raise NotImplementedError(f"{type(self).__qualname__} does not implement write()")


class AgentContext(ABC):  # noqa: B024 - abstract in 0.4 and 0.6 for different methods
    """What the runtime gives ``Agent.init(config, context)``.

    ``get_persistent_state_directory()`` was abstract in 0.4 and ``get_topic_producer()`` in
    0.6; here neither is, so contexts written for either version can be instantiated.
    """

    def get_persistent_state_directory(self) -> str | None:
        """The agent's persistent disk, or None when the agent has none."""
        return None

    def get_topic_producer(self) -> TopicProducer:
        """The producer for writing to other topics (LangStream 0.5 and later)."""
        raise NotImplementedError(
            f"{type(self).__qualname__} has no topic producer (get_topic_producer() is not "
            "implemented)"
        )


class Agent(ABC):  # noqa: B024 - every hook is optional, as in LangStream
    """The base of every agent. All hooks are optional no-ops.

    The runtime calls ``init(config, context)`` (or ``init(config)``, when that is all it
    declares), then ``start()``, and ``close()`` on shutdown.
    """

    def init(self, config: dict[str, Any], context: AgentContext) -> None:  # noqa: B027
        """Initialize the agent from its configuration."""

    def start(self) -> None:  # noqa: B027
        """Start the agent."""

    def close(self) -> None:  # noqa: B027
        """Close the agent."""

    def agent_info(self) -> dict[str, Any]:
        """Information about the agent, for status pages."""
        return {}


class Source(Agent):
    """An agent that reads records from outside the application."""

    @abstractmethod
    def read(self) -> list[RecordType]:
        """The next records (an empty list when there are none yet)."""

    def commit(self, record: Record) -> None:
        """``record`` (as ``read()`` returned it) was processed; called once per record."""

    def permanent_failure(self, record: Record, error: Exception) -> None:
        """Processing ``record`` failed for good. The default re-raises ``error``."""
        raise error


class Processor(Agent):
    """An agent that turns each record into zero or more records."""

    @abstractmethod
    def process(self, record: Record) -> list[RecordType] | Future[list[RecordType]]:
        """The records ``record`` becomes, or a future of them."""


class Sink(Agent):
    """An agent that writes records outside the application."""

    @abstractmethod
    def write(self, record: Record) -> Future[None] | None:
        """Write ``record``: return None when written, a future that completes when written, or
        raise."""


class Service(Agent):
    """An agent that runs a standalone service."""

    @abstractmethod
    def main(self) -> None:
        """Run the service; meant to run forever."""
