"""LangStream's AI example applications under ``sluice run``, in their own shape: the same agent
types and keys, resources whose values come from ``${secrets...}`` placeholders, the gateways
they declare. Only the secrets file differs from theirs, and it points the resources at servers
on this machine:

- ``openai-text-completions`` (document-to-json, then ai-text-completions streaming to the
  answers topic, a chat gateway): the real local model (llama.cpp, Gemma 3 270M). The resource
  has no ``url`` in that shape, so the model's address comes as the OpenAI client's own
  ``OPENAI_BASE_URL``. A chat client sees the answer arrive in chunks: indexes 1..n, the last
  one marked, one stream id, its session header kept; the debug topic gets the whole answer and
  the logged prompt. The model's wording is never asserted.
- ``compute-openai-embeddings`` (compute-ai-embeddings on an open-ai-configuration, errors
  skipped, no gateway): the deterministic fake OpenAI server; records go in and come out through
  Kafka with the fake's exact vectors, and a record whose text cannot be rendered is skipped.
- ``compute-hugging-face-embeddings`` (document-to-json, then compute-ai-embeddings on a
  hugging-face-configuration, produce and consume gateways filtered by session): ``provider:
  local``, all-MiniLM-L6-v2 in the worker; each session sees its own questions with 384-number
  vectors close to the fp32 reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from sluice.kafka import KafkaSettings, Producer
from sluice.record import Record
from tests.examples.support import receive_json, sluice_run
from tests.fakes.local_llm import LocalLlm
from tests.fakes.openai_server import FakeOpenAI, fake_embedding
from tests.workers.builtin.test_embeddings import CAT, KITTEN, STOCKS, assert_matches_reference
from tests.workers.conftest import read_all

pytestmark = pytest.mark.kafka


def application(tmp_path: Path, name: str, files: Mapping[str, str]) -> Path:
    """The folder ``name`` holding ``files`` (file name -> YAML text)."""
    folder = tmp_path / name
    folder.mkdir()
    for file, text in files.items():
        (folder / file).write_text(text.lstrip("\n"))
    return folder


def secrets_file(tmp_path: Path, secrets: Mapping[str, Mapping[str, str]]) -> Path:
    """A secrets file as LangStream's ``examples/secrets/secrets.yaml`` is written: a list of
    ``{id, data}``, here with the values of this machine's servers."""
    path = tmp_path / "secrets.yaml"
    entries = [{"id": ident, "data": dict(data)} for ident, data in secrets.items()]
    path.write_text(json.dumps({"secrets": entries}, indent=2))
    return path


# -- openai-text-completions ----------------------------------------------------------------

TEXT_COMPLETIONS = {
    "pipeline.yaml": """
topics:
  - name: "questions"
    creation-mode: create-if-not-exists
  - name: "answers"
    creation-mode: create-if-not-exists
  - name: "debug"
    creation-mode: create-if-not-exists
pipeline:
  - name: "convert-to-json"
    type: "document-to-json"
    input: "questions"
    configuration:
      text-field: "question"
  - name: "ai-text-completions"
    type: "ai-text-completions"
    output: "debug"
    configuration:
      model: "${secrets.open-ai.text-completions-model}"
      completion-field: "value.answer"
      log-field: "value.prompt"
      stream-to-topic: "answers"
      stream-response-completion-field: "value"
      min-chunks-per-message: 10
      prompt:
        - "{{ value.question }}"
""",
    "configuration.yaml": """
configuration:
  resources:
    - type: "open-ai-configuration"
      name: "OpenAI configuration"
      configuration:
        access-key: "${secrets.open-ai.access-key}"
""",
    "gateways.yaml": """
gateways:
  - id: chat
    type: chat
    chat-options:
      answers-topic: answers
      questions-topic: questions
      headers:
        - value-from-parameters: sessionId
""",
}


