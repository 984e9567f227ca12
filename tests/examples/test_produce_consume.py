"""examples/produce-consume: HTTP produce and WebSocket consume per session. Each session's
consumer sees its own records and nobody else's; a consumer that reconnects with the offset of
the last record it saw gets what came after, and nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.examples.support import EXAMPLES, Example, receive_json, run_cli, sluice_run

pytestmark = pytest.mark.kafka

APP = EXAMPLES / "produce-consume"


@pytest.fixture
async def example(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Example]:
    async with sluice_run(APP, kafka_bootstrap, tmp_path) as running:
        yield running


async def test_each_session_reads_its_own_records(example: Example) -> None:
    def produce_url(session: str) -> str:
        return example.http_url("produce", "texts") + f"?param:sessionId={session}"

    def consume_url(session: str, position: str = "latest") -> str:
        query = f"?param:sessionId={session}&option:position={position}"
        return example.ws_url("consume", "counted", query)

    async with (
        httpx.AsyncClient(timeout=60) as http,
        connect(consume_url("alice")) as alice,
        connect(consume_url("bob")) as bob,
    ):
        for session, text in [("alice", "one two three"), ("bob", "four"), ("alice", "five six")]:
            answer = await http.post(produce_url(session), json={"value": text})
            assert answer.json() == {"status": "OK", "reason": None}

        first, second = await receive_json(alice), await receive_json(alice)
        assert first["record"]["value"] == {"text": "one two three", "words": 3}
        assert second["record"]["value"] == {"text": "five six", "words": 2}
        assert (await receive_json(bob))["record"]["value"] == {"text": "four", "words": 1}
        with pytest.raises(TimeoutError):
            await receive_json(alice, timeout=1)

    # Reconnecting after the first record: the second comes again, and only it.
    async with connect(consume_url("alice", first["offset"])) as again:
        assert (await receive_json(again))["record"]["value"] == second["record"]["value"]
        with pytest.raises(TimeoutError):
            await receive_json(again, timeout=1)

    # The same from the command line: `sluice gateway produce` then `consume --position`.
    code, out, err = await run_cli(
        "gateway",
        "produce",
        "produce-consume",
        "texts",
        "-p",
        "sessionId=carol",
        "-v",
        "seven eight",
        "-u",
        example.gateway,
    )
    assert code == 0, err
    code, out, err = await run_cli(
        "gateway",
        "consume",
        "produce-consume",
        "counted",
        "-p",
        "sessionId=carol",
        "--position",
        "earliest",
        "-n",
        "1",
        "--timeout",
        "30",
        "-u",
        example.gateway,
    )
    assert code == 0, err
    assert '"value": {"text": "seven eight", "words": 2}' in out


async def test_server_sent_events_for_plain_http_clients(example: Example) -> None:
    url = example.http_url("consume", "counted")
    params = {"param:sessionId": "dave", "option:position": "earliest"}
    async with httpx.AsyncClient(timeout=60) as http:
        produced = await http.post(
            example.http_url("produce", "texts"),
            params={"param:sessionId": "dave"},
            content=b"plain text body",
            headers={"Content-Type": "text/plain"},
        )
        assert produced.status_code == 200, produced.text
        async with http.stream("GET", url, params=params) as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            async for line in events.aiter_lines():
                if line.startswith("data:"):
                    assert '"words": 3' in line
                    break
