"""What :func:`sluice.local.run_application` tells while it starts, runs and stops.

The runner prints nothing: it calls a :class:`RunEvents`, which the CLI implements with a
console (``sluice run``'s lines and spinners); a program or a test that runs an application
passes its own, or the base class, whose methods do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sluice.application import Application, Plan
from sluice.local.watch import Status

__all__ = ["RunEvents", "Running", "Worker"]


@dataclass(frozen=True)
class Worker:
    """An executor's worker: its process id and ports, and whether it runs. ``reason``: why
    it is not running (its last error line), when it is not."""

    executor: str
    pid: int | None
    health_port: int | None
    service_port: int | None = None
    running: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class Running:
    """An application that runs: where its parts are, and how its workers were once every one
    of them was ready or had failed (or the wait for them ended)."""

    tenant: str
    app: Application
    plan: Plan
    base_url: str
    """The gateway's, e.g. ``http://127.0.0.1:8091``."""
    bootstrap: str
    """Kafka's bootstrap servers."""
    workers: tuple[Worker, ...]
    elapsed: float
    """Seconds from the start to this moment."""


class RunEvents:
    """Callbacks of a run, in the order they happen; each one here does nothing."""

    def working(self, what: str | None) -> None:
        """A step that takes a while has begun (``what``), or changed what it waits for, or
        ended (None)."""

    def done(self, what: str) -> None:
        """A step of the start finished: the broker, the topics, the gateway, the workers."""

    def note(self, what: str) -> None:
        """Something to tell that is not a step (e.g. the gateway stopping)."""

    def ready(self, running: Running) -> None:
        """Every worker is ready or has failed (or the wait ended): the application runs."""

    def worker_changed(self, name: str, previous: Status, status: Status, elapsed: float) -> None:
        """After :meth:`ready`: worker ``name`` became ready, or stopped being ready;
        ``elapsed``: seconds since the start."""
