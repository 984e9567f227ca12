"""Hosting python-service agents on their port.

A service either returns an ASGI application from ``app()`` (FastAPI, Starlette, Quart,
LangServe), which is served here with Hypercorn, or runs its own server from a blocking
``main()``, on the port in ``context.port`` and in the ``PORT`` environment variable.

An ASGI server that fails (port in use, a failing lifespan startup) is started again in the
process after a backoff that doubles up to a bound, back to the short wait once a run has lasted
``stable_after`` seconds: the application object and the agent stay valid, so nothing is lost
by keeping the process.

``main()`` runs on the process's main thread (:mod:`workers.main_thread` says why and how
signals reach it). On shutdown the host waits for it to drain and return, up to
``stop_grace`` seconds, before the agent's ``close()`` runs. A ``main()`` that returns, raises
or calls ``sys.exit`` while the service should be running is a crash: :meth:`ServiceHost.run`
raises :class:`ServiceEnded` with one line saying what happened, the worker closes its agents
and exits non-zero, and whoever started it starts it again with backoff (``sluice run``'s
supervisor, Kubernetes). The process is not reused, because after a ``main()`` ended the state it
left is unknown: an event loop set as the thread's current loop and closed, half-closed sockets,
signal handlers of a server that is gone. A new process runs ``init()`` and ``start()`` again on
a fresh object, as LangStream's restarted pod did.

Readiness: after each start the host connects to the port until a connection is accepted; the
service then counts as ready until that run ends. A ``main()`` may serve on another port than
``PORT`` (LangStream services often hard-code 8000): while ``PORT`` refuses connections, the host
looks for the ports the process and its children listen on (besides the worker's own), and takes
the lowest that accepts connections on loopback once it has for ``discover_settle`` seconds.
:attr:`ServiceHost.service_port` is where the service was found.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from sluice.sdk import ASGIApp
from sluice.serving import BoundConfig, bind_socket, serve_asgi
from workers.agents import LoadedService
from workers.errors import WorkerError
from workers.listening import listening_ports
from workers.main_thread import MainThread

log = logging.getLogger("sluice.service")


class ServiceEnded(WorkerError, RuntimeError):
    """A service's ``main()`` ended while it should have kept running; ``error`` is what it
    raised, if anything. The worker exits non-zero so that it is started again."""

    def __init__(self, message: str, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class _Ended:
    """How one run of the service ended while it should have kept running."""

    what: str
    error: BaseException | None = None


class ServiceHost:
    """Keeps one service serving on ``host:port`` until the shutdown event is set.

    ``main_thread`` is where a ``main()``-style service runs (see :mod:`workers.main_thread`);
    without one, only services that return an ASGI app from ``app()`` can be hosted.
    """

    def __init__(
        self,
        service: LoadedService,
        *,
        port: int,
        host: str = "127.0.0.1",
        name: str = "agent",
        restart_backoff: tuple[float, float] = (0.5, 30.0),
        stable_after: float = 60.0,
        graceful_timeout: float = 3.0,
        main_thread: MainThread | None = None,
        stop_grace: float = 15.0,
        discover_settle: float = 1.0,
    ) -> None:
        self._service = service
        self.port = port
        self.host = host
        self.name = name
        self._backoff = restart_backoff
        self._stable_after = stable_after
        self._graceful_timeout = graceful_timeout
        self._main_thread = main_thread
        self._stop_grace = stop_grace
        self._discover_settle = discover_settle
        self._ignored: set[int] = set()
        self._ready = False
        self._service_port: int | None = None
        self._restarts = 0
        self._reason = "service not started"

    @property
    def ready(self) -> bool:
        """True while the service accepts connections on its port."""
        return self._ready

    @property
    def service_port(self) -> int | None:
        """While ready, the port the service accepts connections on: ``port``, or the one it
        was found listening on instead. None while not ready."""
        return self._service_port if self._ready else None

    @property
    def restarts(self) -> int:
        """How many times the service was started again after a crash."""
        return self._restarts

    def ignore_ports(self, *ports: int) -> None:
        """Ports of this process that are not the service's (the worker's health port)."""
        self._ignored.update(ports)

    def unready_reason(self) -> str | None:
        """None while ready, else why not; fits ``HealthServer(readiness=...)``."""
        return None if self._ready else self._reason

    def readiness_fields(self) -> dict[str, object]:
        """``{"service_port": N}`` while ready; fits ``HealthServer(fields=...)``."""
        port = self.service_port
        return {} if port is None else {"service_port": port}

    async def run(self, shutdown: asyncio.Event) -> None:
        """Serve until ``shutdown`` is set: an ASGI app restarted after crashes, or ``main()``
        until it ends (:class:`ServiceEnded` when that was not asked for).

        Calls ``app()`` once; the service's ``init``/``start``/``close`` are the caller's. For a
        ``main()``-style service, sets ``PORT`` in this process's environment first.
        """
        app = self._service.app()
        if app is None:
            try:
                await self._run_main(shutdown)
            finally:
                self._reason = "service stopped"
            return
        delay = self._backoff[0]
        while not shutdown.is_set():
            started = time.monotonic()
            self._reason = "service starting"
            ended = await self._run_once(app, shutdown)
            if ended is None or shutdown.is_set():
                break
            if time.monotonic() - started >= self._stable_after:
                delay = self._backoff[0]
            self._reason = f"service {ended.what}; restarting"
            log.error(
                "service %s on port %d: %s; restarting in %gs",
                self.name,
                self.port,
                ended.what,
                delay,
                exc_info=ended.error,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), timeout=delay)
            if shutdown.is_set():
                break
            delay = min(self._backoff[1], delay * 2)
            self._restarts += 1
        self._reason = "service stopped"

    async def _run_once(self, app: ASGIApp, shutdown: asyncio.Event) -> _Ended | None:
        """One run of the ASGI app; None when it ended because of ``shutdown``."""
        probe = asyncio.create_task(self._probe(), name=f"service-{self.name}-probe")
        try:
            return await self._serve_app(app, shutdown)
        finally:
            self._ready = False
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe

    async def _serve_app(self, app: ASGIApp, shutdown: asyncio.Event) -> _Ended | None:
        try:
            config = BoundConfig(
                bind_socket(self.host, self.port),
                logger=log,
                graceful_timeout=self._graceful_timeout,
            )
            await serve_asgi(app, config, shutdown_trigger=shutdown.wait)
        except Exception as error:
            return _Ended(f"crashed ({error!r})", error)
        return None if shutdown.is_set() else _Ended("server stopped unexpectedly")

    async def _run_main(self, shutdown: asyncio.Event) -> None:
        main_thread = self._main_thread
        if main_thread is None:
            raise ServiceEnded(
                f"service {self.name}: app() returned None, and main() needs the process's main "
                "thread, which this host was not given"
            )
        # main() starts its own server and reads the port from the environment, LangStream style.
        os.environ["PORT"] = str(self.port)
        self._reason = "service starting"
        finished = main_thread.start(self._service.main)
        probe = asyncio.create_task(self._probe(discover=True), name=f"service-{self.name}-probe")
        stopping: asyncio.Future[bool] = asyncio.ensure_future(shutdown.wait())
        try:
            waited: set[asyncio.Future[Any]] = {finished, stopping}
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            self._ready = False
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        if not finished.done():
            self._reason = "service stopping"
            main_thread.interrupt()  # a stop without a signal (the supervisor is gone)
            try:
                await asyncio.wait_for(asyncio.shield(finished), timeout=self._stop_grace)
            except TimeoutError:
                log.warning(
                    "service %s: main() still runs %gs after the stop; closing the agent",
                    self.name,
                    self._stop_grace,
                )
                return
        error = finished.result()
        if main_thread.stop_requested:
            if error is not None and not _is_stop(error):
                log.warning("service %s: main() ended with %r while stopping", self.name, error)
            return
        ended = _describe(error)
        raise ServiceEnded(
            f"service {self.name} on port {self.port}: {ended.what} while it should run; "
            "the worker exits to be started again",
            ended.error,
        )

    async def _probe(self, *, discover: bool = False) -> None:
        """Mark the service ready once its port (or, with ``discover``, another port it
        listens on) accepts a connection."""
        delay = 0.02
        seen: dict[int, float] = {}
        while True:
            if await _accepts(self.host, self.port):
                self._ready_on(self.port)
                return
            if discover:
                found = await self._discover(seen)
                if found is not None:
                    log.info(
                        "service %s listens on port %d, not on PORT=%d: serving from there",
                        self.name,
                        found,
                        self.port,
                    )
                    self._ready_on(found)
                    return
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 2)

    async def _discover(self, seen: dict[int, float]) -> int | None:
        """The lowest port besides ``port`` that this process tree listens on and that has
        accepted connections for ``discover_settle`` seconds (``seen``: since when)."""
        ports = await asyncio.to_thread(listening_ports)
        accepting = [
            p
            for p in sorted(ports - self._ignored - {self.port})
            if await _accepts("127.0.0.1", p) or await _accepts("::1", p)
        ]
        now = time.monotonic()
        for port in list(seen):
            if port not in accepting:
                del seen[port]
        for port in accepting:
            seen.setdefault(port, now)
        if not accepting:
            self._reason = f"service {self.name} listens on no port (PORT={self.port})"
        settled = [p for p in accepting if now - seen[p] >= self._discover_settle]
        return settled[0] if settled else None

    def _ready_on(self, port: int) -> None:
        self._service_port = port
        self._ready = True


async def _accepts(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a TCP connection (a wildcard host: on loopback)."""
    target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        _, writer = await asyncio.open_connection(target, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _is_stop(error: BaseException) -> bool:
    """How a server ends on Ctrl-C or SIGTERM: KeyboardInterrupt, or a clean ``sys.exit``."""
    if isinstance(error, SystemExit):
        return error.code in (None, 0)
    return isinstance(error, KeyboardInterrupt)


def _describe(error: BaseException | None) -> _Ended:
    if error is None:
        return _Ended("main() returned")
    if isinstance(error, SystemExit):
        return _Ended(f"main() exited with code {error.code!r}")
    return _Ended(f"main() crashed ({error!r})", error)


async def serve_service(
    service: LoadedService,
    *,
    port: int,
    host: str = "127.0.0.1",
    shutdown: asyncio.Event,
    restart_backoff: tuple[float, float] = (0.5, 30.0),
    name: str = "agent",
) -> None:
    """Serve ``service`` on ``host:port`` until ``shutdown`` is set (see :class:`ServiceHost`)."""
    host_ = ServiceHost(service, port=port, host=host, name=name, restart_backoff=restart_backoff)
    await host_.run(shutdown)
