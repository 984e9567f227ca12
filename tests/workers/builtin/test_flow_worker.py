"""The flow-control agents in a real worker process on the real broker: records routed to other
topics, side events, timer records, and a bad record under the agent's ``errors`` policy."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.conftest import StartApp, read_all, send

pytestmark = pytest.mark.kafka


def as_json(data: Any) -> Any:
    """A value read back: JSON objects the agents emitted as dicts, text parsed."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data) if isinstance(data, str) else data


DISPATCH = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
  - {{name: {t1}, creation-mode: create-if-not-exists}}
  - {{name: {t2}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: dispatch
    input: {inp}
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration:
      routes:
        - when: value.n + 1 > 100
          destination: {t1}
        - when: properties.language == "en"
          destination: {t1}
        - when: properties.language == "fr"
          destination: {t2}
        - when: properties.language == "none"
          action: drop
"""


async def test_dispatch_in_a_worker(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    # FlowControlRunnerIT.testDispatch, with a drop route and a record whose first route fails.
    names = {**topics, "t1": f"t1-{topics['out']}", "t2": f"t2-{topics['out']}"}
    worker = await start_app({"pipeline.yaml": DISPATCH.format(**names)})
    for value, language in [
        ("for-default", "it"),
        ("for-topic1", "en"),
        ("for-topic2", "fr"),
        ("dropped", "none"),
        ('{"n": "abc"}', "en"),  # value.n + 1 cannot be computed: dead-lettered
        ('{"n": 100}', "it"),  # the first route takes it
    ]:
        await send(producer, names["inp"], Record(value, key=value, headers={"language": language}))
    default = await read_all(kafka_bootstrap, names["out"], 1, settle=1.0)
    topic1 = await read_all(kafka_bootstrap, names["t1"], 2)
    topic2 = await read_all(kafka_bootstrap, names["t2"], 1)
    [dead] = await read_all(kafka_bootstrap, names["inp"] + "-deadletter", 1)
    assert await worker.stop() == 0
    assert [(r.record.value, r.record.key) for r in default] == [("for-default", "for-default")]
    # The records themselves, unchanged (no JSON re-encoding), headers kept.
    assert [r.record.value for r in topic1] == ["for-topic1", '{"n": 100}']
    assert [r.record.value for r in topic2] == ["for-topic2"]
    assert topic2[0].record.headers["language"] == "fr"
    assert dead.record.value == '{"n": "abc"}'
    assert "value.n + 1" in dead.record.headers["error-message"]


TRIGGER = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
  - {{name: {side}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: trigger-event
    input: {inp}
    output: {out}
    errors: {errors}
    configuration:
      destination: {side}
      {options}
      fields:
        - name: value.computed
          expression: fn:uppercase(value.original)
        - name: key.computed
          expression: fn:lowercase(key.original)
        - name: properties.computed
          expression: fn:lowercase(properties.original)
"""


def trigger_record(i: int) -> Record:
    return Record(
        json.dumps({"original": f"Hello Folks {i}", "activator": i}),
        key=json.dumps({"original": f"Hello World {i}"}),
        headers={"original": f"Some session id {i}"},
    )


@pytest.mark.parametrize("continue_processing", [True, False])
async def test_trigger_event_in_a_worker(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
    continue_processing: bool,
) -> None:
    # FlowControlAgentsTest.testTriggerEventProcessor / ...StopProcessing, through Kafka.
    names = {**topics, "side": f"side-{topics['out']}"}
    if continue_processing:
        options, errors = "when: value.activator > 5", "{on-failure: skip}"
    else:
        options, errors = "continue-processing: false", "{on-failure: dead-letter}"
    text = TRIGGER.format(options=options, errors=errors, **names)
    worker = await start_app({"pipeline.yaml": text})
    records = [trigger_record(i) for i in range(4, 8)]
    # activator 'x' fails the condition; with no condition, key.computed on plain text fails.
    bad = Record('{"activator": "x", "original": "A"}', key="plain key")
    for record in [*records[:2], bad, *records[2:]]:
        await send(producer, names["inp"], record)
    expected_side = 2 if continue_processing else 4
    side = await read_all(kafka_bootstrap, names["side"], expected_side, settle=1.0)
    out = await read_all(kafka_bootstrap, names["out"], 4 if continue_processing else 0, settle=0.5)
    dead = (
        []
        if continue_processing
        else await read_all(kafka_bootstrap, names["inp"] + "-deadletter", 1)
    )
    assert await worker.stop() == 0
    if continue_processing:
        # Every record continues unchanged; the bad one was skipped.
        assert [r.record.value for r in out] == [r.value for r in records]
        assert [as_json(r.record.key) for r in out] == [as_json(r.key) for r in records]
    else:
        assert out == []
        assert [(d.record.value, d.record.key) for d in dead] == [(bad.value, bad.key)]
    triggered = [i for i in range(4, 8) if not continue_processing or i > 5]
    assert len(side) == len(triggered)
    for event, i in zip(side, triggered, strict=True):
        assert as_json(event.record.value) == {
            "original": f"Hello Folks {i}",
            "activator": i,
            "computed": f"HELLO FOLKS {i}",
        }
        assert as_json(event.record.key) == {
            "original": f"Hello World {i}",
            "computed": f"hello world {i}",
        }
        assert event.record.headers["computed"] == f"some session id {i}"
        assert event.record.headers["original"] == f"Some session id {i}"


TIMER = """
topics:
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: timer-source
    output: {out}
    configuration:
      period-seconds: 1
      fields:
        - name: key.id
          expression: fn:uuid()
        - name: value.stringpayload
          expression: "'constant-payload'"
        - name: value.intpayload
          expression: 42
        - name: properties.foo
          expression: "'bar'"
"""


async def test_timer_source_in_a_worker(
    start_app: StartApp,
    topics: dict[str, str],
    kafka_bootstrap: str,
) -> None:
    # FlowControlRunnerIT.testTimerSource
    worker = await start_app({"pipeline.yaml": TIMER.format(**topics)})
    got = await read_all(kafka_bootstrap, topics["out"], 2)
    stopping = time.monotonic()
    assert await worker.stop() == 0
    # The source waits for its next tick in short steps: the worker stops promptly.
    assert time.monotonic() - stopping < 5
    assert len(got) >= 2
    for consumed in got[:2]:
        record = consumed.record
        assert as_json(record.value) == {"stringpayload": "constant-payload", "intpayload": 42}
        uuid.UUID(as_json(record.key)["id"])
        assert record.headers["foo"] == "bar"
