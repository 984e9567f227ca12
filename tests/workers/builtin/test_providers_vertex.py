"""The AI agents on a ``vertex-configuration``, against a fake of Vertex AI's predict endpoints
and of Google's token endpoint on loopback (:class:`tests.fakes.vertex_server.FakeVertex`):
the predict URL and bodies LangStream sent, the answers read, a static token and a service
account key (google-auth's JWT grant against the key's ``token_uri``), and the resource rules.
Faults are in ``test_provider_faults``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.record import Record
from tests.fakes.provider_server import fake_embedding
from tests.fakes.vertex_server import FakeVertex
from workers.builtin.completions import (
    ChatCompletions,
    CompletionError,
    Completions,
    ResourceError,
    TextCompletions,
)
from workers.builtin.embeddings import ComputeAIEmbeddings, EmbeddingsError

TOKEN = "ya29.fake-static-token"
PATH = "/v1/projects/my-project/locations/us-central1/publishers/google/models/{}:predict"


@pytest.fixture
def fake() -> Iterator[FakeVertex]:
    with FakeVertex() as server:
        yield server


def resource(fake: FakeVertex, **credentials: str) -> dict[str, Any]:
    vertex = {"url": fake.url, "project": "my-project", "region": "us-central1"}
    return {
        "resources": {"vertex": {**vertex, **(credentials or {"token": TOKEN})}},
        "resource-types": {"vertex": "vertex-configuration"},
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


def chat(fake: FakeVertex, **extra: Any) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "{{ value }}"},
    ]
    return {"model": "chat-bison", "messages": messages, **resource(fake), **extra}


async def test_chat_is_a_chat_bison_prediction(fake: FakeVertex) -> None:
    config = chat(fake, temperature=0.5, **{"max-tokens": 20, "top-p": 0.9})
    [out] = await run(ChatCompletions(), config, Record("what is a car?"))
    assert out.value == "Fake answer to: Be brief. | what is a car?"
    [request] = fake.requests
    assert request.path == PATH.format("chat-bison")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.body == {
        "instances": [
            {
                "context": "",
                "examples": [],
                "messages": [
                    {"author": "system", "content": "Be brief."},
                    {"author": "user", "content": "what is a car?"},
                ],
            }
        ],
        "parameters": {"temperature": 0.5, "maxOutputTokens": 20, "topP": 0.9},
    }


async def test_no_candidate_is_an_empty_answer(fake: FakeVertex) -> None:
    from tests.fakes.provider_server import Fault

    fake.fault = lambda r: Fault(200, body=b'{"predictions": [{"candidates": []}]}')
    assert await run(ChatCompletions(), chat(fake), Record("q")) == [Record("")]


async def test_text_takes_exactly_one_prompt(fake: FakeVertex) -> None:
    config = {"model": "text-bison", "prompt": ["Say {{ value }}"], **resource(fake)}
    assert await run(TextCompletions(), config, Record("hi")) == [Record("Fake answer to: Say hi")]
    assert fake.requests[0].path == PATH.format("text-bison")
    assert fake.requests[0].body == {"instances": [{"prompt": "Say hi"}], "parameters": {}}
    config["prompt"] = ["one", "two"]
    with pytest.raises(CompletionError, match=r"exactly one prompt .* got 2"):
        await run(TextCompletions(), config, Record("hi"))
    assert len(fake.requests) == 1


async def test_embeddings_are_one_prediction_per_text(fake: FakeVertex) -> None:
    config = {
        "model": "textembedding-gecko",
        "text": "{{ record.t }}",
        "loop-over": "value.docs",
        "embeddings-field": "record.v",
        **resource(fake),
    }
    docs = [{"t": "a cat"}, {"t": "a dog"}]
    [out] = await run(ComputeAIEmbeddings(), config, Record(json.dumps({"docs": docs})))
    assert [d["v"] for d in json.loads(out.value)["docs"]] == [
        fake_embedding("a cat"),
        fake_embedding("a dog"),
    ]
    assert fake.requests[0].body == {"instances": [{"content": "a cat"}, {"content": "a dog"}]}


async def test_a_service_account_gets_a_token_from_its_token_uri_and_reuses_it(
    fake: FakeVertex,
) -> None:
    config = {**chat(fake), **resource(fake, serviceAccountJson=fake.service_account_json())}
    out = await run(ChatCompletions(), config, Record("one"), Record("two"))
    assert [r.value for r in out] == [
        "Fake answer to: Be brief. | one",
        "Fake answer to: Be brief. | two",
    ]
    grant, first, second = fake.requests
    assert (grant.method, grant.path) == ("POST", "/token")
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in grant.body
    token = first.headers["Authorization"].removeprefix("Bearer ")
    assert token.startswith("ya29.") and token != TOKEN
    assert second.headers["Authorization"] == first.headers["Authorization"]


async def test_an_expired_token_is_renewed(fake: FakeVertex) -> None:
    fake.expires_in = 1  # google-auth renews a token this close to its expiry
    config = {**chat(fake), **resource(fake, serviceAccountJson=fake.service_account_json())}
    await run(ChatCompletions(), config, Record("one"), Record("two"))
    assert [r.path for r in fake.requests].count("/token") == 2


async def test_a_refused_grant_fails_the_record(fake: FakeVertex) -> None:
    with FakeVertex() as other:  # another key: the fake cannot verify the signature
        account = json.loads(other.service_account_json())
    account["token_uri"] = f"{fake.url}/token"
    config = {**chat(fake), **resource(fake, serviceAccountJson=json.dumps(account))}
    with pytest.raises(CompletionError, match=r"gave no access token .*invalid_grant") as caught:
        await run(ChatCompletions(), config, Record("q"))
    assert "PRIVATE KEY" not in str(caught.value)


@pytest.mark.parametrize(
    ("credentials", "problem"),
    [
        ({"token": ""}, "has neither token nor serviceAccountJson"),
        ({"serviceAccountJson": "{not json"}, "serviceAccountJson that is not a service account"),
        ({"serviceAccountJson": '{"type": "service_account"}'}, "missing fields"),
    ],
)
async def test_credential_problems_stop_the_agent_at_init(
    fake: FakeVertex, credentials: dict[str, str], problem: str
) -> None:
    with pytest.raises(ResourceError, match=problem):
        await ChatCompletions().init({**chat(fake), **resource(fake, **credentials)})


@pytest.mark.parametrize("key", ["project", "region"])
async def test_project_and_region_are_required(fake: FakeVertex, key: str) -> None:
    config = {"model": "m", "text": "{{ value }}", "embeddings-field": "value", **resource(fake)}
    config["resources"]["vertex"][key] = ""
    with pytest.raises(EmbeddingsError, match=rf'"vertex" \(vertex-configuration\) has no {key}'):
        await ComputeAIEmbeddings().init(config)


async def test_vertex_comes_before_hugging_face_and_after_openai(fake: FakeVertex) -> None:
    config = chat(fake)
    config["resources"] = {
        "hf": {"provider": "api", "access-key": "k"},
        **config["resources"],
    }
    config["resource-types"] = {
        "hf": "hugging-face-configuration",
        "vertex": "vertex-configuration",
    }
    await run(ChatCompletions(), config, Record("q"))
    assert len(fake.requests) == 1
