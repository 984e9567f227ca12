"""``re-rank`` in a real worker process on the real broker: the documents sorted by MMR
(RerankAgentRunnerIT.testSimpleRerank's expected order), headers kept, and a record whose
document has no vector under ``dead-letter``."""

from __future__ import annotations

import json

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.builtin.test_rerank import it_documents
from tests.workers.conftest import StartApp, read_all, send

pytestmark = pytest.mark.kafka

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: re-rank
    input: {inp}
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration:
      max: 8
      field: "value.related_documents"
      query-text: "value.question"
      query-embeddings: "value.question_embeddings"
      output-field: "value.related_documents"
      text-field: "record.text"
      embeddings-field: "record.embeddings_vector"
      algorithm: "MMR"
      lambda: 0.5
      k1: 1.5
      b: 0.7
"""


async def test_re_rank_in_a_worker(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    worker = await start_app({"pipeline.yaml": PIPELINE.format(**topics)})
    good = {"question": "this is a question", "related_documents": it_documents()}
    bad = {"question": "text1", "related_documents": [{"text": "text1"}, {"text": "text2"}]}
    relevant = {
        "question": "two",
        "related_documents": [
            {"text": "one", "embeddings_vector": [1.0, 2.0]},
            {"text": "two", "embeddings_vector": [3.0, 4.0]},
        ],
    }
    for key, value in (("k1", good), ("k2", bad), ("k3", relevant)):
        await send(producer, topics["inp"], Record(json.dumps(value), key=key, headers={"s": key}))
    got = await read_all(kafka_bootstrap, topics["out"], 2, settle=0.5)
    assert await worker.stop() == 0
    out = [r.record for r in got]
    assert [(r.key, r.headers["s"]) for r in out] == [("k1", "k1"), ("k3", "k3")]
    first = json.loads(out[0].value)
    assert [d["text"] for d in first["related_documents"]] == [
        "text1",
        "text9",
        "text0",
        "text8",
        "text7",
        "text2",
        "text6",
        "text3",
    ]
    assert first["question"] == "this is a question"
    assert [d["text"] for d in json.loads(out[1].value)["related_documents"]] == ["two", "one"]
    [dead] = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 1)
    assert dead.record.key == "k2"
    assert json.loads(dead.record.value) == bad
    assert dead.record.headers["error-class"] == "workers.builtin.rerank.ReRankError"
    assert "document 0 has no vector" in dead.record.headers["error-message"]
