"""Serving a small Quart app on loopback for tests: the stand-ins for services on the internet
(identity endpoints, JWKS, GitHub) are real HTTP servers the code under test calls."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from sluice.net import LOOPBACK, free_port


@contextlib.asynccontextmanager
async def serve_on_loopback(app: Quart, port: int | None = None) -> AsyncIterator[str]:
    """``app`` under Hypercorn on a free loopback port; yields its base URL once it accepts."""
    port = port or free_port()
    config = Config()
    config.bind = [f"{LOOPBACK}:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    for _ in range(200):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(LOOPBACK, port)
            writer.close()
            await writer.wait_closed()
            break
        await asyncio.sleep(0.05)
    else:
        stop.set()
        await task
        raise RuntimeError(f"the test server did not start on port {port}")
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        stop.set()
        await task
