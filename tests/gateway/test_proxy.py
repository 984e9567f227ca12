"""Agent-id service gateways: the gateway under Hypercorn forwarding to a real service on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import Framework
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.app import create_app
from gateway.proxy import ServiceRoutes, request_headers, response_headers, target_url
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.kafka import KafkaSettings
from sluice.net import LOOPBACK, free_port
from tests.gateway.test_http_app import APP_ID, TENANT, assert_problem

pytestmark = pytest.mark.kafka

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def echo(request: Request) -> Response:
    if request.url.path == "/missing":
        return JSONResponse({"error": "no such thing"}, status_code=404)
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "pairs": list(request.query_params.multi_items()),
            "headers": [[key.decode(), value.decode()] for key, value in request.headers.raw],
            # Any body is echoed: the fuzz test sends bytes that are not UTF-8, and a 500 of this
            # stand-in service would be passed through and blamed on the gateway.
            "body": (await request.body()).decode("utf-8", "replace"),
        },
        headers={"X-Service": "echo"},
    )


UPSTREAM = Starlette(routes=[Route("/{rest:path}", echo, methods=METHODS)])


@contextlib.asynccontextmanager
async def served(app: object, port: int, probe: str) -> AsyncIterator[str]:
    config = Config()
    config.bind = [f"{LOOPBACK}:{port}"]
    config.loglevel = "WARNING"
    config.accesslog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(cast(Framework, app), config, shutdown_trigger=stop.wait))
    url = f"http://{LOOPBACK}:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}{probe}")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"{url} did not start")
    try:
        yield url
    finally:
        stop.set()
        await task


def write_app(directory: Path) -> Path:
    directory.mkdir()
    (directory / "pipeline.yaml").write_text(
        "pipeline:\n"
        + "".join(
            f"  - {{id: {agent}, type: python-service, configuration: {{className: m.V}}}}\n"
            for agent in ("my-agent", "down-agent", "unknown-agent")
        )
    )
    (directory / "gateways.yaml").write_text(
        """
gateways:
  - id: my-service
    type: service
    parameters:
      - sessionId
    service-options:
      agent-id: my-agent
      headers:
        - key: langstream-client-session-id
          value-from-parameters: sessionId
  - id: down-service
    type: service
    service-options:
      agent-id: down-agent
  - id: unknown-service
    type: service
    service-options:
      agent-id: unknown-agent
  - id: secured-service
    type: service
    service-options:
      agent-id: my-agent
    authentication:
      provider: http
      configuration:
        base-url: http://127.0.0.1:9/never-called
