"""WebSocket protocol violations get their close code (RFC 6455 7.4.1), not a bare TCP close:
1007 for a text message that is not UTF-8, 1002 for an unmasked client frame, a reserved opcode
or reserved bits; a handshake header the server cannot read gets an HTTP 400 answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.settings import GatewaySettings
from sluice.kafka import KafkaSettings
from tests.gateway.raw_websocket import BINARY, TEXT, RawWebSocket, frame
from tests.gateway.support import PROBLEM, Served, serve_gateway
from tests.gateway.test_websockets import write_app

pytestmark = pytest.mark.kafka

PRODUCE = "/v1/produce/my-tenant/my-app/user-input?param:sessionId=s1"
CONSUME = "/v1/consume/my-tenant/my-app/bot-output?param:sessionId=s1"


@pytest.fixture(scope="module")
async def gateway(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    suffix = uuid.uuid4().hex[:10]
    app_dir = write_app(
        tmp_path_factory.mktemp("ws-protocol") / "app", f"wsp-q-{suffix}", f"wsp-a-{suffix}"
    )
    async with serve_gateway(
        KafkaSettings(kafka_bootstrap), app_dir, GatewaySettings(ping_interval=None)
    ) as served:
        yield served


def _address(served: Served) -> tuple[str, int]:
    parts = urlsplit(served.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


VIOLATIONS = {
    "invalid UTF-8 text": (frame(TEXT, b'{"value": "\xff\xfe"}'), 1007),
    "invalid UTF-8 across frames": (
        frame(TEXT, b'{"value": "\xe2\x82', fin=False) + frame(0x0, b'\x28"}'),
        1007,
    ),
    "unmasked text frame": (frame(TEXT, b'{"value": 1}', masked=False), 1002),
    "reserved data opcode": (frame(0x3, b"x"), 1002),
    "reserved control opcode": (frame(0xB, b"x"), 1002),
    "reserved bits": (frame(TEXT, b'{"value": 1}', rsv=0b010), 1002),
    "fragmented control frame": (frame(0x9, b"x", fin=False), 1002),
    "continuation without a start": (frame(0x0, b"x"), 1002),
    "close code out of range": (frame(0x8, b"\x03\xe7"), 1002),
}


@pytest.mark.parametrize("path", [PRODUCE, CONSUME])
@pytest.mark.parametrize("case", sorted(VIOLATIONS))
async def test_a_protocol_violation_is_closed_with_its_code(
    gateway: Served, path: str, case: str
) -> None:
    data, code = VIOLATIONS[case]
    async with RawWebSocket(*_address(gateway), path) as socket:
        assert socket.status == 101, socket.head
        await socket.send(data)
        assert await socket.close_code() == code
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{gateway.url}/healthz")).status_code == 200


async def test_a_valid_frame_still_works_on_a_raw_socket(gateway: Served) -> None:
    async with RawWebSocket(*_address(gateway), PRODUCE) as socket:
        await socket.send(frame(TEXT, json.dumps({"value": "héllo"}).encode()))
        answer = await socket.receive()
        assert answer is not None and answer.opcode == TEXT
        assert json.loads(answer.payload)["status"] == "OK"
        await socket.send(frame(BINARY, b"\x00"))
        assert await socket.close_code() == 1003


@pytest.mark.parametrize(
    "header",
    [b"sec-websocket-protocol", b"sec-websocket-extensions", b"connection"],
)
@pytest.mark.parametrize("value", ["bearer, tökén".encode(), b"\xff"])
async def test_a_handshake_header_outside_ascii_is_an_http_400(
    gateway: Served, header: bytes, value: bytes
) -> None:
    extra = value if header != b"connection" else b"Upgrade, " + value
    async with RawWebSocket(*_address(gateway), PRODUCE, [(header, extra)]) as socket:
        assert socket.status == 400, socket.head
        assert f"content-type: {PROBLEM}".encode() in socket.head.lower()
        problem = json.loads(socket.body)
        assert problem["status"] == 400
        assert header.decode().lower() in problem["detail"].lower()
