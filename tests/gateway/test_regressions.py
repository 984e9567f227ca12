"""Gateway regressions: one test per bug found (and fixed) in the gateway's handling of bodies,
frames, upgrades, batches and services."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, request
from websockets.asyncio.client import connect

from gateway.app import create_app
from gateway.serving import serving
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.kafka import KafkaSettings
from sluice.net import LOOPBACK, free_port
from tests.gateway.support import (
    APP_ID,
    TENANT,
    Served,
    TopicProbe,
    app_topics,
    assert_problem,
    receive_json,
    refusal,
    serve_gateway,
    unique,
    write_app,
)

pytestmark = pytest.mark.kafka

TOKEN = "secret-token-123"
DEPTH = 10_000


@contextlib.asynccontextmanager
async def auth_endpoint() -> AsyncIterator[str]:
    """A local identity endpoint for the ``http`` provider: TOKEN is alice, anything else 401."""
    app = Quart("auth")

    @app.get("/auth")
    async def auth() -> tuple[dict[str, str], int]:
        if request.headers.get("Authorization") == f"Bearer {TOKEN}":
            return {"subject": "alice"}, 200
        return {}, 401

    config = Config()
    port = free_port()
    config.bind = [f"{LOOPBACK}:{port}"]
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    url = f"http://{LOOPBACK}:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                await client.get(f"{url}/auth")
                break
            await asyncio.sleep(0.05)
    try:
        yield url
    finally:
        stop.set()
        await task


@dataclass(frozen=True)
class Env:
    served: Served
    probe: TopicProbe
    questions: str
    events: str


@pytest.fixture(scope="module")
async def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    kafka = KafkaSettings(kafka_bootstrap)
    questions, secured, events = (
        unique("wip-questions"),
        unique("wip-secured"),
        unique("wip-events"),
    )
    async with auth_endpoint() as auth_url:
        app_dir = write_app(
            tmp_path_factory.mktemp("wip") / APP_ID,
            {questions: 1, secured: 1, events: 1},
            f"""
gateways:
  - id: user-input
    type: produce
    topic: {questions}
    produce-options:
      headers:
        - key: fixed
          value: v
  - id: secured-input
    type: produce
    topic: {secured}
    events-topic: {events}
    authentication:
      provider: http
      configuration:
        base-url: {auth_url}
        path-template: /auth
    produce-options:
      headers:
        - key: user
          value-from-authentication: subject
