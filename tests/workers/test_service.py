from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from quart import Quart
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sluice.sdk import ASGIApp
from workers.service import ServiceHost, serve_service

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


class UvicornService:
    """A main()-style service: runs its own uvicorn on $PORT; ``crash()`` makes main() raise."""

    def __init__(self, *, fail_first: int = 0) -> None:
        self.calls = 0
        self.fail_first = fail_first
        self.ports: list[str] = []
        self.returned = threading.Event()
        self._server: uvicorn.Server | None = None
        self._crash = False

    async def init(self, config: dict[str, Any]) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    def app(self) -> ASGIApp | None:
        return None

    def crash(self) -> None:
        self._crash = True
        assert self._server is not None
        self._server.should_exit = True

    def main(self) -> None:
        self.returned.clear()
        try:
            self.calls += 1
            self.ports.append(os.environ["PORT"])
            if self.calls <= self.fail_first:
                raise RuntimeError(f"boom {self.calls}")

            async def hello(request: Request) -> PlainTextResponse:
                return PlainTextResponse(f"uvicorn run {self.calls}")

            config = uvicorn.Config(
                Starlette(routes=[Route("/", hello)]),
                host="127.0.0.1",
                port=int(os.environ["PORT"]),
                log_level="warning",
                loop="asyncio",
                http="h11",
                ws="none",
                lifespan="off",
            )
            self._server = uvicorn.Server(config)
            self._server.run()
            if self._crash:
                self._crash = False
                raise RuntimeError("lost the connection to the model")
        finally:
            self.returned.set()


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


async def test_main_style_service_runs_its_own_server_on_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PORT", raising=False)
    port = free_port()
    service = UvicornService()
    host = ServiceHost(service, port=port)
    async with hosting(host):
        response = await get_when_up(f"http://127.0.0.1:{port}/")
        assert response.text == "uvicorn run 1"
        await eventually(lambda: host.ready)
    assert service.ports == [str(port)]
    assert os.environ["PORT"] == str(port)
    # The host stopped waiting at once; the service's close() stops its own server.
    assert not service.returned.is_set()
    await service.close()
    assert await asyncio.to_thread(service.returned.wait, 5)


async def test_crashed_main_is_restarted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PORT", raising=False)
    port = free_port()
    service = UvicornService(fail_first=2)
    host = ServiceHost(service, port=port, name="chatbot", restart_backoff=FAST)
    with caplog.at_level(logging.ERROR, logger="sluice.service"):
        async with hosting(host):
            response = await get_when_up(f"http://127.0.0.1:{port}/")
            assert response.text == "uvicorn run 3"
            assert host.restarts == 2

            service.crash()  # the server stops and main() raises
            await eventually(lambda: host.restarts == 3)
            response = await get_when_up(f"http://127.0.0.1:{port}/")
            assert response.text == "uvicorn run 4"
        await service.close()
        assert await asyncio.to_thread(service.returned.wait, 5)
    lines = [r.getMessage() for r in caplog.records if r.name == "sluice.service"]
    assert lines == [
        f"service chatbot on port {port}: main() crashed (RuntimeError('boom 1')); "
        "restarting in 0.05s",
        f"service chatbot on port {port}: main() crashed (RuntimeError('boom 2')); "
        "restarting in 0.1s",
        f"service chatbot on port {port}: main() crashed "
        "(RuntimeError('lost the connection to the model')); restarting in 0.2s",
    ]
    assert all(r.exc_info is not None for r in caplog.records if r.name == "sluice.service")


async def test_main_that_returns_or_exits_is_restarted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("PORT", raising=False)
    port = free_port()
    service = UvicornService()
    # uvicorn calls sys.exit(3) when it cannot bind: that is a crash like any other.
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    host = ServiceHost(service, port=port, restart_backoff=FAST)
    with squatter, caplog.at_level(logging.ERROR, logger="sluice.service"):
        async with hosting(host):
            await eventually(lambda: host.restarts >= 1)
            squatter.close()
            response = await get_when_up(f"http://127.0.0.1:{port}/")
            assert response.text == f"uvicorn run {service.calls}"
            restarts = host.restarts
            await service.close()  # uvicorn stops, main() returns although it should run
            await eventually(lambda: host.restarts == restarts + 1)
            await get_when_up(f"http://127.0.0.1:{port}/")
        await service.close()
        assert await asyncio.to_thread(service.returned.wait, 5)
    assert "main() exited with code 3; restarting in" in caplog.text
    assert "main() returned; restarting in" in caplog.text


async def test_shutdown_during_backoff_is_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    service = UvicornService(fail_first=1)
    host = ServiceHost(service, port=free_port(), restart_backoff=(30.0, 60.0))
    shutdown = asyncio.Event()
    task = asyncio.create_task(host.run(shutdown))
    await eventually(lambda: "restarting" in (host.unready_reason() or ""))
    shutdown.set()
    await asyncio.wait_for(task, timeout=1)
    assert (service.calls, host.restarts) == (1, 0)


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
