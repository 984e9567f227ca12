from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from quart import Quart
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sluice.sdk import ASGIApp
from workers.health import HealthServer
from workers.service_host import ServiceEnded, ServiceHost, serve_service

FAST = (0.05, 0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AppService:
    """A loaded service that returns an ASGI app (the shape ``workers.loading`` produces)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def init(self, config: dict[str, Any]) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def app(self) -> ASGIApp | None:
        return self._app

    def main(self) -> None:
        raise AssertionError("main() of an app() service is never called")


async def get_when_up(url: str, *, within: float = 10.0) -> httpx.Response:
    """GET ``url`` once something listens there."""
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient() as client:
        while True:
            try:
                return await client.get(url)
            except httpx.TransportError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)


async def eventually(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def hosting(host: ServiceHost) -> AsyncIterator[asyncio.Event]:
    """Run ``host`` while the block runs; then shut it down and require a prompt stop."""
    shutdown = asyncio.Event()
    task = asyncio.create_task(host.run(shutdown))
    try:
        yield shutdown
    finally:
        shutdown.set()
        await asyncio.wait_for(task, timeout=5)


def starlette_app() -> Starlette:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"starlette {request.query_params['name']}")

    return Starlette(routes=[Route("/hello", hello)])


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/ask")
    async def ask(question: dict[str, str]) -> dict[str, str]:
        return {"answer": question["q"].upper()}

    return app


def quart_app() -> Quart:
    app = Quart(__name__)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "quart"}

    return app


async def test_serves_a_starlette_app() -> None:
    port = free_port()
    host = ServiceHost(AppService(starlette_app()), port=port)
    assert not host.ready
    assert host.unready_reason() == "service not started"
    async with hosting(host):
        response = await get_when_up(f"http://127.0.0.1:{port}/hello?name=ada")
        assert (response.status_code, response.text) == (200, "starlette ada")
        await eventually(lambda: host.ready)
        assert host.unready_reason() is None
    assert not host.ready
    assert host.unready_reason() == "service stopped"
    assert host.restarts == 0


async def test_serves_a_fastapi_app() -> None:
    port = free_port()
    async with hosting(ServiceHost(AppService(fastapi_app()), port=port)):
        await get_when_up(f"http://127.0.0.1:{port}/docs")
        async with httpx.AsyncClient() as client:
            response = await client.post(f"http://127.0.0.1:{port}/ask", json={"q": "why"})
    assert response.json() == {"answer": "WHY"}


async def test_serves_a_quart_app_through_serve_service() -> None:
    port = free_port()
    shutdown = asyncio.Event()
    # Quart types its scopes as TypedDicts, which the SDK's ASGIApp alias does not accept.
    service = AppService(cast("ASGIApp", quart_app()))
    task = asyncio.create_task(serve_service(service, port=port, shutdown=shutdown))
    response = await get_when_up(f"http://127.0.0.1:{port}/ping")
    assert response.json() == {"pong": "quart"}
    shutdown.set()
    await asyncio.wait_for(task, timeout=5)
    with pytest.raises(httpx.ConnectError):
        await get_when_up(f"http://127.0.0.1:{port}/ping", within=0)


async def test_asgi_server_that_cannot_bind_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    host = ServiceHost(AppService(starlette_app()), port=port, restart_backoff=FAST)
    with squatter, caplog.at_level(logging.ERROR, logger="sluice.service"):
        async with hosting(host):
            await eventually(lambda: host.restarts >= 2)
            assert not host.ready
            assert "crashed" in (host.unready_reason() or "")
            squatter.close()
            response = await get_when_up(f"http://127.0.0.1:{port}/hello?name=bo")
            assert response.text == "starlette bo"
    assert f"service agent on port {port}: crashed (OSError(" in caplog.text
    assert "restarting in 0.05s" in caplog.text


async def test_failing_lifespan_startup_is_retried() -> None:
    startups = 0

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal startups
        startups += 1
        if startups < 3:
            raise RuntimeError("model not downloaded yet")
        yield

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"after {startups} startups")

    app = Starlette(routes=[Route("/", hello)], lifespan=lifespan)
    port = free_port()
    host = ServiceHost(AppService(app), port=port, restart_backoff=FAST)
    async with hosting(host):
        response = await get_when_up(f"http://127.0.0.1:{port}/")
        assert response.text == "after 3 startups"
        assert host.restarts == 2


async def test_main_style_service_needs_the_main_thread() -> None:
    """main() runs on the process's main thread (tests/workers/test_service_main.py runs it in
    real worker processes); a host that was not given it says so instead of starting it."""

    class MainOnly(AppService):
        def app(self) -> ASGIApp | None:
            return None

    host = ServiceHost(MainOnly(starlette_app()), port=free_port(), name="svc")
    with pytest.raises(ServiceEnded, match=r"service svc: app\(\) returned None, and main\(\)"):
        await host.run(asyncio.Event())
    assert host.unready_reason() == "service stopped"


async def test_readyz_reports_the_service_port() -> None:
    port = free_port()
    host = ServiceHost(AppService(starlette_app()), port=port)
    async with (
        HealthServer(readiness=host.unready_reason, fields=host.readiness_fields) as health,
        httpx.AsyncClient() as client,
    ):
        url = f"http://127.0.0.1:{health.port}/readyz"
        before = await client.get(url)
        assert (before.status_code, before.json()) == (
            503,
            {"status": "not ready", "reason": "service not started"},
        )
        async with hosting(host):
            await eventually(lambda: host.ready)
            ready = await client.get(url)
            assert (ready.status_code, ready.json()) == (
                200,
                {"status": "ready", "service_port": port},
            )
        assert host.service_port is None
        assert (await client.get(url)).json() == {
            "status": "not ready",
            "reason": "service stopped",
        }


async def test_shutdown_stops_an_asgi_service_with_a_slow_request_promptly() -> None:
    started = asyncio.Event()

    async def slow(request: Request) -> PlainTextResponse:
        started.set()
        await asyncio.sleep(60)
        return PlainTextResponse("too late")

    port = free_port()
    host = ServiceHost(
        AppService(Starlette(routes=[Route("/", slow)])), port=port, graceful_timeout=0.5
    )
    shutdown = asyncio.Event()
    task = asyncio.create_task(host.run(shutdown))
    async with httpx.AsyncClient() as client:
        await eventually(lambda: host.ready)
        request = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/"))
        await asyncio.wait_for(started.wait(), timeout=5)
        loop = asyncio.get_running_loop()
        begun = loop.time()
        shutdown.set()
        await asyncio.wait_for(task, timeout=5)
        assert loop.time() - begun < 2
        with contextlib.suppress(httpx.HTTPError):
            await request
