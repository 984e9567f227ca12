"""The AI agents on a ``hugging-face-configuration`` with ``provider: api``, against a fake of
Hugging Face's inference API on loopback (:class:`tests.fakes.huggingface_server.FakeHuggingFace`):
LangStream's model check, the feature-extraction request with its options, the fill-mask
completion, and the resource rules. Faults are in ``test_provider_faults``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.record import Record
from sluice.testing import AgentHarness
from tests.fakes.huggingface_server import FakeHuggingFace
from tests.fakes.provider_server import Fault, fake_embedding
from workers.builtin.completions import (
    ChatCompletions,
    CompletionError,
    Completions,
    ResourceError,
    TextCompletions,
)
from workers.builtin.embeddings import ComputeAIEmbeddings, EmbeddingsError
from workers.builtin.providers import ProviderError

KEY = "hf_secret_test_key_5678"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def fake() -> Iterator[FakeHuggingFace]:
    with FakeHuggingFace() as server:
        yield server


def resources(fake: FakeHuggingFace) -> dict[str, Any]:
    return {
        "resources": {"hf": fake.resource(KEY)},
        "resource-types": {"hf": "hugging-face-configuration"},
    }


async def run(
    agent: Completions | ComputeAIEmbeddings, config: dict[str, Any], *records: Record
) -> list[Record]:
    await agent.init(config)
    await agent.start()
    out: list[Record] = []
    try:
        for record in records:
            out.extend(await agent.process(record))
        return out
    finally:
        await agent.close()


def embeddings(fake: FakeHuggingFace, **extra: Any) -> dict[str, Any]:
    return {
        "model": MINILM,
        "text": "{{ value.q }}",
        "embeddings-field": "value.v",
        **resources(fake),
        **extra,
    }


async def test_embeddings_check_the_model_once_then_call_feature_extraction(
    fake: FakeHuggingFace,
) -> None:
    records = [Record(json.dumps({"q": q})) for q in ("a cat", "a dog")]
    out = await run(ComputeAIEmbeddings(), embeddings(fake), *records)
    assert [json.loads(r.value)["v"] for r in out] == [
        fake_embedding(q) for q in ("a cat", "a dog")
    ]
    check, first, second = fake.requests
    assert (check.method, check.path) == ("GET", f"/api/models/{MINILM}")
    assert (first.method, first.path) == ("POST", f"/pipeline/feature-extraction/{MINILM}")
    # LangStream's default options when the agent gives none.
    assert first.body == {"inputs": ["a cat"], "options": {"wait_for_model": "true"}}
    assert second.body["inputs"] == ["a dog"]
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in fake.requests)


async def test_loop_over_sends_batch_size_texts_with_the_agent_s_options(
    fake: FakeHuggingFace,
) -> None:
    config = embeddings(
        fake,
        text="{{ record.t }}",
        options={"use_cache": "false"},
        **{"loop-over": "value.docs", "embeddings-field": "record.v", "batch-size": 2},
    )
    docs = [{"t": f"text {n}"} for n in range(3)]
    [out] = await run(ComputeAIEmbeddings(), config, Record(json.dumps({"docs": docs})))
    assert [d["v"] for d in json.loads(out.value)["docs"]] == [fake_embedding(d["t"]) for d in docs]
    posts = [r.body for r in fake.requests if r.method == "POST"]
    assert posts == [
        {"inputs": ["text 0", "text 1"], "options": {"use_cache": "false"}},
        {"inputs": ["text 2"], "options": {"use_cache": "false"}},
    ]


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        ("bert-base-uncased", "is not a sentence-transformers model"),
        ("nobody/nothing", "answered 404"),
    ],
)
async def test_a_model_that_is_not_for_embeddings_fails_the_record(
    fake: FakeHuggingFace, model: str, problem: str
) -> None:
    config = embeddings(fake, model=model, **{"max-retries": 0})
    with pytest.raises(ProviderError, match=problem) as caught:
        await run(ComputeAIEmbeddings(), config, Record('{"q": "x"}'))
    assert 'hugging-face-configuration resource "hf"' in str(caught.value)
    assert not any(r.method == "POST" for r in fake.requests)


async def test_a_vector_count_that_does_not_match_fails_the_record(fake: FakeHuggingFace) -> None:
    fake.fault = lambda r: Fault(200, body=b"[[1.0], [2.0]]") if r.method == "POST" else None
    with pytest.raises(ProviderError, match=r"not a list of embeddings .*expected 1 vectors"):
        await run(ComputeAIEmbeddings(), embeddings(fake), Record('{"q": "x"}'))


def chat(fake: FakeHuggingFace, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": "The capital of France is [MASK]."}]
    return {"model": "bert-base-uncased", "messages": messages, **resources(fake), **extra}


async def test_chat_is_langstream_s_fill_mask_call(fake: FakeHuggingFace) -> None:
    config = chat(fake, **{"completion-field": "value.answer"})
    [out] = await run(ChatCompletions(), config, Record('{"q": 1}'))
    assert json.loads(out.value)["answer"] == "The capital of France is paris."
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/models/bert-base-uncased")
    assert request.body == ["The capital of France is [MASK]."]
    assert request.headers["Authorization"] == f"Bearer {KEY}"


async def test_text_completions_send_the_prompts(fake: FakeHuggingFace) -> None:
    config = {
        "model": "bert-base-uncased",
        "prompt": ["Paris is the [MASK] of France.", "{{ value }}"],
        **resources(fake),
    }
    assert await run(TextCompletions(), config, Record("x")) == [
        Record("Paris is the paris of France.")
    ]
    assert fake.requests[0].body == ["Paris is the [MASK] of France.", "x"]


async def test_the_answer_is_one_chunk_on_stream_to_topic(fake: FakeHuggingFace) -> None:
    config = chat(fake, **{"stream-to-topic": "answers"})
    async with AgentHarness("ai-chat-completions", config=config) as harness:
        results = await harness.send({"value": "q", "headers": {"session-id": "s1"}})
    assert results.values == ["The capital of France is paris."]
    [(topic, chunk)] = results.topic_writes
    assert (topic, chunk.value, chunk.headers["stream-index"]) == (
        "answers",
        results.values[0],
        "1",
    )
    assert chunk.headers["stream-last-message"] == "true"


async def test_an_answer_without_candidates_fails_the_record(fake: FakeHuggingFace) -> None:
    fake.reply = lambda texts: None  # type: ignore[assignment,return-value]
    with pytest.raises(CompletionError, match="not a completion") as caught:
        await run(ChatCompletions(), chat(fake), Record("q"))
    assert KEY not in str(caught.value)


async def test_without_access_key_the_agent_stops_at_init(fake: FakeHuggingFace) -> None:
    config = chat(fake)
    config["resources"]["hf"]["access-key"] = ""
    with pytest.raises(
        ResourceError, match=r'resource "hf" \(hugging-face-configuration\) has no access-key'
    ):
        await ChatCompletions().init(config)
    with pytest.raises(EmbeddingsError, match="has no access-key"):
        await ComputeAIEmbeddings().init(embeddings(fake, resources=config["resources"]))


async def test_a_local_resource_cannot_complete(fake: FakeHuggingFace) -> None:
    config = chat(fake)
    config["resources"]["hf"] = {"provider": "local"}
    with pytest.raises(ResourceError, match="runs only compute-ai-embeddings"):
        await ChatCompletions().init(config)


async def test_hugging_face_comes_before_ollama(fake: FakeHuggingFace) -> None:
    config = embeddings(fake)
    config["resources"] = {"llm": {"url": "http://127.0.0.1:1"}, "hf": fake.resource(KEY)}
    config["resource-types"] = {"llm": "ollama-configuration", "hf": "hugging-face-configuration"}
    await run(ComputeAIEmbeddings(), config, Record('{"q": "x"}'))
    assert [r.method for r in fake.requests] == ["GET", "POST"]
