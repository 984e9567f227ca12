"""examples/chat: a question on the chat gateway gets a streamed answer, piece by piece, with
stream-id / stream-index / stream-last-message; only the asking session sees it; `sluice
gateway chat` prints it as one line."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.examples.support import EXAMPLES, Example, receive_json, run_cli, sluice_run

pytestmark = pytest.mark.kafka

CHAT = EXAMPLES / "chat"


def expected_answer(question: str) -> str:
    return (
        f'You asked: "{question}". I am a pretend language model, so I answer every '
        "question the same way, one word at a time, to show a streamed answer."
    )


@pytest.fixture
async def chat(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Example]:
    async with sluice_run(CHAT, kafka_bootstrap, tmp_path) as running:
        yield running


async def streamed_answer(socket: ClientConnection) -> list[tuple[float, dict[str, Any]]]:
    """The pushed records of one streamed answer, up to its last piece, with arrival times."""
    pieces: list[tuple[float, dict[str, Any]]] = []
    while True:
        frame = await receive_json(socket)
        assert set(frame) == {"record", "offset"}, frame
        pieces.append((time.monotonic(), frame["record"]))
        if frame["record"]["headers"]["stream-last-message"] == "true":
            return pieces


async def test_a_question_gets_an_answer_streamed_in_pieces(chat: Example) -> None:
    question = "what is a stream?"
    async with (
        connect(chat.ws_url("chat", "chat", "?param:sessionId=alice")) as alice,
        connect(chat.ws_url("chat", "chat", "?param:sessionId=bob")) as bob,
    ):
        await alice.send(json.dumps({"value": question}))
        assert await receive_json(alice) == {"status": "OK", "reason": None}
        pieces = await streamed_answer(alice)

        records = [record for _, record in pieces]
        assert "".join(r["value"] for r in records) == expected_answer(question)
        assert len(records) == len(expected_answer(question).split(" "))
        assert len({r["headers"]["stream-id"] for r in records}) == 1
        assert [int(r["headers"]["stream-index"]) for r in records] == list(range(len(records)))
        assert [r["headers"]["stream-last-message"] for r in records] == ["false"] * (
            len(records) - 1
        ) + ["true"]
        assert all(r["headers"]["langstream-client-session-id"] == "alice" for r in records)
        # Streamed, not batched: the first piece came long before the last one.
        assert pieces[-1][0] - pieces[0][0] > 1.0

        # Bob's session saw none of it.
        with pytest.raises(TimeoutError):
            await receive_json(bob, timeout=1)


async def test_sluice_gateway_chat_prints_the_streamed_answer(chat: Example) -> None:
    code, out, err = await run_cli(
        "gateway", "chat", "chat", "chat", "-p", "sessionId=cli", "-v", "hello", "-u", chat.gateway
    )
    assert code == 0, err
    assert out == expected_answer("hello") + "\n"

    # Interactive: each line typed is a question; each answer is printed as it streams in.
    code, out, err = await run_cli(
        "gateway",
        "chat",
        "chat",
        "chat",
        "-p",
        "sessionId=cli-2",
        "-u",
        chat.gateway,
        stdin=b"one\ntwo\n",
    )
    assert code == 0, err
    assert out == expected_answer("one") + "\n" + expected_answer("two") + "\n"


async def test_the_session_parameter_is_required(chat: Example) -> None:
    code, _, err = await run_cli("gateway", "chat", "chat", "chat", "-v", "hi", "-u", chat.gateway)
    assert code == 1
    assert "missing required parameter sessionId" in err
