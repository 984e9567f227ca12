"""``ai-chat-completions`` and ``ai-text-completions`` against a real model: Gemma 3 270M served
by llama-cpp-python's OpenAI-compatible server on loopback (the ``local_llm`` fixture,
:mod:`tests.fakes.local_llm`; built once per machine, offline).

The model is a tiny base model, so these tests assert on protocol behaviour, never on wording:
the answer is non-empty and lands in its field, streamed chunks arrive in order with indexes
1..n and the last one marked, their grouping (1, 2, 4, ... pieces) matches the deltas the server
sent, ``max-tokens`` cuts the answer (finish reason ``length``) and a stop sequence ends it.

To know what the server sent, the agent talks to it through :class:`Recorder`, a real loopback
HTTP proxy that forwards each request and keeps the answer (the agent's client sees the same
bytes, a streamed answer in one piece). Content-exact cases are in ``test_completions.py``,
against the deterministic fake server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sluice.record import Record
from sluice.testing import AgentHarness
from tests.fakes.local_llm import LocalLlm
from workers.builtin.completions import ChatCompletions, Completions, TextCompletions

QUESTION = "What is Apache Kafka?"


@dataclass
class Exchange:
    """One request the agent made and the server's answer (the body as text)."""

    path: str
    request: dict[str, Any]
    status: int
    answer: str

    @property
    def events(self) -> list[dict[str, Any]]:
        """The server-sent events of a streamed answer, without the final ``[DONE]``."""
        events = []
        for line in self.answer.splitlines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                events.append(json.loads(line[5:]))
        return events


@dataclass
class Recorder:
    """A loopback proxy in front of ``upstream`` (the server's root URL) keeping every exchange."""

    upstream: str
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                answer = httpx.post(
                    recorder.upstream + self.path,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=120,
                )
                recorder.exchanges.append(
                    Exchange(self.path, json.loads(body), answer.status_code, answer.text)
                )
                self.send_response(answer.status_code)
                kind = answer.headers.get("content-type", "application/json")
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    @property
    def only(self) -> Exchange:
        [exchange] = self.exchanges
        assert exchange.status == 200, exchange.answer
        return exchange


@pytest.fixture
def recorder(local_llm: LocalLlm) -> Iterator[Recorder]:
    parts = urlsplit(local_llm.base_url)
    proxy = Recorder(f"{parts.scheme}://{parts.netloc}")
    try:
        yield proxy
    finally:
        proxy.close()


def resources(url: str) -> dict[str, Any]:
    return {"local": {"access-key": "any-key", "url": url}}


def chat_config(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gemma-3-270m",
        "messages": [{"role": "user", "content": "{{ value.question }}"}],
        "completion-field": "value.answer",
        "temperature": 0,
        "max-tokens": 32,
        "resources": resources(url),
        **extra,
    }


def text_config(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gemma-3-270m",
        "prompt": ["{{ value.prompt }}"],
        "completion-field": "value.answer",
        "temperature": 0,
        "max-tokens": 32,
        "resources": resources(url),
        **extra,
    }


async def run(agent: Completions, config: dict[str, Any], record: Record) -> list[Record]:
    await agent.init(config)
    await agent.start()
    try:
        return await agent.process(record)
    finally:
        await agent.close()


def answer_of(record: Record) -> Any:
    return json.loads(record.value)["answer"]


def expected_chunks(
    events: list[dict[str, Any]], limit: int, piece_of: Any
) -> list[tuple[str, str, str]]:
    """The (index, text, last) chunks LangStream's grouping makes of these events: non-empty
    pieces collect until the chunk holds 1, 2, 4, ... (at most ``limit``) of them, or the event
    with a finish reason closes the last chunk (an empty one if nothing is left)."""
    chunks: list[tuple[str, bool]] = []
    buffer: list[str] = []
    size, done = 1, False
    for event in events:
        if done or not event["choices"]:
            continue
        choice = event["choices"][0]
        piece = piece_of(choice)
        done = choice.get("finish_reason") is not None
        if piece:
            buffer.append(piece)
        if len(buffer) >= size or done:
            chunks.append(("".join(buffer), done))
            buffer = []
            size = min(size * 2, limit)
    assert done, "the stream ended without a finish reason"
    return [(str(i), text, "true" if last else "false") for i, (text, last) in enumerate(chunks, 1)]


def chat_piece(choice: dict[str, Any]) -> str:
    return str((choice.get("delta") or {}).get("content") or "")


def finish_reason(events: list[dict[str, Any]]) -> str | None:
    reasons = [e["choices"][0].get("finish_reason") for e in events if e["choices"]]
    return next((r for r in reasons if r is not None), None)


# -- ai-chat-completions ---------------------------------------------------------------------------


async def test_chat_answer_non_streamed_goes_to_the_field(recorder: Recorder) -> None:
    config = chat_config(recorder.base_url, stream=False)
    record = Record(json.dumps({"question": QUESTION}))
    [out] = await run(ChatCompletions(), config, record)
    answer = answer_of(out)
    assert isinstance(answer, str) and answer.strip()
    assert json.loads(out.value)["question"] == QUESTION
    exchange = recorder.only
    assert exchange.path == "/v1/chat/completions"
    assert exchange.request["messages"] == [{"role": "user", "content": QUESTION}]
    assert answer == json.loads(exchange.answer)["choices"][0]["message"]["content"]