async def test_openai_text_completions_streams_the_local_models_answer_to_a_chat_client(
    kafka_bootstrap: str, tmp_path: Path, local_llm: LocalLlm
) -> None:
    app = application(tmp_path, "openai-text-completions", TEXT_COMPLETIONS)
    secrets = secrets_file(
        tmp_path,
        {"open-ai": {"access-key": "any", "text-completions-model": local_llm.model}},
    )
    question = "A stream of events is"
    async with (
        sluice_run(
            app,
            kafka_bootstrap,
            tmp_path,
            ["-s", str(secrets)],
            environ={"OPENAI_BASE_URL": local_llm.base_url},
        ) as running,
        connect(running.ws_url("chat", "chat", "?param:sessionId=alice")) as alice,
    ):
        await alice.send(json.dumps({"value": question}))
        assert await receive_json(alice) == {"status": "OK", "reason": None}
        chunks: list[dict[str, Any]] = []
        while not chunks or chunks[-1]["headers"]["stream-last-message"] != "true":
            chunks.append((await receive_json(alice, timeout=120))["record"])
        [logged] = await read_all(kafka_bootstrap, "debug", 1, within=60)

    headers = [chunk["headers"] for chunk in chunks]
    assert [int(h["stream-index"]) for h in headers] == list(range(1, len(chunks) + 1))
    assert [h["stream-last-message"] for h in headers] == ["false"] * (len(chunks) - 1) + ["true"]
    assert len({h["stream-id"] for h in headers}) == 1
    # A header without a key is named after its parameter, as in LangStream.
    assert all(h["sessionId"] == "alice" for h in headers)
    # The first chunk holds one piece (the grouping starts at 1), so a longer answer comes in
    # more than one chunk; the server's default of 16 tokens ends it.
    assert len(chunks) >= 2
    streamed = "".join(str(chunk["value"]) for chunk in chunks)
    assert streamed.strip()

    value = json.loads(logged.record.value)
    assert value["question"] == question
    assert value["answer"].strip() == streamed.strip()
    assert not any(name.startswith("stream-") for name in logged.record.headers)
    prompt = json.loads(value["prompt"])
    assert prompt["model"] == local_llm.model
    assert prompt["messages"] == [question]


# -- compute-openai-embeddings --------------------------------------------------------------

OPENAI_EMBEDDINGS = {
    "pipeline.yaml": """
topics:
  - name: "input-topic"
    creation-mode: create-if-not-exists
  - name: "output-topic"
    creation-mode: create-if-not-exists
errors:
    on-failure: "skip"
pipeline:
  - name: "compute-embeddings"
    id: "step1"
    type: "compute-ai-embeddings"
    input: "input-topic"
    output: "output-topic"
    configuration:
      model: "${secrets.open-ai.embeddings-model}"
      embeddings-field: "value.embeddings"
      text: "{{ value.name }} {{ value.description }}"
      batch-size: 10
      flush-interval: 500
""",
    "configuration.yaml": """
configuration:
  resources:
    - type: "open-ai-configuration"
      name: "OpenAI Azure configuration"
      configuration:
        url: "${secrets.open-ai.url}"
        access-key: "${secrets.open-ai.access-key}"
        provider: "${secrets.open-ai.provider}"
""",
}


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


