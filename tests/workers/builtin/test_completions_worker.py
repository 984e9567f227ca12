"""``ai-chat-completions`` in a real worker process on the real broker, calling the fake OpenAI
server (a real HTTP server on loopback) through an ``open-ai-configuration`` resource: streamed
chunks on ``stream-to-topic`` in order with their headers, the answer on the output, and a
question the provider answers with 500 under dead-letter."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.fakes.openai_server import FakeOpenAI, Fault
from tests.workers.conftest import StartWorker, prepare, read_all, send

pytestmark = pytest.mark.kafka

KEY = "sk-worker-test-key"

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

CONFIGURATION = """
configuration:
  resources:
    - type: open-ai-configuration
      name: local-openai
      configuration:
        url: {url}
        access-key: {key}
"""


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """The fake answers "A car is a vehicle" in five pieces, and 500 to the question "bad"."""

    def fault(body: dict[str, Any]) -> Fault | None:
        return Fault(500) if body["messages"][0]["content"] == "bad" else None

    with FakeOpenAI(reply=lambda messages: ["A", " car", " is", " a", " vehicle"]) as server:
        server.fault = fault
        yield server


async def test_streamed_chunks_the_answer_and_a_500_under_dead_letter(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fake: FakeOpenAI,
) -> None:
    names = {**topics, "stream": f"stream-{uuid.uuid4().hex[:8]}"}
    configuration = json.dumps(
        {
            "model": "gpt-fake",
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
        "configuration.yaml": CONFIGURATION.format(url=fake.base_url, key=KEY),
    }
    app_dir = app_factory({n: t.replace("{", "{{").replace("}", "}}") for n, t in files.items()})
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "chat")

    def question(q: str) -> Record:
        return Record(json.dumps({"question": q}), key=f"k-{q}", headers={"session-id": "s42"})

    for q in ("the car", "bad", "again"):
        await send(producer, names["inp"], question(q))
    out = await read_all(kafka_bootstrap, names["out"], 2, settle=0.5)
    chunks = await read_all(kafka_bootstrap, names["stream"], 6, settle=0.5)
    [dead] = await read_all(kafka_bootstrap, names["inp"] + "-deadletter", 1)
    assert await worker.stop() == 0

    # ChatCompletionsIT's grouping (reference A3), for each of the two answered questions.
    assert [
        (
            c.record.key,
            c.record.value,
            c.record.headers["stream-index"],
            c.record.headers["stream-last-message"],
        )
        for c in chunks
    ] == [
        (key, text, index, last)
        for key in ("k-the car", "k-again")
        for text, index, last in (
            ("A", "1", "false"),
            (" car is", "2", "false"),
            (" a vehicle", "3", "true"),
        )
    ]
    assert all(c.record.headers["session-id"] == "s42" for c in chunks)
    ids = [c.record.headers["stream-id"] for c in chunks]
    assert len(set(ids[:3])) == len(set(ids[3:])) == 1 and ids[0] != ids[3]
    assert ids[0].startswith("chatcmpl-")

    assert [(r.record.key, json.loads(r.record.value)) for r in out] == [
        (f"k-{q}", {"question": q, "answer": "A car is a vehicle"}) for q in ("the car", "again")
    ]
    assert all("stream-id" not in r.record.headers for r in out)
    assert all(r.record.headers["session-id"] == "s42" for r in out)

    assert (dead.record.key, json.loads(dead.record.value)) == ("k-bad", {"question": "bad"})
    assert dead.record.headers["error-class"] == "workers.builtin.completions.CompletionError"
    message = dead.record.headers["error-message"]
    assert 'resource "local-openai"' in message and "answered 500" in message
    assert KEY not in message and not any(KEY in line for line in worker.output)
    # One retry, as max-retries says, then the record failed.
    assert sum(r.body["messages"][0]["content"] == "bad" for r in fake.requests) == 2
