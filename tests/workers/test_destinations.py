"""Records an agent sends to another topic (``Record.destination``): a real worker on the real
broker writes them there instead of the output, agents fused after the one that routed them do
not see them, and a destination that does not exist is a failure of the input record."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.conftest import StartWorker, prepare, read_all, send
from workers.chain import Chain

APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
  - {{name: {side}, creation-mode: create-if-not-exists}}
pipeline:
  - id: route
    type: python-processor
    input: {inp}
    errors: {{on-failure: dead-letter}}
    configuration: {{className: agents.Route, side: {side}}}
  - id: shout
    type: python-processor
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration: {{className: agents.Shout}}
"""
AGENTS = """
from sluice import Processor


class Route(Processor):
    def init(self, config):
        self.side = config["side"]

    def process(self, record):
        if record.value.startswith("side"):
            return record.to(self.side)
        if record.value.startswith("nowhere"):
            return record.to("no-such-topic-" + record.value)
        return record


class Shout(Processor):
    def process(self, record):
        return record.with_value(record.value.upper())
"""


@pytest.mark.kafka
async def test_routed_records_skip_later_agents_and_land_on_their_topic(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    side = f"side-{uuid.uuid4().hex[:8]}"
    app_dir = app_factory({"pipeline.yaml": APP, "python/agents.py": AGENTS}, side=side, **topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "route")
    for value in ("a", "side-1", "nowhere", "b", "side-2"):
        await send(producer, topics["inp"], Record(value, headers={"session": value}))
    out = await read_all(kafka_bootstrap, topics["out"], 2, settle=0.5)
    routed = await read_all(kafka_bootstrap, side, 2, settle=0.5)
    dead = await read_all(kafka_bootstrap, f"{topics['inp']}-deadletter", 1, settle=0.5)
    assert await worker.stop() == 0
    # The fused Shout agent saw only the records that stayed on the pipeline.
    assert [r.record.value for r in out] == ["A", "B"]
    assert [(r.record.value, dict(r.record.headers)["session"]) for r in routed] == [
        ("side-1", "side-1"),
        ("side-2", "side-2"),
    ]
    # A destination no topic holds fails its input through the policy; the others flow on.
    [letter] = dead
    assert letter.record.value == "nowhere"
    assert "no-such-topic-nowhere" in dict(letter.record.headers)["error-message"]


class _Tag:
    def __init__(self, tag: str, route: str | None = None) -> None:
        self.tag, self.route = tag, route
        self.seen: list[str] = []

    async def process(self, record: Record) -> list[Record]:
        self.seen.append(record.value)
        out = record.with_value(record.value + self.tag)
        return [out.to(self.route), out] if self.route else [out]


async def test_a_chain_returns_routed_records_without_passing_them_on() -> None:
    first, second = _Tag("-1", route="elsewhere"), _Tag("-2")
    outputs = await Chain([first, second]).run(Record("r", headers={"h": "v"}))  # type: ignore[list-item]
    assert [(o.value, o.destination, dict(o.headers)) for o in outputs] == [
        ("r-1", "elsewhere", {"h": "v"}),
        ("r-1-2", None, {"h": "v"}),
    ]
    assert second.seen == ["r-1"]
