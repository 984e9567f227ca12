"""Serving the gateway with Hypercorn, and stopping it gracefully.

Shutdown (spec/gateway.md): readiness goes false, open WebSockets get 1001 and event streams
end, in-flight HTTP requests get up to ``shutdown_grace`` seconds (``--drain-timeout``, longer
than the default service timeout) to finish. A request still waiting then (a service call whose
reply did not come, a produce Kafka has not acknowledged) answers 503 problem+json
(:meth:`GatewayRuntime.end_drain`): Hypercorn cancelling it instead would answer a bare 500 or
nothing. Then Hypercorn stops and the app's ``after_serving`` closes the consumers and flushes
the producer.

The drain is waited for here rather than through Hypercorn's ``graceful_timeout`` alone: a
connection that served a WebSocket keeps Hypercorn's ping task sleeping for up to one
``ping_interval`` after the socket closed, and Hypercorn waits for it. Once nothing is in flight,
the remaining connections are idle and get ``_IDLE_GRACE`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from gateway.app import GatewayRuntime, runtime_of
from gateway.settings import GatewaySettings
from gateway.websockets import close_websockets
from sluice.errors import SluiceError

__all__ = ["begin_shutdown", "hypercorn_config", "serving"]

_READY_ATTEMPTS = 300
_IDLE_GRACE = 1.0
_DRAIN_POLL = 0.05


def hypercorn_config(settings: GatewaySettings, host: str, port: int) -> Config:
    """Hypercorn's configuration for a gateway with ``settings`` on ``host:port``.

    No access log: query strings may carry credentials (``credentials=``), which must not be
    logged.
    """
    config = Config()
    config.loglevel = "WARNING"
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.websocket_max_message_size = settings.max_message_bytes
    config.websocket_ping_interval = settings.ping_interval
    config.graceful_timeout = settings.shutdown_grace
    return config


def begin_shutdown(app: Quart) -> None:
    """Readiness false, 1001 to every open WebSocket and 503 to new ones."""
    runtime_of(app).ready = False
    close_websockets(app)


@contextlib.asynccontextmanager
async def serving(app: Quart, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` (made by :func:`gateway.app.create_app`) until the block ends; yields the
    base URL once ``/readyz`` answers 200, then shuts down gracefully."""
    runtime = runtime_of(app)
    settings = runtime.settings
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex((host, port)) == 0:
            raise SluiceError(f"port {port} on {host} is in use: pass --gateway-port")
    stop = asyncio.Event()
    config = hypercorn_config(settings, host, port)
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
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
