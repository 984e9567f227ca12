"""The runtime's view of a loaded agent: every hook async, records always ``sluice.Record``.

User classes (Sluice SDK subclasses, LangStream-shaped classes, duck-typed classes) are adapted
to these shapes once, when they are loaded (``workers.loading``), so the runtime never inspects
user code on the hot path.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from sluice.record import Record
from sluice.sdk import AgentContext, ASGIApp


class Lifecycle(Protocol):
    async def init(self, config: dict[str, Any]) -> None: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...


class LoadedProcessor(Lifecycle, Protocol):
    async def process(self, record: Record) -> list[Record]:
        """Outputs of one input (possibly empty). Raises what the user code raised."""
        ...


class LoadedSource(Lifecycle, Protocol):
    async def read(self) -> list[Record]: ...
    async def commit(self, records: list[Record]) -> None: ...
    async def permanent_failure(self, record: Record, error: Exception) -> None: ...


class LoadedSink(Lifecycle, Protocol):
    async def write(self, record: Record) -> None: ...


class LoadedService(Lifecycle, Protocol):
    def app(self) -> ASGIApp | None:
        """An ASGI application to serve on the context port, or None for ``main()`` style."""
        ...

    def main(self) -> None:
        """Blocking ``main()`` of a service that runs its own server (on the main thread)."""
        ...


@runtime_checkable
class UsesContext(Protocol):
    """A built-in agent that needs its context (``langserve-invoke`` writes streamed chunks
    with ``context.get_topic_producer()``): the loader hands it over before ``init``."""

    def use_context(self, context: AgentContext) -> None: ...


@runtime_checkable
class Batching(Protocol):
    """A built-in agent that gathers several records into one call (``compute-ai-embeddings``
    with a ``flush-interval``): the executor lets up to ``records_in_flight`` records into the
    chain at once and still writes their outputs, and commits their offsets, in input order."""

    @property
    def records_in_flight(self) -> int: ...


LoadedAgent = LoadedProcessor | LoadedSource | LoadedSink | LoadedService
