"""The built-in ``langserve-invoke`` agent against a real LangServe server, the way LangStream's
``langserve-invoke`` example runs it: a LangServe chain (prompt | ChatOpenAI) at ``/chain`` on
port 8000, and a pipeline that streams ``/chain/stream`` into ``value.answer`` and its pieces to
``streaming-answers-topic``, grouped up to ``min-chunks-per-message: 10``.

The application (``tests/sluice/apps/langserve-invoke``) is ours: its python-service runs the
chain with its own uvicorn on port 8000, as LangStream's services did, in the environment Sluice
builds from its ``python/requirements.txt``; ChatOpenAI reaches the fake OpenAI server through
``OPENAI_BASE_URL``. The fake streams its answer a word at a time, so the chunk records the
agent writes can be computed from the answer alone.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.examples.support import Example, receive_json, sluice_run
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.kafka

APP = Path(__file__).resolve().parents[1] / "sluice" / "apps" / "langserve-invoke"
SERVICE_PORT = 8000


def expected_chunks(answer: str, limit: int) -> list[str]:
    """LangStream's grouping of a word-at-a-time answer (LangServeClient): 1, 2, 4, ... up to
    ``limit`` words per chunk; the stream's end flushes what is left, an empty chunk when the
    words ended with a full one."""
    words = re.findall(r"\S+\s*", answer)
    chunks, size = [], 1
    while len(words) >= size:
        chunks.append("".join(words[:size]))
        words = words[size:]
        size = min(size * 2, limit)
    return [*chunks, "".join(words)]


def test_expected_chunks_double_up_to_the_limit() -> None:
    answer = " ".join(str(n) for n in range(30))
    assert [len(c.split()) for c in expected_chunks(answer, 10)] == [1, 2, 4, 8, 10, 5]
    assert [len(c.split()) for c in expected_chunks(answer, 5)] == [1, 2, 4, 5, 5, 5, 5, 3]
    assert expected_chunks("A car is", 20) == ["A ", "car is", ""]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def app(
    kafka_bootstrap: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> AsyncIterator[Example]:
    for _ in range(60):
        if port_is_free(SERVICE_PORT):
            break
        await asyncio.sleep(0.5)
    else:
        # Never a skip: a skipped test would count as passing.
        pytest.fail(
            f"port {SERVICE_PORT} stayed taken for 30 s: this test's LangServe server listens "
            "there, as LangStream's langserve-invoke example does"
        )
    async with sluice_run(APP, kafka_bootstrap, tmp_path, environ=fake_openai.environ()) as running:
        assert any(line.startswith("Ready in") for line in running.lines), running.output
        yield running


async def streamed(socket: ClientConnection) -> list[dict[str, Any]]:
    """The records of one streamed answer, up to the one marked last."""
    records: list[dict[str, Any]] = []
    while True:
        frame = await receive_json(socket, timeout=60)
        records.append(frame["record"])
        if frame["record"]["headers"].get("stream-last-message") == "true":
            return records


async def test_a_streamed_answer_reaches_the_chat_in_growing_chunks(
    app: Example, fake_openai: FakeOpenAI
) -> None:
    topic = "a cat who runs a small bakery in the old town and never sells bread before noon today"
    answer = f"Fake answer to: tell me a joke about {topic}"
    async with (
        connect(app.ws_url("chat", "chat", "?param:session-id=alice")) as alice,
        connect(app.ws_url("chat", "chat", "?param:session-id=bob")) as bob,
        connect(app.ws_url("consume", "answers")) as answers,
    ):
        await alice.send(json.dumps({"value": topic}))
        assert await receive_json(alice) == {"status": "OK", "reason": None}
        chunks = await streamed(alice)
        final = (await receive_json(answers, timeout=60))["record"]
        # Only the asking session is sent the answer.
        with pytest.raises(TimeoutError):
            await receive_json(bob, timeout=1)

    assert [c["value"] for c in chunks] == expected_chunks(answer, 10)
    assert [len(c["value"].split()) for c in chunks] == [1, 2, 4, 8, 10, 1]
    assert len({c["headers"]["stream-id"] for c in chunks}) == 1
    assert [c["headers"]["stream-index"] for c in chunks] == [str(i) for i in range(1, 7)]
    assert [c["headers"]["stream-last-message"] for c in chunks] == ["false"] * 5 + ["true"]
    # The session header of the question is kept on every chunk: that is how the chat routes them.
    assert all(c["headers"]["session-id"] == "alice" for c in chunks), chunks

    # document-to-json copied the headers into the value (its copy-properties default).
    assert json.loads(final["value"]) == {"topic": topic, "session-id": "alice", "answer": answer}
    assert final["headers"]["session-id"] == "alice"
    assert not any(name.startswith("stream-") for name in final["headers"]), final

    sent = [r for r in fake_openai.requests if topic in json.dumps(r.body)]
    assert [r.streamed for r in sent] == [True]
    assert sent[0].body["messages"] == [
        {"role": "user", "content": f"tell me a joke about {topic}"}
    ]


async def test_an_invoked_answer_goes_into_value_answer(
    app: Example, fake_openai: FakeOpenAI
) -> None:
    async with (
        connect(app.ws_url("produce", "ask")) as ask,
        connect(app.ws_url("consume", "answers-invoked")) as answers,
    ):
        for topic in ("dogs", "parrots"):
            await ask.send(json.dumps({"value": json.dumps({"topic": topic})}))
            assert await receive_json(ask) == {"status": "OK", "reason": None}
        records = [(await receive_json(answers, timeout=60))["record"] for _ in range(2)]

    assert [json.loads(r["value"]) for r in records] == [
        {"topic": topic, "answer": f"Fake answer to: tell me a joke about {topic}"}
        for topic in ("dogs", "parrots")
    ]
    sent = [r for r in fake_openai.requests if "dogs" in json.dumps(r.body)]
    assert [r.streamed for r in sent] == [False]
