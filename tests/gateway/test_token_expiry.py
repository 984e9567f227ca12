"""A WebSocket authenticated with a token that expires is closed with 1008 at expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from sluice.kafka import KafkaSettings
from tests.gateway.support import Served, serve_gateway, unique, write_app

pytestmark = pytest.mark.kafka

SECRET = "a-test-secret-of-at-least-32-bytes!!"
ISSUER = "https://issuer.example"
AUDIENCE = "sluice-tests"


def token(expires_in: float) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": int(now + expires_in),
    }
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(SECRET))


@pytest.fixture
async def served(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Served]:
    answers = unique("expiry")
    gateways = f"""
gateways:
  - id: out
    type: consume
    topic: {answers}
    authentication:
      provider: jwt
      configuration:
        issuer: {ISSUER}
        audience: {AUDIENCE}
        secretKey: {SECRET}
        algorithms: [HS256]
"""
    app_dir = write_app(tmp_path / "app", {answers: 1}, gateways)
    async with serve_gateway(KafkaSettings(kafka_bootstrap), app_dir) as gateway:
        yield gateway


async def test_a_socket_is_closed_with_1008_when_its_token_expires(served: Served) -> None:
    async with connect(
        served.ws("consume", "out"), subprotocols=[Subprotocol("bearer"), Subprotocol(token(3))]
    ) as socket:
        async with asyncio.timeout(30):
            await socket.wait_closed()
    assert socket.close_code == 1008
    assert socket.close_reason == "the credentials expired"


async def test_an_expired_token_is_refused_before_accept(served: Served) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            served.ws("consume", "out"),
            subprotocols=[Subprotocol("bearer"), Subprotocol(token(-3600))],
        ):
            pass
    assert refused.value.response.status_code == 401
