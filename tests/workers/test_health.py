from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sluice.sdk import ASGIApp
from workers.health import HealthServer, WorkerMetrics
from workers.service_host import ServiceHost


async def test_healthz_answers_while_the_loop_runs() -> None:
    async with HealthServer() as server, httpx.AsyncClient() as client:
        assert server.port != 0
        response = await client.get(f"http://127.0.0.1:{server.port}/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        head = await client.head(f"http://127.0.0.1:{server.port}/healthz")
        assert (head.status_code, head.content) == (200, b"")
        missing = await client.get(f"http://127.0.0.1:{server.port}/nope")
        assert missing.status_code == 404
        assert missing.json() == {"status": "not found", "path": "/nope"}
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{server.port}/healthz")


async def test_readyz_follows_the_readiness_check() -> None:
    reason: str | None = "consumer not assigned yet"

    async with HealthServer(readiness=lambda: reason) as server, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{server.port}/readyz"
        response = await client.get(url)
        assert response.status_code == 503
        assert response.json() == {"status": "not ready", "reason": "consumer not assigned yet"}

        reason = None
        response = await client.get(url)
        assert (response.status_code, response.json()) == (200, {"status": "ready"})

        reason = "draining"
        assert (await client.get(url)).json()["reason"] == "draining"
        # Not ready is not dead: liveness stays green.
        assert (await client.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 200


async def test_a_failing_readiness_check_means_not_ready(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> str | None:
        raise KeyError("partition")

    async with HealthServer(readiness=broken) as server, httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "readiness check failed: KeyError('partition')"
    assert "readiness check failed" in caplog.text


async def test_metrics_in_prometheus_text() -> None:
    metrics = WorkerMetrics("embed-exec")
    metrics.received(3)
    metrics.sent(2)
    metrics.error("embedder", "retry")
    metrics.error("embedder", "retry")
    metrics.error("splitter", "dead-letter")
    metrics.dead_lettered()
    metrics.processed(0.2)
    metrics.processed(3.0)
    metrics.set_lag("questions", 0, 7)
    metrics.set_lag("questions", 1, 0)

    async with HealthServer(metrics=metrics) as server, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{server.port}/metrics"
        response = await client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        lines = set(response.text.splitlines())
        expected = {
            'sluice_worker_records_in_total{executor="embed-exec"} 3.0',
            'sluice_worker_records_out_total{executor="embed-exec"} 2.0',
            'sluice_worker_errors_total{agent="embedder",executor="embed-exec",kind="retry"} 2.0',
            'sluice_worker_errors_total{agent="splitter",executor="embed-exec",kind="dead-letter"}'
            " 1.0",
            'sluice_worker_dead_letters_total{executor="embed-exec"} 1.0',
            'sluice_worker_processing_seconds_count{executor="embed-exec"} 2.0',
            'sluice_worker_processing_seconds_bucket{executor="embed-exec",le="0.25"} 1.0',
            'sluice_worker_processing_seconds_bucket{executor="embed-exec",le="5.0"} 2.0',
            'sluice_worker_processing_seconds_sum{executor="embed-exec"} 3.2',
            'sluice_worker_consumer_lag{executor="embed-exec",partition="0",topic="questions"} 7.0',
            'sluice_worker_consumer_lag{executor="embed-exec",partition="1",topic="questions"} 0.0',
        }
        assert expected <= lines, expected - lines

        metrics.forget_partition("questions", 0)
        metrics.forget_partition("questions", 5)  # never set: nothing to forget
        metrics.received()
        text = (await client.get(url)).text
        assert 'partition="0"' not in text
        assert 'partition="1"' in text
        assert 'sluice_worker_records_in_total{executor="embed-exec"} 4.0' in text


def test_metrics_have_their_own_registry() -> None:
    first, second = WorkerMetrics("a"), WorkerMetrics("a")
    first.received()
    assert b"sluice_worker_records_in_total" in first.exposition()
    assert b'records_in_total{executor="a"} 0.0' in second.exposition()
    assert REGISTRY.get_sample_value("sluice_worker_records_in_total", {"executor": "a"}) is None


async def test_without_metrics_there_is_no_metrics_page() -> None:
    async with HealthServer() as server, httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
    assert response.status_code == 404


async def test_two_servers_get_their_own_free_ports_and_a_busy_port_fails() -> None:
    async with HealthServer() as one, HealthServer() as two:
        assert one.port != two.port
        with pytest.raises(OSError, match="in use"):
            await HealthServer(port=one.port).start()


async def test_a_given_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with HealthServer(port=port) as server, httpx.AsyncClient() as client:
        assert server.port == port
        assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200


class AppService:
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
        raise AssertionError("not a main() service")


async def test_readyz_reports_a_hosted_service() -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host = ServiceHost(AppService(Starlette(routes=[Route("/", hello)])), port=port)
    shutdown = asyncio.Event()
    async with (
        HealthServer(readiness=host.unready_reason) as health,
        httpx.AsyncClient() as client,
    ):
        url = f"http://127.0.0.1:{health.port}/readyz"
        before = await client.get(url)
        assert (before.status_code, before.json()["reason"]) == (503, "service not started")

        task = asyncio.create_task(host.run(shutdown))
        for _ in range(200):
            response = await client.get(url)
            if response.status_code == 200:
                break
            await asyncio.sleep(0.02)
        assert response.status_code == 200
        assert (await client.get(f"http://127.0.0.1:{port}/")).text == "hi"

        shutdown.set()
        await asyncio.wait_for(task, timeout=5)
        after = await client.get(url)
        assert (after.status_code, after.json()["reason"]) == (503, "service stopped")
