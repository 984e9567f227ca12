"""examples/counter, a stateful agent (LangStream 0.4's "Stateful agents"): every question's
answer says how many came before, the count lives in the agent's persistent state directory and
survives a restart of `sluice run`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.examples.support import EXAMPLES, receive_json, sluice_run

pytestmark = pytest.mark.kafka

COUNTER = EXAMPLES / "counter"
JSON = {"Content-Type": "application/json"}


async def test_the_count_is_kept_across_a_restart(kafka_bootstrap: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with (
        sluice_run(
            COUNTER, kafka_bootstrap, tmp_path, state_dir=state, delete_topics_after=False
        ) as counter,
        httpx.AsyncClient(timeout=60) as http,
    ):
        # The README's requests: produce for session s1, read its answers on the WebSocket.
        async with connect(counter.ws_url("consume", "answers", "?param:sessionId=s1")) as answers:
            produced = await http.post(
                counter.http_url("produce", "questions") + "?param:sessionId=s1",
                json={"value": "hello"},
            )
            assert produced.json() == {"status": "OK", "reason": None}
            frame = await receive_json(answers)
            assert frame["record"]["value"] == "hello (question #1)"
            assert frame["record"]["headers"]["langstream-client-session-id"] == "s1"

        # Request/reply through the worker: the service gateway.
        reply = await http.post(counter.http_url("service", "ask"), json={"value": "again"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["record"]["value"] == "again (question #2)"

    counter_file = state / "default" / "counter" / "counter" / "counter.txt"
    assert counter_file.read_text() == "2"

    async with (
        sluice_run(COUNTER, kafka_bootstrap, tmp_path, state_dir=state) as counter,
        httpx.AsyncClient(timeout=60) as http,
    ):
        reply = await http.post(
            counter.http_url("service", "ask"),
            content=json.dumps({"value": "still there?"}),
            headers=JSON,
        )
        assert reply.json()["record"]["value"] == "still there? (question #3)"
