"""The AI agents on a ``bedrock-configuration``, against a fake of Bedrock's runtime on loopback
(:class:`tests.fakes.bedrock_server.FakeBedrock`, which checks each request's SigV4
signature): LangStream's request body from ``options``, the answer read with
``response-completions-expression``, Titan embeddings one call per text, and the resource
rules. Faults are in ``test_provider_faults``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.record import Record
from tests.fakes.bedrock_server import FakeBedrock
from tests.fakes.provider_server import fake_embedding
from workers.builtin.completions import (
    ChatCompletions,
    CompletionError,
    Completions,
    ResourceError,
    TextCompletions,
)
from workers.builtin.embeddings import ComputeAIEmbeddings, EmbeddingsError

SECRET = "fake-secret-key"


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


def resources(fake: FakeBedrock, **extra: str) -> dict[str, Any]:
    return {
        "resources": {"aws": {**fake.resource(), **extra}},
        "resource-types": {"aws": "bedrock-configuration"},
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


CLAUDE = {
    "request-parameters": {"max_tokens_to_sample": 300, "temperature": 0.1},
    "response-completions-expression": "completion",
}


def text(fake: FakeBedrock, **extra: Any) -> dict[str, Any]:
    return {
        "model": "anthropic.claude-v2",
        "prompt": ["Human: {{ value }}\n\nAssistant:"],
        "options": CLAUDE,
        **resources(fake),
        **extra,
    }


async def test_text_completion_body_from_options_and_answer_from_the_expression(
    fake: FakeBedrock,
) -> None:
    [out] = await run(TextCompletions(), text(fake), Record("hi"))
    assert (
        out.value
        == "Fake answer to: Human: hi\n\nAssistant:"[:0]
        + " Fake answer to: Human: hi\n\nAssistant:"
    )
    [request] = fake.requests
    assert request.path == "/model/anthropic.claude-v2/invoke"
    assert request.body == {
        "prompt": "Human: hi\n\nAssistant:",
        "max_tokens_to_sample": 300,
        "temperature": 0.1,
    }
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKE/")
    assert SECRET not in json.dumps(request.headers)


async def test_a_leading_newline_is_removed_and_the_prompt_property_is_chosen(
    fake: FakeBedrock,
) -> None:
    options = {
        "request-prompt-property": "prompt",
        "request-parameters": {"maxTokens": 10},
        "response-completions-expression": "completions[0].data.text",
    }
    config = text(fake, model="ai21.j2-mid-v1", options=options)
    assert await run(TextCompletions(), config, Record("x")) == [
        Record("Fake answer to: Human: x\n\nAssistant:")
    ]
    titan = {
        "request-prompt-property": "inputText",
        "response-completions-expression": "results[0].outputText",
    }
    config = text(fake, model="amazon.titan-text-express-v1", options=titan)
    [out] = await run(TextCompletions(), config, Record("y"))
    assert out.value == "Fake answer to: Human: y\n\nAssistant:"
    assert fake.requests[-1].body == {"inputText": "Human: y\n\nAssistant:"}


async def test_chat_takes_exactly_one_message(fake: FakeBedrock) -> None:
    config = {
        "model": "anthropic.claude-v2",
        "messages": [{"content": "{{ value }}"}],
        "options": CLAUDE,
        **resources(fake),
    }
    assert await run(ChatCompletions(), config, Record("q")) == [Record(" Fake answer to: q")]
    config["messages"] = [{"content": "a"}, {"content": "b"}]
    with pytest.raises(CompletionError, match=r"exactly one prompt .* got 2"):
        await run(ChatCompletions(), config, Record("q"))
    assert len(fake.requests) == 1


async def test_an_answer_without_the_expression_s_field_fails_the_record(
    fake: FakeBedrock,
) -> None:
    options = {**CLAUDE, "response-completions-expression": "generation"}
    with pytest.raises(CompletionError, match=r"gave no completion at generation .*completion"):
        await run(TextCompletions(), text(fake, options=options), Record("q"))


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (None, "options.response-completions-expression is required"),
        ({"request-parameters": {}}, "response-completions-expression is required"),
        ({**CLAUDE, "request-parameters": [1]}, "request-parameters must be a mapping"),
    ],
)
async def test_options_are_checked_at_init(
    fake: FakeBedrock, options: dict[str, Any] | None, problem: str
) -> None:
    with pytest.raises(ResourceError, match=problem):
        await TextCompletions().init(text(fake, options=options))


async def test_a_wrong_secret_is_refused_by_the_signature_check(fake: FakeBedrock) -> None:
    config = {**text(fake), **resources(fake, **{"secret-key": "not-the-secret"})}
    with pytest.raises(CompletionError, match=r"answered 403: .*signature") as caught:
        await run(TextCompletions(), {**config, "max-retries": 0}, Record("q"))
    assert "not-the-secret" not in str(caught.value)


def embeddings(fake: FakeBedrock, **extra: Any) -> dict[str, Any]:
    return {
        "text": "{{ record.t }}",
        "loop-over": "value.docs",
        "embeddings-field": "record.v",
        **resources(fake),
        **extra,
    }


async def test_titan_embeddings_one_call_per_text_with_titan_as_default(fake: FakeBedrock) -> None:
    docs = [{"t": "a cat"}, {"t": "a dog"}]
    [out] = await run(ComputeAIEmbeddings(), embeddings(fake), Record(json.dumps({"docs": docs})))
    assert [d["v"] for d in json.loads(out.value)["docs"]] == [
        fake_embedding("a cat"),
        fake_embedding("a dog"),
    ]
    assert [(r.path, r.body) for r in fake.requests] == [
        ("/model/amazon.titan-embed-text-v1/invoke", {"inputText": t}) for t in ("a cat", "a dog")
    ]


async def test_a_model_id_with_a_version_colon_is_signed_right(fake: FakeBedrock) -> None:
    config = embeddings(fake, model="amazon.titan-embed-text-v2:0")
    await run(ComputeAIEmbeddings(), config, Record('{"docs": [{"t": "x"}]}'))
    assert fake.requests[0].path == "/model/amazon.titan-embed-text-v2:0/invoke"


@pytest.mark.parametrize("key", ["access-key", "secret-key"])
async def test_credentials_are_required_at_init(fake: FakeBedrock, key: str) -> None:
    config = embeddings(fake)
    config["resources"]["aws"][key] = ""
    with pytest.raises(EmbeddingsError, match=rf'"aws" \(bedrock-configuration\) has no {key}'):
        await ComputeAIEmbeddings().init(config)


async def test_bedrock_comes_after_hugging_face_and_before_ollama(fake: FakeBedrock) -> None:
    config = embeddings(fake)
    config["resources"] = {"llm": {"url": "http://127.0.0.1:1"}, **config["resources"]}
    config["resource-types"] = {"llm": "ollama-configuration", "aws": "bedrock-configuration"}
    await run(ComputeAIEmbeddings(), config, Record('{"docs": [{"t": "x"}]}'))
    assert len(fake.requests) == 1
