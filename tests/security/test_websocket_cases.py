"""W1-W13, the WebSocket cases of docs/auth.md: WebSockets through the real gateway under Hypercorn,
guarded by the google provider (local JWKS server) and an Origin allow-list."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway.settings import GatewaySettings
from sluice.kafka import KafkaSettings
from tests.auth.google_tokens import claims, sign
from tests.gateway.support import receive_json, refusal
from tests.security.conftest import ORIGIN, USER_HEADER, Guarded, gateway_log, guarded_gateway

pytestmark = pytest.mark.kafka

MAX_MESSAGE = 4096
SETTINGS = GatewaySettings(
    allowed_origins=(ORIGIN,),
    auth_failure_burst=None,
    max_message_bytes=MAX_MESSAGE,
    message_burst=20,
    messages_per_second=0.001,
)


@pytest.fixture(scope="module")
async def guarded(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Guarded]:
    """This module's gateway: small message and rate limits. Its clock is never moved, so
    token expiry (checked against real time on open sockets) stays in step."""
    directory = tmp_path_factory.mktemp("ws-security") / "app"
    async with guarded_gateway(KafkaSettings(kafka_bootstrap), directory, SETTINGS) as running:
        yield running


def token(guarded: Guarded, lifetime: float = 3600) -> str:
    now = time.time()
    return sign(
        guarded.jwks.keys[0], claims(guarded.clock, iat=int(now) - 10, exp=int(now + lifetime))
    )


def bearer_protocols(guarded: Guarded, lifetime: float = 3600) -> list[str]:
    return ["bearer", token(guarded, lifetime)]


async def closed(socket: ClientConnection) -> tuple[int | None, str | None]:
    async with asyncio.timeout(20):
        await socket.wait_closed()
    return socket.close_code, socket.close_reason


async def test_W1_a_bad_or_missing_token_is_401_before_accept(guarded: Guarded) -> None:
    url = guarded.ws("produce", "google-in")
    status, body = await refusal(url)
    assert (status, body["status"]) == (401, 401)
    for protocols in (["bearer", "garbage"], ["bearer", sign(guarded.jwks.keys[0], {"x": 1})]):
        status, body = await refusal(url, subprotocols=protocols)
        assert status == 401
        assert body["detail"].startswith("invalid credentials")


async def test_W2_a_foreign_origin_is_403_even_with_a_valid_token(guarded: Guarded) -> None:
    status, body = await refusal(
        guarded.ws("produce", "google-in"),
        origin="https://evil.example",
        subprotocols=bearer_protocols(guarded),
    )
    assert (status, body["detail"]) == (
        403,
        "origin https://evil.example is not allowed to open WebSockets",
    )


async def test_W3_no_origin_with_a_token_is_accepted(guarded: Guarded) -> None:
    # Pinned: a client without Origin is not a browser; its token is what protects it.
    async with connect(
        guarded.ws("produce", "google-in"),
        subprotocols=bearer_protocols(guarded),  # type: ignore[arg-type]
    ) as socket:
        await socket.send(json.dumps({"value": "w3"}))
        assert (await receive_json(socket))["status"] == "OK"
    async with connect(
        guarded.ws("produce", "google-in"),
        origin=ORIGIN,  # type: ignore[arg-type]
        subprotocols=bearer_protocols(guarded),  # type: ignore[arg-type]
    ) as socket:
        await socket.send(json.dumps({"value": "w3-origin"}))
        assert (await receive_json(socket))["status"] == "OK"


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "http://app.example",
        "https://app.example:8443",
        "https://app.example.evil.com",
        "https://app.example/",
        "HTTPS://APP.EXAMPLE.",
    ],
)
async def test_W4_origins_match_exactly(guarded: Guarded, origin: str) -> None:
    status, _ = await refusal(
        guarded.ws("produce", "google-in"),
        origin=origin,
        subprotocols=bearer_protocols(guarded),
    )
    assert status == 403


async def test_W5_the_bearer_subprotocol_is_echoed_without_the_token(guarded: Guarded) -> None:
    protocols = bearer_protocols(guarded)
    async with connect(
        guarded.ws("produce", "google-in"),
        subprotocols=protocols,  # type: ignore[arg-type]
    ) as socket:
        assert socket.subprotocol == "bearer"
        assert socket.response is not None
        assert socket.response.headers["Sec-WebSocket-Protocol"] == "bearer"
        assert protocols[1] not in str(socket.response.headers)


async def test_W6_a_token_in_the_query_is_accepted_and_never_logged(
    guarded: Guarded, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = token(guarded)
    async with connect(guarded.ws("produce", "google-in", f"?credentials={secret}")) as socket:
        await socket.send(json.dumps({"value": "w6"}))
        assert (await receive_json(socket))["status"] == "OK"
    # The gateway writes no access log (a query may carry credentials), and nothing else logs it.
    logged = gateway_log(caplog, guarded)
    assert secret not in logged
    assert secret.split(".")[2] not in logged


async def test_W7_the_socket_closes_with_1008_when_the_token_expires(guarded: Guarded) -> None:
    async with connect(
        guarded.ws("consume", "google-out"),
        subprotocols=bearer_protocols(guarded, lifetime=2),  # type: ignore[arg-type]
    ) as socket:
        started = time.monotonic()
        assert await closed(socket) == (1008, "the credentials expired")
    assert 0.5 < time.monotonic() - started < 10


async def test_W8_a_message_above_the_limit_closes_with_1009_and_writes_nothing(
    guarded: Guarded,
) -> None:
    before = await guarded.written()
    async with connect(
        guarded.ws("produce", "google-in"),
        subprotocols=bearer_protocols(guarded),  # type: ignore[arg-type]
    ) as socket:
        await socket.send(json.dumps({"value": "x" * MAX_MESSAGE}))
        code, _ = await closed(socket)
    assert code == 1009
    assert await guarded.written() == before


async def test_W9_invalid_json_is_answered_and_writes_nothing(guarded: Guarded) -> None:
    before = await guarded.written()
    async with connect(
        guarded.ws("produce", "google-in"),
        subprotocols=bearer_protocols(guarded),  # type: ignore[arg-type]
    ) as socket:
        for frame in ("{nope", "[1, 2]", '"text"', '{"value": 1, "extra": 2}'):
            answer = await receive_json_after(socket, frame)
            assert answer["status"] == "BAD_REQUEST"
            assert answer["reason"]
        await socket.send(json.dumps({"value": "w9"}))  # the socket still works
        assert (await receive_json(socket))["status"] == "OK"
    assert await guarded.written() == before + 1


async def receive_json_after(socket: ClientConnection, frame: str) -> dict[str, str]:
    await socket.send(frame)
    answer = await receive_json(socket)
    assert isinstance(answer, dict)
    return answer


async def test_W10_a_binary_frame_closes_with_1003(guarded: Guarded) -> None:
    before = await guarded.written()
    async with connect(
        guarded.ws("produce", "google-in"),
        subprotocols=bearer_protocols(guarded),  # type: ignore[arg-type]
    ) as socket:
        await socket.send(b'{"value": "binary"}')
        assert await closed(socket) == (1003, "binary frames are not accepted: send JSON text")
    assert await guarded.written() == before


async def test_W11_a_flood_closes_with_1008(guarded: Guarded) -> None:
    # Pinned: the burst is served, the message after it closes the socket.
    before = await guarded.written()
    async with connect(
        guarded.ws("produce", "google-in"),
        subprotocols=bearer_protocols(guarded),  # type: ignore[arg-type]
    ) as socket:
        for index in range(SETTINGS.message_burst):
            await socket.send(json.dumps({"value": index}))
            assert (await receive_json(socket))["status"] == "OK"
        await socket.send(json.dumps({"value": "one too many"}))
        assert await closed(socket) == (1008, "more than 0.001 messages per second")
    assert await guarded.written() == before + SETTINGS.message_burst


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/produce/my-tenant/my-app/no-such-gateway", 404),
        ("/v1/produce/my-tenant/no-such-app/google-in", 404),
        ("/v1/produce/other-tenant/my-app/google-in", 404),
        ("/v1/nothing/my-tenant/my-app/google-in", 404),
        ("/v1/produce/my-tenant/my-app/google-session", 400),  # the sessionId parameter missing
        ("/v1/produce/my-tenant/my-app/google-in?option:position=nope", 400),
    ],
)
async def test_W12_a_bad_path_or_query_is_4xx_not_500(
    guarded: Guarded, path: str, status: int
) -> None:
    base = guarded.url.replace("http://", "ws://", 1)
    found, body = await refusal(
        base + path,
        subprotocols=bearer_protocols(guarded),
    )
    assert (found, body["status"]) == (status, status)


async def test_W13_shutdown_closes_open_sockets_with_1001(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with guarded_gateway(KafkaSettings(kafka_bootstrap), tmp_path / "app", SETTINGS) as gw:
        socket = await connect(
            gw.ws("consume", "google-out"),
            subprotocols=bearer_protocols(gw),  # type: ignore[arg-type]
        )
        producer = await connect(
            gw.ws("produce", "google-in"),
            subprotocols=bearer_protocols(gw),  # type: ignore[arg-type]
        )
        await producer.send(json.dumps({"value": "acked before shutdown"}))
        assert (await receive_json(producer))["status"] == "OK"
        written = await gw.written()
        records = await gw.records()
    assert (socket.close_code, producer.close_code) == (1001, 1001)
    assert written == 1
    assert records[0].value == "acked before shutdown"
    assert records[0].headers[USER_HEADER] == "1234567890"
