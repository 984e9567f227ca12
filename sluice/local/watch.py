"""What ``sluice run`` knows about its workers while it runs, from their ``/readyz`` and from the
supervisor: ready, starting, or failed (and why), and the port each service listens on.

The gateway does not wait for the workers: it serves as soon as Kafka does, and
:class:`WorkerWatch` keeps its service routes up to date (a service gets a route once its worker
is ready, on the port the worker found it listening on, and loses it with the reason when the
worker fails), so a worker that comes up late is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import httpx

from workers.supervisor import ChildSpec, Supervisor

if TYPE_CHECKING:
    # Not at run time: the gateway (Quart) is imported only when `sluice run` starts it.
    from gateway.proxy import ServiceKey, ServiceRoutes

__all__ = ["Status", "WorkerWatch"]

State = Literal["starting", "ready", "failed"]

_STARTING = "its worker is starting"


@dataclass(frozen=True)
class Status:
    """One worker as last seen. ``reason``: why it is not ready (None when it is);
    ``service_port``: where its service listens (the port it was given until it says)."""

    state: State
    reason: str | None = None
    service_port: int | None = None


Listener = Callable[[str, Status, Status], None]
"""Called with the worker's name, its previous and its new status when its state changes."""


class WorkerWatch:
    """Polls every worker's ``/readyz`` and the supervisor, keeps :meth:`status` and the
    service ``routes`` of the gateway current, and tells ``on_change`` about state changes.

    A worker counts as failed when it is not ready and either its process ended with an error
    at least once or its readiness says it is restarting (a service that crashed inside a live
    worker); its reason is then the last error line of its output.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        children: Sequence[ChildSpec],
        services: Mapping[str, ServiceKey],
        routes: ServiceRoutes,
        *,
        on_change: Listener | None = None,
    ) -> None:
        self._supervisor = supervisor
        self._children = list(children)
        self._services = dict(services)
        self.routes = routes
        self.on_change = on_change
        self._status = {c.name: Status("starting", _STARTING, c.service_port) for c in children}
        for child in children:
            if child.name in self._services:
                routes.down(self._services[child.name], _STARTING)

    def status(self, name: str) -> Status:
        return self._status[name]

    def names(self) -> tuple[str, ...]:
        """The workers watched (one per executor, named by its id), in start order."""
        return tuple(c.name for c in self._children)

    def settled(self) -> bool:
        """Whether every worker is ready or has failed at least once."""
        return all(s.state != "starting" for s in self._status.values())

    async def follow(self, client: httpx.AsyncClient, every: float = 1.0) -> None:
        """Poll until cancelled."""
        while True:
            await self.poll(client)
            await asyncio.sleep(every)

    async def poll(self, client: httpx.AsyncClient) -> None:
        """Look at every worker once (concurrently) and apply what changed."""
        seen = await asyncio.gather(*(self._look(client, c) for c in self._children))
        for child, status in zip(self._children, seen, strict=True):
            self._apply(child, status)

    async def _look(self, client: httpx.AsyncClient, child: ChildSpec) -> Status:
        name = child.name
        previous = self._status[name]
        answer: dict[str, object] = {}
        code = None
        if child.health_port is not None:
            url = f"http://127.0.0.1:{child.health_port}/readyz"
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = await client.get(url)
                code = response.status_code
                body = response.json()
                answer = body if isinstance(body, dict) else {}
        alive = self._supervisor.pid(name) is not None
        if code == 200 and alive:
            port = answer.get("service_port")
            reported = port if isinstance(port, int) and not isinstance(port, bool) else None
            return Status("ready", None, reported or previous.service_port or child.service_port)
        said = answer.get("reason")
        reason = said if isinstance(said, str) and said else None
        restarting = reason is not None and "restarting" in reason
        if self._supervisor.finished(name):
            return Status("failed", "its worker exited (code 0) and is not restarted")
        if self._supervisor.failures(name) > 0 or restarting:
            why = self._supervisor.why_failed(name) or reason or "it failed"
            return Status("failed", why, previous.service_port)
        if child.health_port is None and alive:
            # Nothing to ask: a running process is all there is to know.
            return Status("ready", None, previous.service_port)
        return Status("starting", reason or _STARTING, previous.service_port)

    def _apply(self, child: ChildSpec, status: Status) -> None:
        previous = self._status[child.name]
        self._status[child.name] = status
        key = self._services.get(child.name)
        if key is not None:
            if status.state == "ready" and status.service_port is not None:
                self.routes.up(key, f"http://127.0.0.1:{status.service_port}")
            else:
                self.routes.down(key, status.reason or _STARTING)
        if previous.state != status.state and self.on_change is not None:
            self.on_change(child.name, previous, status)
