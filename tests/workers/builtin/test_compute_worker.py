"""compute and drop in a real worker process on the real broker: values, keys, headers and
destination topics out, dropped records, and a bad record under each ``errors`` policy."""

from __future__ import annotations

import uuid

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.conftest import StartApp, read_all, send

pytestmark = pytest.mark.kafka

# drop, compute and a routing compute fused in one executor, "t". A record whose value.n is no
# number fails in compute (value.n + 1); one with the header kind=noise is dropped first.
PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
  - {{name: {side}, creation-mode: create-if-not-exists}}
errors: {errors}
pipeline:
  - id: t
    type: drop
    input: {inp}
    configuration:
      when: "properties.kind == 'noise'"
  - id: c
    type: compute
    configuration:
      fields:
        - {{name: value.next, expression: "value.n + 1", type: INT64}}
        - {{name: value.day, expression: "'2023-01-02'", type: DATE}}
        - {{name: key.seen, expression: "true"}}
        - {{name: properties.next, expression: "value.next"}}
        - {{name: messageKey, expression: "fn:concat('n-', value.n)"}}
  - id: r
    type: compute
    output: {out}
    configuration:
      when: "value.n > 100"
      fields:
        - {{name: destinationTopic, expression: "'{side}'"}}
"""


@pytest.fixture
def side_topics(topics: dict[str, str]) -> dict[str, str]:
    return {**topics, "side": f"side-{uuid.uuid4().hex[:8]}"}


GOOD = [
    Record('{"n": 1}', key='{"id": 1}', headers={"s": "1"}),
    Record("plain text", key="k2", headers={"s": "2", "kind": "noise"}),  # dropped
    Record('{"n": 200}', key="k3", headers={"s": "3"}),  # to the side topic
]
BAD = Record('{"n": "abc"}', key="kb", headers={"s": "bad"})


async def test_compute_and_drop_dead_letter_a_bad_record(
    start_app: StartApp,
    side_topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    worker = await start_app(
        {"pipeline.yaml": PIPELINE.format(errors="{on-failure: dead-letter}", **side_topics)}
    )
    for record in [GOOD[0], BAD, *GOOD[1:]]:  # one at a time: the outputs keep the order
        await send(producer, side_topics["inp"], record)
    [out] = await read_all(kafka_bootstrap, side_topics["out"], 1, settle=0.5)
    [side] = await read_all(kafka_bootstrap, side_topics["side"], 1, settle=0.5)
    [dead] = await read_all(kafka_bootstrap, side_topics["inp"] + "-deadletter", 1)
    assert await worker.stop() == 0

    # The output: value fields typed, the JSON key edited, then replaced by messageKey.
    assert "kind" not in out.record.headers
    assert out.record.value == '{"n":1,"next":2,"day":19359}'
    assert out.record.key == "n-1"
    assert (out.record.headers["s"], out.record.headers["next"]) == ("1", "2")
    # destinationTopic: the record goes to that topic instead of the output.
    assert side.record.value == '{"n":200,"next":201,"day":19359}'
    assert (side.record.key, side.record.headers["next"]) == ("n-200", "201")
    # The bad record, unchanged, with the error.
    assert (dead.record.value, dead.record.key) == ('{"n": "abc"}', "kb")
    assert dead.record.headers["s"] == "bad"
    assert "value.n + 1" in dead.record.headers["error-message"]


async def test_compute_skips_a_bad_record(
    start_app: StartApp,
    side_topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    worker = await start_app(
        {"pipeline.yaml": PIPELINE.format(errors="{on-failure: skip}", **side_topics)}
    )
    for record in [BAD, GOOD[0], Record('{"n": 5}', key="k5")]:
        await send(producer, side_topics["inp"], record)
    got = await read_all(kafka_bootstrap, side_topics["out"], 2, settle=0.5)
    assert await worker.stop() == 0
    assert [(r.record.value, r.record.key) for r in got] == [
        ('{"n":1,"next":2,"day":19359}', "n-1"),
        ('{"n":5,"next":6,"day":19359}', "n-5"),
    ]


async def test_compute_fails_the_worker_on_a_bad_record(
    start_app: StartApp,
    side_topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    worker = await start_app(
        {"pipeline.yaml": PIPELINE.format(errors="{on-failure: fail}", **side_topics)}
    )
    await send(producer, side_topics["inp"], GOOD[0])
    [out] = await read_all(kafka_bootstrap, side_topics["out"], 1)
    assert out.record.key == "n-1"
    await send(producer, side_topics["inp"], BAD)
    assert await worker.exited() == 1
    assert any("errors.on-failure is fail" in line for line in worker.output)