""",
        )
        async with (
            serve_gateway(kafka, app_dir, GatewaySettings(ping_interval=1.0)) as served,
            TopicProbe(kafka, app_topics(served.application)) as probe,
        ):
            yield Env(served, probe, questions, events)


async def test_deeply_nested_json_body_is_400(env: Env) -> None:
    # Was: 500 "the gateway failed to serve the request; the error is logged" (RecursionError
    # from json.loads is not a ValueError, so gateway.messages._load_json lets it through).
    body = b'{"value": ' + b"[" * DEPTH + b"]" * DEPTH + b"}"
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            env.served.http("produce", "user-input"),
            content=body,
            headers={"Content-Type": "application/json"},
        )
    detail = assert_problem(response, 400)
    assert detail.startswith("Error while parsing JSON payload: ")
    await env.probe.assert_empty(env.questions)


async def test_deeply_nested_json_frame_is_a_bad_request_frame(env: Env) -> None:
    # Was: the socket closed with 1011 (no reason), and Hypercorn logs "Error in ASGI Framework":
    # the app's error handler (gateway/app.py http_error) reads request.path in a WebSocket
    # context -> RuntimeError: Not within a request context.
    frame = '{"value": ' + "[" * DEPTH + "]" * DEPTH + "}"
    async with connect(env.served.ws("produce", "user-input")) as socket:
        await socket.send(frame)
        answer = await receive_json(socket)
    assert answer["status"] == "BAD_REQUEST"
    assert answer["reason"].startswith("Error while parsing JSON payload: ")


async def test_a_bearer_subprotocol_token_is_not_written_to_the_events_topic(env: Env) -> None:
    # Was: ClientConnected / ClientDisconnected carry
    # httpRequestHeaders["Sec-Websocket-Protocol"] == "bearer, secret-token-123".
    url = env.served.ws("produce", "secured-input")
    async with connect(url, subprotocols=["bearer", TOKEN]) as socket:  # type: ignore[list-item]
        await socket.send(json.dumps({"value": "hello"}))
        assert await receive_json(socket) == {"status": "OK", "reason": None}
    events: list[Any] = []
    async with asyncio.timeout(20):
        while len(events) < 2:
            events = await env.probe.records(env.events)
    for event in events:
        assert TOKEN not in json.dumps(event.value), event.value


async def test_a_batch_error_names_the_item_for_a_header_clash_too(env: Env) -> None:
    # gateway/messages.py: "In a batch ... an error names the item: message [<i>]: ...".
    # Was: "Header fixed is configured as parameter-level header." (no item index).
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            env.served.http("produce", "user-input"),
            json=[{"value": "a"}, {"value": "b", "headers": {"fixed": "x"}}],
        )
    assert_problem(
        response, 400, "message [1]: Header fixed is configured as parameter-level header."
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/service/my-tenant/my-app/user-input", 404),
        ("/v1/produce/my-tenant/my-app", 404),
        # An HTTP-only route: the upgrade (a GET) is not one of its methods.
        ("/api/gateways/produce/my-tenant/my-app/user-input", 405),
        ("/nope", 404),
    ],
)
async def test_a_websocket_upgrade_to_an_unknown_path_is_a_4xx_problem(
    env: Env, path: str, expected: int
) -> None:
    # docs/gateway.md: an unknown gateway is "a 404 answer to the WebSocket upgrade"; failures
    # before accept are 4xx, not 500. Was: 500 with an empty body, and Hypercorn logs "Error in
    # ASGI Framework" (gateway/app.py http_error reads request.path in a WebSocket context:
    # RuntimeError: Not within a request context).
    status, body = await refusal(env.served.ws_url + path)
    assert status == expected
    assert body["status"] == expected


async def test_a_body_within_the_limit_but_too_big_for_kafka_is_413_not_503(env: Env) -> None:
    # docs/gateway.md, "Limits": a record above the producer's max request size is 413, before
    # anything is written. Was: 503 + Retry-After: 1, "Kafka did not take the message: ...
    # MessageSizeTooLargeError: The message is 1048864 bytes when serialized which is larger
    # than the maximum request size ..." -- retrying can never succeed. Over WebSocket the same
    # frame is answered PRODUCER_ERROR instead of BAD_REQUEST (or 1009).
    limit = GatewaySettings().max_body_bytes
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(
            env.served.http("produce", "user-input"),
            content=b"x" * (limit - 1),
            headers={"Content-Type": "text/plain"},
        )
    assert_problem(response, 413)
    assert "retry-after" not in response.headers
    await env.probe.assert_empty(env.questions)


async def test_a_service_whose_output_topic_is_missing_is_503_not_500(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Was, after ~40 s (whatever option:timeout says): 500 "the gateway failed to serve the
    # request; the error is logged" -- ReplyRouter.start raises sluice.errors.KafkaError
    # ("cannot start a Kafka consumer of [...]: UnknownTopicOrPartitionError"), which
    # gateway/app.py does not map. (A consume socket on a missing topic gets its 503, also after
    # ~40 s; an HTTP produce gets 503 after produce_timeout.)
    missing_in, missing_out = unique("wip-missing-in"), unique("wip-missing-out")
    app_dir = tmp_path / APP_ID
    app_dir.mkdir()
    (app_dir / "pipeline.yaml").write_text(
        f"topics:\n  - name: {missing_in}\n  - name: {missing_out}\n"
    )
    (app_dir / "gateways.yaml").write_text(
        f"""
gateways:
  - id: svc
    type: service
    service-options:
      input-topic: {missing_in}
      output-topic: {missing_out}
"""
    )
    application = load_application(app_dir, name=APP_ID)
    kafka = KafkaSettings(kafka_bootstrap)
    quart_app = create_app({(TENANT, APP_ID): application}, kafka, GatewaySettings())
    async with (
        serving(quart_app, LOOPBACK, free_port()) as url,
        httpx.AsyncClient(timeout=120) as client,
    ):
        response = await client.post(
            f"{url}/api/gateways/service/{TENANT}/{APP_ID}/svc",
            params={"option:timeout": "2"},
            content=b"hello",
        )
    assert_problem(response, 503)
    assert "retry-after" in response.headers


async def test_a_batch_with_an_item_too_big_for_kafka_writes_nothing(env: Env) -> None:
    # docs/gateway.md: a batch is all or nothing. Was: 503 (MessageSizeTooLargeError for the
    # second item) and the first item "small" IS on the topic: encoding is checked for every
    # item before sending, but the record size is only checked by the producer, item by item.
    limit = GatewaySettings().max_body_bytes
    batch = [{"value": "small"}, {"value": "x" * (limit - 200)}]
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(env.served.http("produce", "user-input"), json=batch)
    assert 400 <= response.status_code < 500, response.text
    await env.probe.assert_empty(env.questions)