"""
    )
    return directory


@dataclass(frozen=True)
class Proxy:
    url: str

    def service_url(self, gateway: str = "my-service") -> str:
        return f"{self.url}/api/gateways/service/{TENANT}/{APP_ID}/{gateway}"


@pytest.fixture(scope="module")
async def proxy(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Proxy]:
    application = load_application(write_app(tmp_path_factory.mktemp("proxy") / "app"))
    async with served(UPSTREAM, free_port(), "/healthz") as upstream:
        urls = {
            (TENANT, APP_ID, "my-agent"): upstream,
            # Nothing listens there: the agent is down.
            (TENANT, APP_ID, "down-agent"): f"http://{LOOPBACK}:{free_port()}",
        }
        gateway = create_app(
            {(TENANT, APP_ID): application},
            KafkaSettings(kafka_bootstrap),
            GatewaySettings(),
            service_urls=urls,
        )
        async with served(gateway, free_port(), "/readyz") as url:
            yield Proxy(url)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as shared:
        yield shared


async def test_the_documented_call_reaches_the_service(
    proxy: Proxy, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        f"{proxy.service_url()}/the/custom/path?service-param-1=yes&param:sessionId=s1"
        "&credentials=secret",
        content=b'{"question": "hi"}',
        headers={"Content-Type": "application/json", "langstream-client-session-id": "forged"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-service"] == "echo"
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/the/custom/path"
    assert ["service-param-1", "yes"] in seen["pairs"]
    assert all(key not in ("credentials", "test-credentials") for key, _ in seen["pairs"])
    headers = [(key.lower(), value) for key, value in seen["headers"]]
    assert [v for k, v in headers if k == "langstream-client-session-id"] == ["s1"]
    assert ("content-type", "application/json") in headers
    assert seen["body"] == '{"question": "hi"}'


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
async def test_other_methods(proxy: Proxy, client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, f"{proxy.service_url()}/items/7?x=1&x=2")
    assert response.status_code == 200, response.text
    seen = response.json()
    assert (seen["method"], seen["path"]) == (method, "/items/7")
    assert seen["pairs"] == [["x", "1"], ["x", "2"]]


async def test_the_gateway_root_forwards_slash(proxy: Proxy, client: httpx.AsyncClient) -> None:
    response = await client.get(proxy.service_url())
    assert response.status_code == 200, response.text
    assert response.json()["path"] == "/"


async def test_a_large_body_streams_both_ways(proxy: Proxy, client: httpx.AsyncClient) -> None:
    payload = "x" * 200_000

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 10_000):
            yield payload[start : start + 10_000].encode()

    response = await client.put(f"{proxy.service_url()}/upload", content=chunks())
    assert response.status_code == 200, response.text
    assert response.json()["body"] == payload


async def test_an_upstream_404_stays_404(proxy: Proxy, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{proxy.service_url()}/missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "no such thing"}


async def test_a_service_that_refuses_connections_is_503(
    proxy: Proxy, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{proxy.service_url('down-service')}/x")
    body = assert_problem(response, 503)
    assert str(body["detail"]).startswith("service down-agent is not running: nothing accepts")
    assert response.headers["Retry-After"]


async def test_routes_change_while_the_gateway_serves(
    kafka_bootstrap: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    application = load_application(write_app(tmp_path / "app"))
    key = (TENANT, APP_ID, "my-agent")
    routes = ServiceRoutes()
    gateway = create_app(
        {(TENANT, APP_ID): application},
        KafkaSettings(kafka_bootstrap),
        GatewaySettings(),
        service_urls=routes,
    )
    async with (
        served(gateway, free_port(), "/readyz") as url,
        served(UPSTREAM, free_port(), "/healthz") as upstream,
    ):
        proxy = Proxy(url)
        body = assert_problem(await client.get(proxy.service_url()), 503)
        assert body["detail"] == "service my-agent is not running"
        routes.up(key, upstream)
        response = await client.get(f"{proxy.service_url()}/late")
        assert response.status_code == 200, response.text
        assert response.json()["path"] == "/late"
        routes.down(key, "ModuleNotFoundError: No module named 'langserve'")
        body = assert_problem(await client.get(proxy.service_url()), 503)
        assert body["detail"] == (
            "service my-agent is not running: ModuleNotFoundError: No module named 'langserve'"
        )


async def test_an_agent_not_running_is_503(proxy: Proxy, client: httpx.AsyncClient) -> None:
    response = await client.post(proxy.service_url("unknown-service"), content=b"{}")
    body = assert_problem(response, 503)
    assert body["detail"] == "service unknown-agent is not running"


async def test_an_authenticated_gateway_without_credentials_is_401(
    proxy: Proxy, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{proxy.service_url('secured-service')}/x")
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert str(body["detail"]).startswith("gateway secured-service needs credentials")


def test_hop_by_hop_headers_are_dropped_and_configured_ones_win() -> None:
    client = [
        ("Host", "gateway"),
        ("Connection", "keep-alive, X-Private"),
        ("X-Private", "1"),
        ("Content-Length", "3"),
        ("Transfer-Encoding", "chunked"),
        ("Accept", "*/*"),
        ("Session", "forged"),
    ]
    assert request_headers(client, {"session": "s1"}) == [("Accept", "*/*"), ("session", "s1")]
    upstream = [("Keep-Alive", "timeout=5"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    assert response_headers(upstream) == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]


def test_target_url_quotes_the_rest_of_the_path() -> None:
    assert target_url("http://h:1", "") == "http://h:1/"
    assert target_url("http://h:1/", "a b/c") == "http://h:1/a%20b/c"
