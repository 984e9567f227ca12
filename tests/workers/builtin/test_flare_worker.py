"""``flare-controller`` in a real worker process on the real broker: a confident answer goes on
to the output, an unsure one goes to the loop topic with its spans (key and headers kept), one
that looped too often goes on, and a record without tokens lands in the dead letter."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.builtin.test_flare import IT_LOGPROBS, IT_TOKENS
from tests.workers.conftest import StartApp, read_all, send

pytestmark = pytest.mark.kafka

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
  - {{name: {loop}, creation-mode: create-if-not-exists}}
pipeline:
  - id: flare
    type: flare-controller
    input: {inp}
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration:
      tokens-field: "value.tokens.tokens"
      logprobs-field: "value.tokens.logprobs"
      loop-topic: "{loop}"
      retrieve-documents-field: "value.documents_to_retrieve"
      max-iterations: 3
"""

UNSURE_TOKENS = ["It", " was", " built", " in", " 1", "8", "8", "9", "."]
UNSURE_LOGPROBS = [-0.1, -0.1, -0.2, -0.1, -0.3, -2.5, -0.4, -0.2, -0.1]


def answer(tokens: list[str], logprobs: list[float], **more: Any) -> str:
    value = {"text": "q", "tokens": {"tokens": tokens, "logprobs": logprobs}, **more}
    return json.dumps(value)


async def test_flare_controller_in_a_worker(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    names = {**topics, "loop": f"loop-{uuid.uuid4().hex[:8]}"}
    worker = await start_app({"pipeline.yaml": PIPELINE.format(**names)}, "flare")
    records = {
        "sure": answer(IT_TOKENS, IT_LOGPROBS),
        "unsure": answer(UNSURE_TOKENS, UNSURE_LOGPROBS, flare_iterations=2),
        "tired": answer(UNSURE_TOKENS, UNSURE_LOGPROBS, flare_iterations=4),
        "broken": json.dumps({"text": "q"}),
    }
    for key, value in records.items():
        await send(producer, names["inp"], Record(value, key=key, headers={"s": key}))
    out = await read_all(kafka_bootstrap, names["out"], 2, settle=0.5)
    looped = await read_all(kafka_bootstrap, names["loop"], 1, settle=0.5)
    [dead] = await read_all(kafka_bootstrap, names["inp"] + "-deadletter", 1)
    assert await worker.stop() == 0

    assert [(c.record.key, c.record.value) for c in out] == [
        ("sure", records["sure"]),
        ("tired", records["tired"]),
    ]
    [loop] = looped
    assert (loop.record.key, loop.record.headers["s"]) == ("unsure", "unsure")
    assert json.loads(loop.record.value) == {
        **json.loads(records["unsure"]),
        "documents_to_retrieve": ["889"],
    }
    assert dead.record.key == "broken"
    assert dead.record.headers["error-class"] == "workers.builtin.flare.FlareError"
    assert (
        "tokens-field 'value.tokens.tokens' must give a list of texts, got null"
        in (dead.record.headers["error-message"])
    )
