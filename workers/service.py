"""Hosting python-service agents on their port, restarting them with backoff when they crash.

A service either returns an ASGI application from ``app()`` (FastAPI, Starlette, Quart,
LangServe), which is served here with Hypercorn, or runs its own server from a blocking
``main()`` on the port in ``context.port`` and in the ``PORT`` environment variable.

``main()`` runs in a daemon thread: Python cannot stop a thread from outside, so on shutdown the
host stops waiting for it and returns. The service's ``close()`` hook (called by the worker after
this) is where a service stops its own server; whatever still runs ends with the worker process,
which is a child process of its own for this reason. A ``main()`` that raises, calls
``sys.exit`` or returns while the service should be running is a crash, as is a Hypercorn server
that fails (port in use, a failing lifespan startup): the host logs one line saying what happened
and starts it again after a backoff that doubles up to a bound, and goes back to the short wait
once a run has lasted ``stable_after`` seconds.

Readiness: after each start the host connects to the port until a connection is accepted; the
service then counts as ready until that run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import hypercorn.asyncio
from hypercorn.config import Config, Sockets
from hypercorn.typing import ASGIFramework

from sluice.sdk import ASGIApp
from workers.agents import LoadedService

log = logging.getLogger("sluice.service")


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0 = a free port), not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say TCP,
    # and with Nagle on, a response written in two parts waits for a delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _BoundConfig(Config):
    """Hypercorn settings serving a socket bound beforehand.

    Binding first makes a busy port fail before the application's lifespan starts (Hypercorn
    binds after it, and would leave the lifespan running), and lets port 0 report its number.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def create_sockets(self) -> Sockets:
        return Sockets(secure_sockets=[], insecure_sockets=[self._sock], quic_sockets=[])


async def serve_asgi(
    app: ASGIApp,
    sock: socket.socket,
    *,
    shutdown_trigger: Callable[[], Awaitable[object]],
    logger: logging.Logger,
    graceful_timeout: float = 3.0,
    keep_alive_timeout: float | None = None,
) -> None:
    """Serve ``app`` with Hypercorn on ``sock`` until ``shutdown_trigger`` returns.

    ``keep_alive_timeout`` (seconds an idle connection stays open) defaults to Hypercorn's.
    Closes ``sock`` in the end, whether Hypercorn got to use it or not.
    """
    config = _BoundConfig(sock)
    config.errorlog = logger
    config.accesslog = None
    config.graceful_timeout = graceful_timeout
    if keep_alive_timeout is not None:
        config.keep_alive_timeout = keep_alive_timeout
    try:
        # Hypercorn types scopes as TypedDicts; the SDK's ASGIApp takes plain mappings.
        framework = cast("ASGIFramework", app)
        await hypercorn.asyncio.serve(
            framework, config, shutdown_trigger=shutdown_trigger, mode="asgi"
        )
    finally:
        sock.close()


class BackgroundServer:
    """``app`` served by Hypercorn on ``host:port`` (0: a free port) in a background task, from
    :meth:`start` (bound and listening when it returns; ``port`` is then the real one) until
    :meth:`stop`. The worker's health, push and Camel bridge servers are made of one."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str,
        logger: logging.Logger,
        host: str = "127.0.0.1",
        port: int = 0,
        graceful_timeout: float = 1.0,
        keep_alive_timeout: float | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._app = app
        self._name = name
        self._logger = logger
        self._graceful_timeout = graceful_timeout
        self._keep_alive_timeout = keep_alive_timeout
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and listen: connections made after this are answered."""
        sock = bind_socket(self.host, self.port)
        try:
            sock.listen()
            self.port = sock.getsockname()[1]
        except BaseException:
            sock.close()
            raise
        self._task = asyncio.create_task(
            serve_asgi(
                self._app,
                sock,
                shutdown_trigger=self._stopping.wait,
                logger=self._logger,
                graceful_timeout=self._graceful_timeout,
                keep_alive_timeout=self._keep_alive_timeout,
            ),
            name=f"{self._name}-{self.port}",
        )

    async def stop(self) -> None:
        """Stop accepting, let Hypercorn finish within its graceful timeout. Idempotent."""
        self._stopping.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task