async def test_chat_streamed_chunks_follow_the_deltas(recorder: Recorder) -> None:
    config = chat_config(recorder.base_url, **{"stream-to-topic": "answers", "max-tokens": 40})
    async with AgentHarness("ai-chat-completions", config=config) as harness:
        results = await harness.send(
            {"value": json.dumps({"question": QUESTION}), "headers": {"session-id": "s1"}}
        )
    events = recorder.only.events
    pieces = [chat_piece(e["choices"][0]) for e in events if e["choices"]]
    [out] = results.outputs
    assert answer_of(out) == "".join(pieces)
    assert answer_of(out).strip()
    writes = results.topic_writes
    assert {topic for topic, _ in writes} == {"answers"}
    chunks = [
        (r.headers["stream-index"], answer_of(r), r.headers["stream-last-message"])
        for _, r in writes
    ]
    assert chunks == expected_chunks(events, 20, chat_piece)
    assert [index for index, _, _ in chunks] == [str(i) for i in range(1, len(chunks) + 1)]
    assert [last for _, _, last in chunks] == ["false"] * (len(chunks) - 1) + ["true"]
    assert {r.headers["stream-id"] for _, r in writes} == {events[0]["id"]}
    assert all(r.headers["session-id"] == "s1" for _, r in writes)
    if len([p for p in pieces if p]) >= 4:
        assert len(chunks) >= 3  # 1, 2, then up to 4 pieces: the grouping grows


async def test_chat_streamed_with_small_chunk_limit(recorder: Recorder) -> None:
    config = chat_config(
        recorder.base_url,
        **{"stream-to-topic": "answers", "min-chunks-per-message": 2, "max-tokens": 12},
    )
    async with AgentHarness("ai-chat-completions", config=config) as harness:
        results = await harness.send({"value": json.dumps({"question": QUESTION})})
    events = recorder.only.events
    chunks = [
        (r.headers["stream-index"], answer_of(r), r.headers["stream-last-message"])
        for _, r in results.topic_writes
    ]
    assert chunks == expected_chunks(events, 2, chat_piece)


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_max_tokens_cuts_the_answer(recorder: Recorder, stream: bool) -> None:
    question = "Write a long story about a dragon who lives in a castle."
    config = chat_config(recorder.base_url, stream=stream, **{"max-tokens": 3})
    [out] = await run(ChatCompletions(), config, Record(json.dumps({"question": question})))
    exchange = recorder.only
    assert exchange.request["max_tokens"] == 3
    if stream:
        assert finish_reason(exchange.events) == "length"
        pieces = [chat_piece(e["choices"][0]) for e in exchange.events if e["choices"]]
        assert 0 < len([p for p in pieces if p]) <= 3
    else:
        body = json.loads(exchange.answer)
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["completion_tokens"] == 3
    assert 0 < len(answer_of(out)) <= 3 * 20  # three tokens of text


async def test_chat_stop_sequence_ends_the_answer(recorder: Recorder) -> None:
    question = "Count from one to twenty, separated by commas: 1, 2, 3,"
    config = chat_config(recorder.base_url, stream=False, stop=[",", "."], **{"max-tokens": 64})
    [out] = await run(ChatCompletions(), config, Record(json.dumps({"question": question})))
    exchange = recorder.only
    assert exchange.request["stop"] == [",", "."]
    assert json.loads(exchange.answer)["choices"][0]["finish_reason"] == "stop"
    assert "," not in answer_of(out) and "." not in answer_of(out)


# -- ai-text-completions ---------------------------------------------------------------------------

PROMPT = "1, 2, 3, 4, 5,"


async def test_text_answer_non_streamed_goes_to_the_field(recorder: Recorder) -> None:
    config = text_config(recorder.base_url, stream=False)
    [out] = await run(TextCompletions(), config, Record(json.dumps({"prompt": PROMPT})))
    answer = answer_of(out)
    assert isinstance(answer, str) and answer.strip()
    exchange = recorder.only
    assert exchange.path == "/v1/completions"
    assert exchange.request["prompt"] == [PROMPT]
    assert answer == json.loads(exchange.answer)["choices"][0]["text"]


async def test_text_streamed_chunks_in_order(recorder: Recorder) -> None:
    config = text_config(recorder.base_url, **{"stream-to-topic": "answers", "max-tokens": 20})
    async with AgentHarness("ai-text-completions", config=config) as harness:
        results = await harness.send({"value": json.dumps({"prompt": PROMPT})})
    events = recorder.only.events
    assert finish_reason(events) == "length"
    [out] = results.outputs
    answer = answer_of(out)
    assert answer.strip()
    chunks = [
        (r.headers["stream-index"], answer_of(r), r.headers["stream-last-message"])
        for _, r in results.topic_writes
    ]
    assert [index for index, _, _ in chunks] == [str(i) for i in range(1, len(chunks) + 1)]
    assert [last for _, _, last in chunks] == ["false"] * (len(chunks) - 1) + ["true"]
    assert "".join(text for _, text, _ in chunks) == answer
    texts = [str(e["choices"][0].get("text") or "") for e in events if e["choices"]]
    assert answer == "".join(texts).lstrip() or answer == "".join(texts)


async def test_text_stop_sequence_ends_the_answer(recorder: Recorder) -> None:
    config = text_config(recorder.base_url, stream=False, stop=[","], **{"max-tokens": 64})
    [out] = await run(TextCompletions(), config, Record(json.dumps({"prompt": PROMPT})))
    assert json.loads(recorder.only.answer)["choices"][0]["finish_reason"] == "stop"
    assert "," not in answer_of(out)
