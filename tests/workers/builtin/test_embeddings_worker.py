"""compute-ai-embeddings in a real worker process on the real broker, on the real local model.

The first test is LangStream's ``compute-hugging-face-embeddings`` example shape
(document-to-json, then compute-ai-embeddings with batch-size and flush-interval) with
``provider: local``; the second puts records whose text cannot be rendered under dead-letter.
The expected vectors are the fp32 reference of ``test_embeddings`` (cosine >= 0.999).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.application import load_application, plan_application
from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.builtin.test_embeddings import (
    CAT,
    JANE,
    KITTEN,
    STOCKS,
    assert_matches_reference,
    cosine,
)
from tests.workers.conftest import StartWorker, prepare, read_all, send

pytestmark = pytest.mark.kafka

CONFIGURATION = """
configuration:
  resources:
    - type: hugging-face-configuration
      name: Hugging Face AI configuration
      configuration:
        provider: local
"""

EXAMPLE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
errors:
  on-failure: skip
pipeline:
  - name: convert-to-structure
    id: convert
    type: document-to-json
    input: {inp}
    configuration:
      text-field: question
  - name: compute-embeddings
    type: compute-ai-embeddings
    output: {out}
    configuration:
      model: all-MiniLM-L6-v2
      embeddings-field: value.embeddings
      text: "{{{{ value.question }}}}"
      batch-size: 10
      flush-interval: 500
"""


async def test_langstreams_hugging_face_example_on_the_local_model(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    app_dir = app_factory({"pipeline.yaml": EXAMPLE, "configuration.yaml": CONFIGURATION}, **topics)
    [executor] = plan_application(load_application(app_dir)).executors
    assert [a.type for a in executor.agents] == ["document-to-json", "compute-ai-embeddings"]
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, executor.id)
    sentences = [CAT, KITTEN, STOCKS, JANE]
    for index, sentence in enumerate(sentences):
        await send(producer, topics["inp"], Record(sentence, key="k", headers={"n": str(index)}))
    outputs = await read_all(kafka_bootstrap, topics["out"], 4, within=60, settle=0.5)
    assert await worker.stop() == 0, "\n".join(worker.output)
    values = [json.loads(o.record.value) for o in outputs]
    # One key, one partition: the order is the input's.
    assert [v["question"] for v in values] == sentences
    assert [o.record.headers["n"] for o in outputs] == ["0", "1", "2", "3"]
    for value, sentence in zip(values, sentences, strict=True):
        assert_matches_reference(value["embeddings"], sentence)
    cat, kitten, stocks = (v["embeddings"] for v in values[:3])
    assert cosine(cat, kitten) > cosine(cat, stocks)


DEAD_LETTER = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: embed
    type: compute-ai-embeddings
    input: {inp}
    output: {out}
    errors:
      on-failure: dead-letter
    configuration:
      model: sentence-transformers/all-MiniLM-L6-v2
      text: "{{{{ record.firstName }}}} {{{{ record.lastName }}}}"
      loop-over: value.docs
      embeddings-field: record.vector
"""


async def test_records_that_cannot_be_embedded_go_to_the_dead_letter_topic(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    app_dir = app_factory(
        {"pipeline.yaml": DEAD_LETTER, "configuration.yaml": CONFIGURATION}, **topics
    )
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "embed")
    jane = {"firstName": "Jane", "lastName": "The Princess"}
    for key, value in (
        ("1", {"docs": [jane]}),
        ("2", {"docs": [{"firstName": "no last name"}]}),
        ("3", {"docs": [jane, jane], "n": 3}),
    ):
        await send(producer, topics["inp"], Record(json.dumps(value), key=key))
    outputs = await read_all(kafka_bootstrap, topics["out"], 2, within=60, settle=0.5)
    [letter] = await read_all(kafka_bootstrap, f"{topics['inp']}-deadletter", 1, within=30)
    assert await worker.stop() == 0, "\n".join(worker.output)
    assert [o.record.key for o in outputs] == ["1", "3"]
    first, third = (json.loads(o.record.value) for o in outputs)
    assert_matches_reference(first["docs"][0]["vector"], JANE)
    assert third["n"] == 3
    assert len(third["docs"]) == 2
    for doc in third["docs"]:
        assert_matches_reference(doc["vector"], JANE)
    assert letter.record.key == "2"
    assert "record.lastName" in letter.record.headers["error-message"]


KILLED = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: embed
    type: compute-ai-embeddings
    input: {inp}
    output: {out}
    configuration:
      model: all-MiniLM-L6-v2
      text: "{{{{ record.text }}}}"
      loop-over: value.docs
      embeddings-field: record.vector
      batch-size: 4
"""


async def test_a_worker_killed_while_embedding_loses_no_record(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fast_instance: Path,
) -> None:
    """SIGKILL after some records are embedded and written, before their offsets are
    committed: after a restart every input has its output (some twice), each fully embedded."""
    app_dir = app_factory({"pipeline.yaml": KILLED, "configuration.yaml": CONFIGURATION}, **topics)
    await prepare(app_dir, kafka_bootstrap)
    sent: list[str] = []
    for run, kill_after in enumerate((3, 7, 1)):
        batch = [f"r{run}-{i}" for i in range(8)]
        for name in batch:
            docs = [{"text": f"{name} part {part}"} for part in range(6)]
            await send(producer, topics["inp"], Record(json.dumps({"name": name, "docs": docs})))
        sent += batch
        worker = await start_worker(
            app_dir,
            "embed",
            env={"SLUICE_FAULT_KILL_AFTER": str(kill_after)},
            ready=False,
            instance=fast_instance,
        )
        assert await worker.exited(within=60) == -9, "\n".join(worker.output)
    final = await start_worker(app_dir, "embed", instance=fast_instance)
    outputs = await read_all(
        kafka_bootstrap,
        topics["out"],
        len(sent),
        within=90,
        until=lambda got: set(sent) <= {json.loads(o.record.value)["name"] for o in got},
    )
    assert await final.stop() == 0, "\n".join(final.output)
    values = [json.loads(o.record.value) for o in outputs]
    assert set(sent) <= {v["name"] for v in values}, "an input was lost"
    for value in values:
        assert len(value["docs"]) == 6
        assert all(len(doc["vector"]) == 384 for doc in value["docs"])
