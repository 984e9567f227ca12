"""The text agents fused in one worker process, on the real broker: a PDF (bytes) and an HTML
page (text) become JSON documents, normalised, split into chunks with LangStream's headers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.application import load_application, plan_application
from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.builtin.test_text_agents import pdf
from tests.workers.conftest import StartWorker, prepare, read_all, send

pytestmark = pytest.mark.kafka

APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - {{id: extract, type: text-extractor, input: {inp}}}
  - {{id: detect, type: language-detector}}
  - {{id: to-json, type: document-to-json, configuration: {{text-field: document}}}}
  - {{id: normalise, type: text-normaliser}}
  - id: split
    type: text-splitter
    output: {out}
    configuration: {{chunk_size: 12, chunk_overlap: 3, length_function: cl100k_base}}
"""


async def test_extract_detect_json_normalise_split_in_one_worker(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    app_dir = app_factory({"pipeline.yaml": APP}, **topics)
    [executor] = plan_application(load_application(app_dir)).executors
    assert [a.type for a in executor.agents] == [
        "text-extractor",
        "language-detector",
        "document-to-json",
        "text-normaliser",
        "text-splitter",
    ]
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, executor.id)
    page = (
        "<html><body><p>Le renard brun rapide saute par-dessus le chien paresseux</p></body></html>"
    )
    await send(
        producer,
        topics["inp"],
        Record(
            pdf("The Quick  Brown Fox jumps over the lazy dog"), key="pdf", headers={"src": "a"}
        ),
        Record(page, key="html", headers={"src": "b"}),
    )
    outputs = await read_all(kafka_bootstrap, topics["out"], 11, within=60, settle=1)
    assert await worker.stop() == 0, "\n".join(worker.output)
    by_key: dict[str, list[Record]] = {}
    for consumed in outputs:
        by_key.setdefault(consumed.record.key, []).append(consumed.record)

    chunks = by_key["pdf"]
    assert [c.value for c in chunks] == [
        '{"document":"the quick brown fox',
        "brown fox jumps over the lazy",
        'lazy dog","src":"a","language":"en"}',
    ]
    headers = [{k: v for k, v in c.headers.items() if k in CHUNK_HEADERS} for c in chunks]
    assert headers == [
        {"src": "a", "language": "en", "chunk_id": "0", "chunk_text_length": "32",
         "chunk_num_tokens": "7", "text_num_chunks": "3"},
        {"src": "a", "language": "en", "chunk_id": "1", "chunk_text_length": "29",
         "chunk_num_tokens": "6", "text_num_chunks": "3"},
        {"src": "a", "language": "en", "chunk_id": "2", "chunk_text_length": "36",
         "chunk_num_tokens": "11", "text_num_chunks": "3"},
    ]  # fmt: skip

    french = by_key["html"]
    assert [c.headers["chunk_id"] for c in french] == [str(i) for i in range(len(french))]
    assert {c.headers["text_num_chunks"] for c in french} == {str(len(french))} == {"7"}
    assert {c.headers["language"] for c in french} == {"fr"}
    assert french[0].value == '{"document":"le renard brun'
    # Overlapping pieces of the normalised JSON document, from its start to its end.
    document = (
        '{"document":"le renard brun rapide saute par-dessus le chien paresseux",'
        '"src":"b","language":"fr"}'
    )
    assert all(c.value in document for c in french)
    assert document.endswith(french[-1].value)


CHUNK_HEADERS = {
    "src",
    "language",
    "chunk_id",
    "chunk_text_length",
    "chunk_num_tokens",
    "text_num_chunks",
}


BAD_DOCUMENT_APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: extract
    type: text-extractor
    input: {inp}
    output: {out}
    errors: {{on-failure: {policy}}}
"""


@pytest.mark.parametrize("policy", ["dead-letter", "skip"])
async def test_a_document_that_cannot_be_read_goes_through_the_errors_policy(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    policy: str,
) -> None:
    app_dir = app_factory({"pipeline.yaml": BAD_DOCUMENT_APP}, policy=policy, **topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "extract")
    for record in (
        Record(pdf("first"), key="1"),
        Record(b"%PDF-1.4 cut short", key="2"),  # a PDF whose bytes end too soon
        Record("plain text after it", key="3"),
    ):
        await send(producer, topics["inp"], record)
    outputs = await read_all(kafka_bootstrap, topics["out"], 2, within=60, settle=1)
    dead = []
    if policy == "dead-letter":  # the planner makes the topic only for this policy
        dead = await read_all(kafka_bootstrap, f"{topics['inp']}-deadletter", 1, within=30)
    assert await worker.stop() == 0, "\n".join(worker.output)
    # The worker went on after the bad record, whatever the policy.
    assert [(o.record.key, o.record.value) for o in outputs] == [
        ("1", "first"),
        ("3", "plain text after it"),
    ]
    if policy == "dead-letter":
        [letter] = dead
        assert letter.record.key == "2"
        assert "cannot read the PDF" in letter.record.headers["error-message"]
    else:
        assert "skipped" in "\n".join(worker.output)
