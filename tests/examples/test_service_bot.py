"""examples/service-bot: request/reply through a topics-mode service gateway. Each of many
concurrent requests gets the reply to its own question."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.examples.support import EXAMPLES, Example, run_cli, sluice_run

pytestmark = pytest.mark.kafka

APP = EXAMPLES / "service-bot"


@pytest.fixture
async def bot(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Example]:
    async with sluice_run(APP, kafka_bootstrap, tmp_path) as running:
        yield running


async def test_curl_gets_the_reply(bot: Example) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        # curl -X POST -H 'Content-Type: application/json' -d '{"value": "what is 6 * 7?"}' URL
        reply = await http.post(bot.http_url("service", "ask"), json={"value": "what is 6 * 7?"})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert set(body) == {"record", "offset"}
        assert body["record"]["value"] == "6 * 7 = 42"
        assert "langstream-service-request-id" in body["record"]["headers"]

        hello = await http.post(bot.http_url("service", "ask"), content=b"hello")
        assert hello.json()["record"]["value"].startswith("Hello! I am Sluicebot.")


async def test_concurrent_requests_get_their_own_replies(bot: Example) -> None:
    async with httpx.AsyncClient(timeout=60) as http:

        async def ask(n: int) -> str:
            reply = await http.post(bot.http_url("service", "ask"), json={"value": f"{n} + {n}"})
            assert reply.status_code == 200, reply.text
            return str(reply.json()["record"]["value"])

        replies = await asyncio.gather(*(ask(n) for n in range(20)))
    assert replies == [f"{n} + {n} = {2 * n}" for n in range(20)]


async def test_sluice_gateway_service(bot: Example) -> None:
    code, out, err = await run_cli(
        "gateway", "service", "service-bot", "ask", "-v", "what time is it?", "-u", bot.gateway
    )
    assert code == 0, err
    assert '"value": "It is ' in out
