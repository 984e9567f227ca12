"""The AI agents in a real worker process on the real broker, on each provider besides OpenAI
(its fake a real HTTP server on loopback), through the resource types of
``configuration.yaml``: chunks on ``stream-to-topic`` in order with their headers, the answer
on the output, and a question the provider answers with 500 under dead-letter."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.fakes.bedrock_server import FakeBedrock
from tests.fakes.huggingface_server import FakeHuggingFace
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.provider_server import Fault, Recorded, fake_embedding
from tests.fakes.vertex_server import FakeVertex
from tests.workers.conftest import StartWorker, prepare, read_all, send

pytestmark = pytest.mark.kafka

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
  - {{name: {stream}, creation-mode: create-if-not-exists}}
pipeline:
  - id: chat
    type: ai-chat-completions
    input: {inp}
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration: {configuration}
"""

EMBEDDINGS = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: embed
    type: compute-ai-embeddings
    input: {inp}
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration: {configuration}
"""

CAR = ["A", " car", " is", " a", " vehicle"]


async def run_chat(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    *,
    resource: dict[str, Any],
    model: str,
    chunk_count: int = 6,
) -> tuple[list[Any], list[Any], Any, list[str]]:
    """Run "the car", "bad" and "again" through the chat agent on ``resource``: the outputs,
    the chunks, the dead letter and the worker's output lines."""
    names = {**topics, "stream": f"stream-{uuid.uuid4().hex[:8]}"}
    configuration = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "{{{ value.question }}}"}],
            "completion-field": "value.answer",
            "stream-to-topic": names["stream"],
            "stream-response-completion-field": "value",
            "min-chunks-per-message": 3,
            "max-retries": 1,
        }
    )
    files = {
        "pipeline.yaml": PIPELINE.format(configuration=configuration, **names),
        "configuration.yaml": json.dumps({"configuration": {"resources": [resource]}}),
    }
    app_dir = app_factory({n: t.replace("{", "{{").replace("}", "}}") for n, t in files.items()})
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "chat")
    for q in ("the car", "bad", "again"):
        record = Record(json.dumps({"question": q}), key=f"k-{q}", headers={"session-id": "s42"})
        await send(producer, names["inp"], record)
    out = await read_all(kafka_bootstrap, names["out"], 2, settle=0.5)
    chunks = await read_all(kafka_bootstrap, names["stream"], chunk_count, settle=0.5)
    [dead] = await read_all(kafka_bootstrap, names["inp"] + "-deadletter", 1)
    assert await worker.stop() == 0
    return out, chunks, dead, list(worker.output)


async def run_embeddings(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    *,
    resource: dict[str, Any],
    model: str,
) -> tuple[list[Any], Any]:
    """Embed "a cat", "bad" and "a dog" on ``resource``: the outputs and the dead letter."""
    configuration = json.dumps(
        {"model": model, "text": "{{{ value.q }}}", "embeddings-field": "value.v", "max-retries": 1}
    )
    files = {
        "pipeline.yaml": EMBEDDINGS.format(configuration=configuration, **topics),
        "configuration.yaml": json.dumps({"configuration": {"resources": [resource]}}),
    }
    app_dir = app_factory({n: t.replace("{", "{{").replace("}", "}}") for n, t in files.items()})
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "embed")
    for q in ("a cat", "bad", "a dog"):
        await send(producer, topics["inp"], Record(json.dumps({"q": q}), key=q))
    out = await read_all(kafka_bootstrap, topics["out"], 2, settle=0.5)
    [dead] = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 1)
    assert await worker.stop() == 0
    assert [(r.record.key, json.loads(r.record.value)) for r in out] == [
        (q, {"q": q, "v": fake_embedding(q)}) for q in ("a cat", "a dog")
    ]
    assert (dead.record.key, json.loads(dead.record.value)) == ("bad", {"q": "bad"})
    assert "answered 500" in dead.record.headers["error-message"]
    return out, dead


def assert_answers(out: list[Any], chunks: list[Any], dead: Any) -> None:
    assert [(c.record.key, c.record.value, c.record.headers["stream-index"]) for c in chunks] == [
        (key, text, index)
        for key in ("k-the car", "k-again")
        for text, index in (("A", "1"), (" car is", "2"), (" a vehicle", "3"))
    ]
    assert [c.record.headers["stream-last-message"] for c in chunks] == [
        "false",
        "false",
        "true",
    ] * 2
    assert all(c.record.headers["session-id"] == "s42" for c in chunks)
    ids = [c.record.headers["stream-id"] for c in chunks]
    assert len(set(ids[:3])) == len(set(ids[3:])) == 1 and ids[0] != ids[3]
    assert [(r.record.key, json.loads(r.record.value)) for r in out] == [
        (f"k-{q}", {"question": q, "answer": "A car is a vehicle"}) for q in ("the car", "again")
    ]
    assert all("stream-id" not in r.record.headers for r in out)
    assert (dead.record.key, json.loads(dead.record.value)) == ("k-bad", {"question": "bad"})
    assert dead.record.headers["error-class"] == "workers.builtin.completions.CompletionError"
    assert "answered 500" in dead.record.headers["error-message"]