async def test_compute_openai_embeddings_writes_the_providers_vectors(
    kafka_bootstrap: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    app = application(tmp_path, "compute-openai-embeddings", OPENAI_EMBEDDINGS)
    secrets = secrets_file(
        tmp_path,
        {
            "open-ai": {
                "url": fake_openai.base_url,
                "access-key": "sk-example",
                "provider": "openai",
                "embeddings-model": "text-embedding-ada-002",
            }
        },
    )
    products = [
        {"id": "1", "name": "Sluice", "description": "moves events between topics"},
        {"id": "2", "name": "Gate"},  # no description: the text cannot be rendered
        {"id": "3", "name": "Weir", "description": "holds water back"},
    ]
    async with (
        sluice_run(app, kafka_bootstrap, tmp_path, ["-s", str(secrets)]),
        Producer(KafkaSettings(kafka_bootstrap)) as producer,
    ):
        for product in products:
            record = Record(json.dumps(product), key=product["id"])
            await producer.send("input-topic", record, source="/test")
        outputs = await read_all(kafka_bootstrap, "output-topic", 2, within=60, settle=1)

    # on-failure: skip drops the record without a description; the others keep their order.
    values = [json.loads(output.record.value) for output in outputs]
    assert [output.record.key for output in outputs] == ["1", "3"]
    for value, product in zip(values, (products[0], products[2]), strict=True):
        text = f"{product['name']} {product['description']}"
        assert value == {**product, "embeddings": fake_embedding(text)}
    embedded = [r for r in fake_openai.requests if r.path.endswith("/embeddings")]
    assert {r.body["model"] for r in embedded} == {"text-embedding-ada-002"}
    assert {r.headers["Authorization"] for r in embedded} == {"Bearer sk-example"}
    assert sorted(text for r in embedded for text in r.body["input"]) == [
        "Sluice moves events between topics",
        "Weir holds water back",
    ]


# -- compute-hugging-face-embeddings --------------------------------------------------------

HUGGING_FACE_EMBEDDINGS = {
    "pipeline.yaml": """
topics:
  - name: "input-topic"
    creation-mode: create-if-not-exists
  - name: "output-topic"
    creation-mode: create-if-not-exists
errors:
    on-failure: "skip"
pipeline:
  - name: "convert-to-structure"
    type: "document-to-json"
    input: "input-topic"
    configuration:
      text-field: "question"
  - name: "compute-embeddings"
    type: "compute-ai-embeddings"
    output: "output-topic"
    configuration:
      model: "${secrets.hugging-face.embeddings-model}"
      model-url: "${secrets.hugging-face.embeddings-model-url}"
      embeddings-field: "value.embeddings"
      text: "{{ value.question }}"
      batch-size: 10
      flush-interval: 500
""",
    "configuration.yaml": """
configuration:
  resources:
    - type: "hugging-face-configuration"
      name: "Hugging Face AI configuration"
      configuration:
        access-key: "${ secrets.hugging-face.access-key }"
        provider:  "${ secrets.hugging-face.provider }"
""",
    "gateways.yaml": """
gateways:
  - id: produce-input
    type: produce
    topic: input-topic
    parameters:
      - sessionId
    produce-options:
      headers:
        - key: langstream-client-session-id
          value-from-parameters: sessionId

  - id: consume-output
    type: consume
    topic: output-topic
    parameters:
      - sessionId
    consume-options:
      filters:
        headers:
          - key: langstream-client-session-id
            value-from-parameters: sessionId
""",
}


async def test_compute_hugging_face_embeddings_on_the_local_model_per_session(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app = application(tmp_path, "compute-hugging-face-embeddings", HUGGING_FACE_EMBEDDINGS)
    secrets = secrets_file(
        tmp_path,
        {
            "hugging-face": {
                "access-key": "",
                "provider": "local",
                "embeddings-model": "all-MiniLM-L6-v2",
                "embeddings-model-url": (
                    "djl://ai.djl.huggingface.pytorch/sentence-transformers/all-MiniLM-L6-v2"
                ),
            }
        },
    )
    sent = {"alice": [CAT, KITTEN], "bob": [STOCKS]}
    async with sluice_run(app, kafka_bootstrap, tmp_path, ["-s", str(secrets)]) as running:

        def url(kind: str, gateway: str, session: str) -> str:
            return running.ws_url(kind, gateway, f"?param:sessionId={session}")

        async with (
            httpx.AsyncClient(timeout=60) as http,
            connect(url("consume", "consume-output", "alice")) as alice,
            connect(url("consume", "consume-output", "bob")) as bob,
        ):
            for session, questions in sent.items():
                for question in questions:
                    answer = await http.post(
                        running.http_url("produce", "produce-input"),
                        params={"param:sessionId": session},
                        json={"value": question},
                    )
                    assert answer.json() == {"status": "OK", "reason": None}
            got = {
                "alice": [await receive_json(alice, 120), await receive_json(alice, 120)],
                "bob": [await receive_json(bob, 120)],
            }
            # Nothing of the other session's comes to either.
            for socket in (alice, bob):
                with pytest.raises(TimeoutError):
                    await receive_json(socket, timeout=1)

    for session, questions in sent.items():
        records = [frame["record"] for frame in got[session]]
        assert [r["headers"]["langstream-client-session-id"] for r in records] == [session] * len(
            questions
        )
        # document-to-json wrote JSON text (with the headers copied in, LangStream's
        # copy-properties), and text comes back as text.
        values = [json.loads(r["value"]) for r in records]
        assert [v["question"] for v in values] == questions
        for value, question in zip(values, questions, strict=True):
            assert set(value) == {"question", "langstream-client-session-id", "embeddings"}
            assert value["langstream-client-session-id"] == session
            assert_matches_reference(value["embeddings"], question)
