"""Single records that used to stop a partition for good (F12 b): a binary CloudEvent whose JSON
is nested far too deep, and an agent output larger than Kafka takes. Both go through the agent's
``errors`` policy like any bad record: here to the dead-letter topic, and the records after them
still flow (I6: inputs = outputs + dead letters)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.application.model import TopicSpec
from sluice.events import Consumed, ConsumedRecord, Undecodable, to_kafka
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.record import Record
from tests.workers.conftest import StartWorker, prepare, read_all, send

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(180)]

APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: blow
    type: python-processor
    input: {inp}
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration: {{className: agents.Blow}}
"""
AGENTS = """
from sluice import Processor, Record


class Blow(Processor):
    # "big" becomes an output of 2 MB, over the producer's 1 MiB limit.
    def process(self, record):
        if record.value == "big":
            return Record("x" * 2_000_000)
        return record
"""
DEPTH = 50_000


async def _read_raw(bootstrap: str, topic: str, count: int, *, within: float) -> list[Consumed]:
    """Every message of ``topic``, decodable or not."""
    got: list[Consumed] = []
    async with Consumer(KafkaSettings(bootstrap), [TopicSpec(topic)], start_at="beginning") as c:
        deadline = asyncio.get_running_loop().time() + within
        while len(got) < count and asyncio.get_running_loop().time() < deadline:
            got.extend(await c.poll(timeout_ms=200))
    return got


async def test_a_deeply_nested_event_and_a_too_large_output_are_dead_lettered(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    app_dir = app_factory(
        {"pipeline.yaml": APP, "python/agents.py": AGENTS.replace("{", "{{").replace("}", "}}")},
        **topics,
    )
    await prepare(app_dir, kafka_bootstrap)
    deep = dataclasses.replace(
        to_kafka(Record({"a": 1}), source="/test"),
        value=b"[" * DEPTH + b"]" * DEPTH,
    )
    await send(producer, topics["inp"], Record("first"))
    await producer.send_message(topics["inp"], deep)
    await send(producer, topics["inp"], Record("big"))
    await send(producer, topics["inp"], Record("last"))

    worker = await start_worker(app_dir, "blow")
    outputs = await read_all(kafka_bootstrap, topics["out"], 2, within=60, settle=1)
    dead = await _read_raw(kafka_bootstrap, f"{topics['inp']}-deadletter", 2, within=30)
    log = "\n".join(worker.output)
    assert worker.process.returncode is None, log
    assert [o.record.value for o in outputs] == ["first", "last"], log
    assert len(dead) == 2, log
    assert isinstance(dead[0], Undecodable), dead[0]  # the raw deep event, as it came
    assert isinstance(dead[1], ConsumedRecord) and dead[1].record.value == "big", dead[1]
    assert "nested" in log, log
    assert "RecordTooLarge" in log or "too large" in log, log
    assert await worker.stop() == 0
