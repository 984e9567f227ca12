"""Starting the database servers ``sluice run`` runs for an application, one way for all.

PostgreSQL (:mod:`sluice.local.databases`), Cassandra (:mod:`sluice.local.cassandra`) and
Milvus Lite (:mod:`sluice.local.milvus`) are each started when a datasource names a port of this
machine where nothing listens, reported as they start, and stopped when the run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from sluice.application import Application
from sluice.local.events import RunEvents
from sluice.net import LOOPBACK

__all__ = ["LocalServer", "first_per_port", "listening", "start_unless_listening"]


class _OnPort(Protocol):
    @property
    def port(self) -> int: ...


_Wanted = TypeVar("_Wanted", bound=_OnPort)


class LocalServer(Protocol):
    """A server process ``sluice run`` starts and stops."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def first_per_port(
    app: Application,
    service: str,
    local: Callable[[str, Mapping[str, Any]], _Wanted | None],
) -> list[_Wanted]:
    """What the datasources of ``service`` in ``app`` want started here, one per port: ``local``
    reads a resource's id and configuration into what it wants on which port (None: not a
    server of this machine); the first resource naming a port decides."""
    found: dict[int, _Wanted] = {}
    for resource in app.resources:
        if str(resource.configuration.get("service") or "") != service:
            continue
        wanted = local(resource.id, resource.configuration)
        if wanted is not None:
            found.setdefault(wanted.port, wanted)
    return list(found.values())


async def listening(port: int) -> bool:
    """Whether something accepts connections on ``port`` of loopback (within 2 s)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def start_unless_listening(
    stack: contextlib.AsyncExitStack,
    events: RunEvents,
    make: Callable[[], LocalServer],
    *,
    kind: str,
    port: int,
    resource: str,
    described: str,
) -> None:
    """Start the server ``make`` builds for datasource ``resource`` on ``port``, unless
    something listens there already (a server of the user's own, left alone); ``stack`` stops
    it. ``kind`` names it in the run's lines, ``described`` says what was started."""
    where = f"{kind}: 127.0.0.1:{port}"
    if await listening(port):
        events.done(f'{where} (datasource "{resource}": already listening)')
        return
    server = make()
    events.working(f"starting {kind} on port {port}")
    try:
        await server.start()
    finally:
        events.working(None)
    stack.push_async_callback(_stop, server, kind, events)
    events.done(f'{where} (datasource "{resource}"; {described}, stops with this command)')


async def _stop(server: LocalServer, kind: str, events: RunEvents) -> None:
    events.working(f"stopping {kind}")
    try:
        await server.stop()
    finally:
        events.working(None)