@dataclass(frozen=True)
class _Ended:
    """How one run of the service ended while it should have kept running."""

    what: str
    error: BaseException | None = None


class ServiceHost:
    """Keeps one service serving on ``host:port`` until the shutdown event is set."""

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
    ) -> None:
        self._service = service
        self.port = port
        self.host = host
        self.name = name
        self._backoff = restart_backoff
        self._stable_after = stable_after
        self._graceful_timeout = graceful_timeout
        self._ready = False
        self._restarts = 0
        self._reason = "service not started"

    @property
    def ready(self) -> bool:
        """True while the service accepts connections on its port."""
        return self._ready

    @property
    def restarts(self) -> int:
        """How many times the service was started again after a crash."""
        return self._restarts

    def unready_reason(self) -> str | None:
        """None while ready, else why not; fits ``HealthServer(readiness=...)``."""
        return None if self._ready else self._reason

    async def run(self, shutdown: asyncio.Event) -> None:
        """Serve, restarting after crashes, until ``shutdown`` is set.

        Calls ``app()`` once; the service's ``init``/``start``/``close`` are the caller's. For a
        ``main()``-style service, sets ``PORT`` in this process's environment first.
        """
        app = self._service.app()
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

    async def _run_once(self, app: ASGIApp | None, shutdown: asyncio.Event) -> _Ended | None:
        """One run of the service; None when it ended because of ``shutdown``."""
        probe = asyncio.create_task(self._probe(), name=f"service-{self.name}-probe")
        try:
            if app is not None:
                return await self._serve_app(app, shutdown)
            return await self._run_main(shutdown)
        finally:
            self._ready = False
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe

    async def _serve_app(self, app: ASGIApp, shutdown: asyncio.Event) -> _Ended | None:
        try:
            await serve_asgi(
                app,
                bind_socket(self.host, self.port),
                shutdown_trigger=shutdown.wait,
                logger=log,
                graceful_timeout=self._graceful_timeout,
            )
        except Exception as error:
            return _Ended(f"crashed ({error!r})", error)
        return None if shutdown.is_set() else _Ended("server stopped unexpectedly")

    async def _run_main(self, shutdown: asyncio.Event) -> _Ended | None:
        # main() starts its own server and reads the port from the environment, LangStream style.
        os.environ["PORT"] = str(self.port)
        finished = _start_main(self._service.main, name=f"service-{self.name}-main")
        stopping: asyncio.Future[bool] = asyncio.ensure_future(shutdown.wait())
        waited: set[asyncio.Future[Any]] = {finished, stopping}
        try:
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not finished.done():
            return None  # shutdown: main() is left to close() and to the end of the process
        error = finished.result()
        if error is None:
            return _Ended("main() returned")
        if isinstance(error, SystemExit):
            return _Ended(f"main() exited with code {error.code!r}")
        return _Ended(f"main() crashed ({error!r})", error)

    async def _probe(self) -> None:
        """Mark the service ready once its port accepts a connection."""
        target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        delay = 0.02
        while True:
            try:
                _, writer = await asyncio.open_connection(target, self.port)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(0.5, delay * 2)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._ready = True
            return


def _start_main(main: Callable[[], None], *, name: str) -> asyncio.Future[BaseException | None]:
    """Run ``main`` in a daemon thread; the future gets what it raised, or None if it returned."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[BaseException | None] = loop.create_future()

    def report(outcome: BaseException | None) -> None:
        if not finished.done():
            finished.set_result(outcome)

    def target() -> None:
        outcome: BaseException | None = None
        try:
            main()
        except BaseException as error:  # SystemExit from a server that failed to start too
            outcome = error
        # The loop is gone when the worker already shut down: nobody waits for this any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(report, outcome)

    threading.Thread(target=target, name=name, daemon=True).start()
    return finished


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