async def test_ollama(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    def fault(request: Recorded) -> Fault | None:
        return Fault(500) if request.body["prompt"] == "bad" else None

    with FakeOllama(reply=lambda prompt: CAR, fault=fault) as fake:
        resource = {
            "type": "ollama-configuration",
            "name": "local-ollama",
            "configuration": {"url": fake.url},
        }
        out, chunks, dead, _ = await run_chat(
            app_factory,
            topics,
            start_worker,
            producer,
            kafka_bootstrap,
            resource=resource,
            model="llama3",
        )
    assert_answers(out, chunks, dead)
    assert 'ollama resource "local-ollama"' in dead.record.headers["error-message"]
    assert sum(r.body["prompt"] == "bad" for r in fake.requests) == 2


async def test_hugging_face_api_embeddings(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    def fault(request: Recorded) -> Fault | None:
        bad = request.method == "POST" and request.body["inputs"] == ["bad"]
        return Fault(500) if bad else None

    with FakeHuggingFace(fault=fault) as fake:
        resource = {
            "type": "hugging-face-configuration",
            "name": "hf-api",
            "configuration": fake.resource("hf_worker_key"),
        }
        _, dead = await run_embeddings(
            app_factory,
            topics,
            start_worker,
            producer,
            kafka_bootstrap,
            resource=resource,
            model="sentence-transformers/all-MiniLM-L6-v2",
        )
    message = dead.record.headers["error-message"]
    assert 'hugging-face-configuration resource "hf-api"' in message
    assert "hf_worker_key" not in message
    assert [r.method for r in fake.requests].count("GET") == 1


async def test_vertex_with_a_service_account(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    def fault(request: Recorded) -> Fault | None:
        body = request.body if isinstance(request.body, dict) else {}  # /token takes a form
        messages = body.get("instances", [{}])[0].get("messages", [])
        return Fault(500) if messages and messages[0]["content"] == "bad" else None

    with FakeVertex(reply=lambda texts: "A car is a vehicle", fault=fault) as fake:
        account = fake.service_account_json()
        resource = {
            "type": "vertex-configuration",
            "name": "vertex",
            "configuration": {
                "url": fake.url,
                "project": "p",
                "region": "us-central1",
                "serviceAccountJson": account,
            },
        }
        out, chunks, dead, output = await run_chat(
            app_factory,
            topics,
            start_worker,
            producer,
            kafka_bootstrap,
            resource=resource,
            model="chat-bison",
            chunk_count=2,
        )
    # Vertex answers whole: one last chunk per answer.
    assert [(c.record.key, c.record.value, c.record.headers["stream-index"]) for c in chunks] == [
        ("k-the car", "A car is a vehicle", "1"),
        ("k-again", "A car is a vehicle", "1"),
    ]
    assert all(c.record.headers["stream-last-message"] == "true" for c in chunks)
    assert [(r.record.key, json.loads(r.record.value)["answer"]) for r in out] == [
        ("k-the car", "A car is a vehicle"),
        ("k-again", "A car is a vehicle"),
    ]
    assert (dead.record.key, json.loads(dead.record.value)) == ("k-bad", {"question": "bad"})
    assert 'vertex resource "vertex"' in dead.record.headers["error-message"]
    # One token for the whole run, and never in a message or the worker's output.
    assert [r.path for r in fake.requests].count("/token") == 1
    tokens = fake.tokens - {"ya29.fake-static-token"}
    assert not any(t in line for t in tokens for line in output)
    assert not any("PRIVATE KEY" in line for line in output)


async def test_bedrock_titan_embeddings(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    def fault(request: Recorded) -> Fault | None:
        return Fault(500) if request.body == {"inputText": "bad"} else None

    with FakeBedrock(fault=fault) as fake:
        resource = {
            "type": "bedrock-configuration",
            "name": "aws",
            "configuration": fake.resource(),
        }
        _, dead = await run_embeddings(
            app_factory,
            topics,
            start_worker,
            producer,
            kafka_bootstrap,
            resource=resource,
            model="amazon.titan-embed-text-v1",
        )
    message = dead.record.headers["error-message"]
    assert 'bedrock resource "aws"' in message and "fake-secret-key" not in message
    # Every call signed (the fake refuses others): two texts, and "bad" tried twice.
    assert len(fake.requests) == 4
