"""The AI agents on an ``ollama-configuration`` resource, against a fake Ollama server on
loopback (:class:`tests.fakes.ollama_server.FakeOllama`): the requests LangStream sent, the
answer streamed as JSON lines and grouped into chunks, embeddings one call per text, and the
resource rules. Faults of every provider are in ``test_provider_faults``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.record import Record
from sluice.testing import AgentHarness
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.provider_server import Fault, fake_embedding
from workers.builtin.completions import (
    ChatCompletions,
    CompletionError,
    Completions,
    ResourceError,
    TextCompletions,
)
from workers.builtin.embeddings import ComputeAIEmbeddings, EmbeddingsError

CAR = ["A", " car", " is", " a", " vehicle"]


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


def resources(fake: FakeOllama) -> dict[str, Any]:
    return {
        "resources": {"llm": {"url": fake.url}},
        "resource-types": {"llm": "ollama-configuration"},
    }


def chat(fake: FakeOllama, *contents: str, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": c} for c in contents or ("{{ value }}",)]
    return {"model": "llama3", "messages": messages, **resources(fake), **extra}


async def run(
    agent: Completions | ComputeAIEmbeddings, config: dict[str, Any], record: Record
) -> list[Record]:
    await agent.init(config)
    await agent.start()
    try:
        return await agent.process(record)
    finally:
        await agent.close()


async def test_chat_joins_the_messages_with_a_double_quote(fake: FakeOllama) -> None:
    config = chat(fake, "You answer briefly.", "{{ value.q }}", max_tokens=None, temperature=0.2)
    [out] = await run(ChatCompletions(), config, Record('{"q": "what is a car?"}'))
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/api/generate")
    # LangStream's OllamaProvider: only model and prompt, contents joined with '"'.
    assert request.body == {"model": "llama3", "prompt": 'You answer briefly."what is a car?'}
    assert out.value == 'Fake answer to: You answer briefly."what is a car?'


async def test_streamed_lines_become_chunks_grouped_as_openai_s(fake: FakeOllama) -> None:
    fake.reply = lambda prompt: CAR
    extra = {
        "stream-to-topic": "answers",
        "stream-response-completion-field": "value",
        "completion-field": "value.answer",
        "min-chunks-per-message": 3,
    }
    record = Record('{"question": "the car"}', key="k", headers={"session-id": "s1"})
    *chunks, final = await run(ChatCompletions(), chat(fake, **extra), record)
    assert [
        (c.value, c.headers["stream-index"], c.headers["stream-last-message"]) for c in chunks
    ] == [("A", "1", "false"), (" car is", "2", "false"), (" a vehicle", "3", "true")]
    [stream_id] = {c.headers["stream-id"] for c in chunks}
    uuid.UUID(stream_id)  # Ollama gives no id: a random UUID, as LangStream made
    assert {c.destination for c in chunks} == {"answers"}
    assert all(c.headers["session-id"] == "s1" and c.key == "k" for c in chunks)
    assert json.loads(final.value) == {"question": "the car", "answer": "A car is a vehicle"}
    assert not any(name.startswith("stream-") for name in final.headers)


async def test_chunks_go_through_the_topic_producer(fake: FakeOllama) -> None:
    fake.reply = lambda prompt: CAR
    config = chat(fake, **{"stream-to-topic": "answers", "min-chunks-per-message": 2})
    async with AgentHarness("ai-chat-completions", config=config) as harness:
        results = await harness.send({"value": "q", "headers": {"session-id": "s1"}})
    assert results.values == ["A car is a vehicle"]
    assert [(t, r.value, r.headers["stream-index"]) for t, r in results.topic_writes] == [
        ("answers", "A", "1"),
        ("answers", " car is", "2"),
        ("answers", " a vehicle", "3"),
        ("answers", "", "4"),  # the "done" line closes with an empty chunk, as OpenAI's finish
    ]


async def test_stream_false_gives_the_answer_and_no_chunks(fake: FakeOllama) -> None:
    fake.reply = lambda prompt: CAR
    config = chat(fake, stream=False, **{"stream-to-topic": "answers"})
    assert await run(ChatCompletions(), config, Record("q")) == [Record("A car is a vehicle")]


async def test_text_completions_join_the_prompts(fake: FakeOllama) -> None:
    fake.reply = lambda prompt: ["I am", " fine"]
    config = {
        "model": "llama3",
        "prompt": ["Q: {{ value.q }}", "A:"],
        "completion-field": "value.a",
        "logprobs-field": "value.lp",
        **resources(fake),
    }
    [out] = await run(TextCompletions(), config, Record('{"q": "how are you?"}'))
    assert fake.requests[0].body == {"model": "llama3", "prompt": 'Q: how are you?"A:'}
    assert json.loads(out.value)["a"] == "I am fine"
    assert json.loads(out.value)["lp"] == {"tokens": [], "logprobs": []}


async def test_an_error_line_fails_the_record(fake: FakeOllama) -> None:
    fake.reply = lambda prompt: CAR
    fake.fault = lambda request: Fault(200, body=b'{"error": "out of memory"}\n')
    with pytest.raises(CompletionError, match=r'ollama resource "llm" .* answered an error: out'):
        await run(ChatCompletions(), chat(fake), Record("q"))


async def test_an_unknown_model_is_ollama_s_404(fake: FakeOllama) -> None:
    config = {**chat(fake), "model": "missing", "max-retries": 0}
    with pytest.raises(CompletionError, match=r"answered 404: .*model 'missing' not found"):
        await run(ChatCompletions(), config, Record("q"))


def embeddings(fake: FakeOllama, **extra: Any) -> dict[str, Any]:
    return {
        "model": "nomic-embed-text",
        "text": "{{ record.t }}",
        "loop-over": "value.docs",
        "embeddings-field": "record.v",
        **resources(fake),
        **extra,
    }


async def test_embeddings_one_call_per_text(fake: FakeOllama) -> None:
    docs = [{"t": f"text {n}"} for n in range(3)]
    [out] = await run(ComputeAIEmbeddings(), embeddings(fake), Record(json.dumps({"docs": docs})))
    assert [d["v"] for d in json.loads(out.value)["docs"]] == [fake_embedding(d["t"]) for d in docs]
    assert [(r.path, r.body) for r in fake.requests] == [
        ("/api/embeddings", {"model": "nomic-embed-text", "prompt": d["t"]}) for d in docs
    ]


async def test_an_embeddings_answer_without_a_vector_fails_the_record(fake: FakeOllama) -> None:
    fake.fault = lambda request: Fault(200, body=b'{"embedding": "none"}')
    with pytest.raises(Exception, match=r'ollama resource "llm" .* not an embedding') as caught:
        await run(ComputeAIEmbeddings(), embeddings(fake), Record('{"docs": [{"t": "x"}]}'))
    assert not isinstance(caught.value, EmbeddingsError)


async def test_ollama_comes_last_in_langstream_s_order(fake: FakeOllama) -> None:
    # Without ai-service, a local Hugging Face resource is taken before Ollama; with
    # ai-service the Ollama one.
    config = embeddings(fake, model="all-MiniLM-L6-v2")
    config["resources"] = {"llm": {"url": fake.url}, "hf": {"provider": "local"}}
    config["resource-types"] = {"llm": "ollama-configuration", "hf": "hugging-face-configuration"}
    [out] = await run(ComputeAIEmbeddings(), config, Record('{"docs": [{"t": "x"}]}'))
    assert fake.requests == [] and len(json.loads(out.value)["docs"][0]["v"]) == 384
    await run(
        ComputeAIEmbeddings(), {**config, "ai-service": "llm"}, Record('{"docs": [{"t": "x"}]}')
    )
    assert len(fake.requests) == 1


async def test_a_resource_without_url_stops_the_agent_at_init() -> None:
    config = {
        "model": "m",
        "messages": [{"content": "x"}],
        "resources": {"llm": {"url": ""}},
        "resource-types": {"llm": "ollama-configuration"},
    }
    with pytest.raises(ResourceError, match=r'resource "llm" \(ollama-configuration\) has no url'):
        await ChatCompletions().init(config)
