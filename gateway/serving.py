"""Serving the gateway with Hypercorn, and stopping it gracefully.

Shutdown (docs/gateway.md, "Drain"): readiness goes false, open WebSockets get 1001 and event
streams end, in-flight HTTP requests get up to ``shutdown_grace`` seconds (``--drain-timeout``,
longer than the default service timeout) to finish. A request still waiting then (a service call
whose reply did not come, a produce Kafka has not acknowledged) answers 503 problem+json
(:meth:`GatewayRuntime.end_drain`): Hypercorn cancelling it instead would answer a bare 500 or
nothing. Then Hypercorn stops and the app's ``after_serving`` closes the consumers and flushes
the producer.

The drain is waited for here rather than through Hypercorn's ``graceful_timeout`` alone: a
connection that served a WebSocket keeps Hypercorn's ping task sleeping for up to one
``ping_interval`` after the socket closed, and Hypercorn waits for it. Once nothing is in flight,
the remaining connections are idle and get ``_IDLE_GRACE`` seconds.

WebSocket protocol violations: Hypercorn parses frames with wsproto, which reports a client's
violation (a text message that is not UTF-8, an unmasked frame, a reserved opcode or bit) as a
close event while the connection is still open; Hypercorn only answers a close frame the client
sent, so the violation ended in a bare TCP close. :class:`_GatewayWSStream` answers it with the
close code wsproto chose (1007 for bad UTF-8, 1002 for the rest, RFC 6455 7.4.1), and answers an
upgrade whose ``Connection`` / ``Sec-WebSocket-*`` list header is not ASCII (which Hypercorn
fails to decode, leaving the request unanswered) with a 400 problem. It replaces Hypercorn's
stream class when :func:`serving` starts (in this process, for every Hypercorn server), before
it serves the app with :func:`sluice.serving.serve_asgi`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx
from hypercorn.protocol import h2 as hypercorn_h2
from hypercorn.protocol import h11 as hypercorn_h11
from hypercorn.protocol.events import Body, EndBody, Request, Response
from hypercorn.protocol.ws_stream import WSStream
from quart import Quart
from wsproto.connection import Connection, ConnectionState
from wsproto.events import CloseConnection, Event

from gateway.problems import problem
from gateway.runtime import GatewayRuntime, runtime_of
from gateway.settings import GatewaySettings
from sluice.errors import SluiceError
from sluice.media import PROBLEM_CONTENT_TYPE
from sluice.serving import BoundConfig, bind_socket, serve_asgi

__all__ = ["begin_shutdown", "hypercorn_config", "serving"]

_READY_ATTEMPTS = 300
_IDLE_GRACE = 1.0
_DRAIN_POLL = 0.05


def hypercorn_config(settings: GatewaySettings, sock: socket.socket) -> BoundConfig:
    """Hypercorn's configuration for a gateway with ``settings`` serving ``sock``.

    No access log: query strings may carry credentials (``credentials=``), which must not be
    logged.
    """
    config = BoundConfig(sock, graceful_timeout=settings.shutdown_grace)
    config.loglevel = "WARNING"
    config.websocket_max_message_size = settings.max_message_bytes
    config.websocket_ping_interval = settings.ping_interval
    return config


# Handshake headers Hypercorn splits into ASCII tokens.
_TOKEN_LISTS = (b"connection", b"sec-websocket-extensions", b"sec-websocket-protocol")


class _ViolationClosingConnection(Connection):
    """wsproto's connection, except that a protocol violation by the peer puts it in the
    state of a peer that sent a close frame, so the server's stream answers with a close frame
    carrying the violation's code."""

    def events(self) -> Generator[Event, None, None]:
        for event in super().events():
            if isinstance(event, CloseConnection) and self.state is ConnectionState.OPEN:
                # Only a parse failure yields a close while OPEN: a close frame from the peer
                # moves the state first, a lost connection closes it.
                self._state = ConnectionState.REMOTE_CLOSING
            yield event


class _GatewayWSStream(WSStream):
    async def handle(self, event: Any) -> None:
        if isinstance(event, Request) and not self.closed:
            for name, value in event.headers:
                if name.lower() in _TOKEN_LISTS and not value.isascii():
                    await self._refuse(event, f"the {name.decode()} header must be ASCII")
                    return
        await super().handle(event)

    async def _accept(self, message: Any) -> None:
        await super()._accept(message)
        self.connection.__class__ = _ViolationClosingConnection

    async def _refuse(self, request: Request, detail: str) -> None:
        self.closed = True
        path = request.raw_path.partition(b"?")[0].decode("ascii", "replace")
        body = json.dumps(problem(400, detail, path)).encode()
        headers = [
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self.send(Response(stream_id=self.stream_id, status_code=400, headers=headers))
        await self.send(Body(stream_id=self.stream_id, data=body))
        await self.send(EndBody(stream_id=self.stream_id))


def _use_gateway_websocket_stream() -> None:
    hypercorn_h11.WSStream = _GatewayWSStream  # type: ignore[attr-defined]
    hypercorn_h2.WSStream = _GatewayWSStream  # type: ignore[attr-defined]


def begin_shutdown(app: Quart) -> None:
    """Readiness false, 1001 to every open WebSocket, 503 to new ones, and the end of every
    event stream.

    Call it when shutdown begins (before the server waits for connections to end): Hypercorn
    lets open WebSockets run until its graceful timeout, after which they end with 1011.
    """
    runtime = runtime_of(app)
    runtime.ready = False
    runtime.closing.set()


@contextlib.asynccontextmanager
async def serving(app: Quart, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` (made by :func:`gateway.app.create_app`) until the block ends; yields the
    base URL once ``/readyz`` answers 200, then shuts down gracefully."""
    runtime = runtime_of(app)
    settings = runtime.settings
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex((host, port)) == 0:
            raise SluiceError(f"port {port} on {host} is in use: pass --gateway-port")
    try:
        sock = bind_socket(host, port)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise SluiceError(f"port {port} on {host} is in use: pass --gateway-port") from error
    _use_gateway_websocket_stream()
    stop = asyncio.Event()
    config = hypercorn_config(settings, sock)
    task = asyncio.create_task(serve_asgi(app, config, shutdown_trigger=stop.wait))
    base_url = f"http://{host}:{port}"
    try:
        async with httpx.AsyncClient(timeout=1, trust_env=False) as client:
            for _ in range(_READY_ATTEMPTS):
                if task.done():
                    task.result()
                    raise SluiceError("the gateway stopped while starting")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{base_url}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise SluiceError(f"the gateway did not become ready on {base_url}")
        yield base_url
    finally:
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()
        if not task.done():
            begin_shutdown(app)
            await _drain(runtime, settings.shutdown_grace)
            # Requests still waiting (a service reply that did not come) answer 503 now, and
            # get their answer written before Hypercorn cancels what is left.
            runtime.end_drain()
            await _drain(runtime, _IDLE_GRACE)
            config.graceful_timeout = _IDLE_GRACE
            loop.set_exception_handler(_quiet_cancellations)
        try:
            stop.set()
            await task
        finally:
            loop.set_exception_handler(previous)


def _quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Hypercorn cancels the idle connections left after the drain; asyncio's stream callback
    then reports each cancelled connection task as an error. Those are expected: not logged."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


async def _drain(runtime: GatewayRuntime, grace: float) -> None:
    """Wait until no HTTP request and no WebSocket is being served, at most ``grace`` s."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace):
            # Polled: the counters change in request hooks and socket handlers alike, and this
            # runs once per process lifetime.
            while runtime.in_flight > 0 or sum(runtime.metrics.websockets_open.values()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(_DRAIN_POLL)
