"""Serving an ASGI application with Hypercorn on a socket bound beforehand.

One way of starting Hypercorn for every server Sluice runs: the gateway, and a worker's health,
push, Camel bridge and python-service servers. The socket is bound before Hypercorn starts
because Hypercorn binds only after the application's lifespan started: a busy port would fail
with the lifespan left running, and port 0 could not report the port it got.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import cast

import hypercorn.asyncio
from hypercorn.config import Config, Sockets
from hypercorn.typing import ASGIFramework

from sluice.sdk import ASGIApp

__all__ = ["BackgroundServer", "BoundConfig", "bind_socket", "serve_asgi"]


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


class BoundConfig(Config):
    """Hypercorn settings serving ``sock``, bound beforehand (see the module docstring).

    ``logger`` receives Hypercorn's errors (None: Hypercorn's own ``hypercorn.error`` logger on
    stderr); there is no access log, since query strings may carry credentials.
    ``keep_alive_timeout`` (seconds an idle connection stays open) defaults to Hypercorn's.
    Other Hypercorn settings can be set on the object before it is served.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        logger: logging.Logger | None = None,
        graceful_timeout: float = 3.0,
        keep_alive_timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.sock = sock
        if logger is not None:
            self.errorlog = logger
        self.accesslog = None
        self.graceful_timeout = graceful_timeout
        if keep_alive_timeout is not None:
            self.keep_alive_timeout = keep_alive_timeout

    def create_sockets(self) -> Sockets:
        return Sockets(secure_sockets=[], insecure_sockets=[self.sock], quic_sockets=[])


async def serve_asgi(
    app: ASGIApp, config: BoundConfig, *, shutdown_trigger: Callable[[], Awaitable[object]]
) -> None:
    """Serve ``app`` with Hypercorn as ``config`` says until ``shutdown_trigger`` returns.

    Hypercorn reads ``config.graceful_timeout`` once the trigger returned, so a caller may still
    change it while serving. Closes the socket in the end, whether Hypercorn got to use it or not.
    """
    try:
        # Hypercorn types scopes as TypedDicts; the SDK's ASGIApp takes plain mappings.
        framework = cast("ASGIFramework", app)
        await hypercorn.asyncio.serve(
            framework, config, shutdown_trigger=shutdown_trigger, mode="asgi"
        )
    finally:
        config.sock.close()


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
        config = BoundConfig(
            sock,
            logger=self._logger,
            graceful_timeout=self._graceful_timeout,
            keep_alive_timeout=self._keep_alive_timeout,
        )
        self._task = asyncio.create_task(
            serve_asgi(self._app, config, shutdown_trigger=self._stopping.wait),
            name=f"{self._name}-{self.port}",
        )

    async def stop(self) -> None:
        """Stop accepting, let Hypercorn finish within its graceful timeout. Idempotent."""
        self._stopping.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task
