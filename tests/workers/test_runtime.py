"""The pull-mode runtime end to end: a real worker process, the real broker."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sluice.application import load_application, plan_application
from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.conftest import StartWorker, prepare, read_all, send

pytestmark = pytest.mark.kafka

TOPICS = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
"""

AGENTS = '''
import os
from sluice import Record
from sluice.sdk import Processor


class Suffix(Processor):
    def init(self, config, context):
        self.suffix = config["suffix"]

    def process(self, record):
        return record.with_value(record.value + self.suffix).with_headers({self.suffix: "seen"})


class Poison(Processor):
    """Fails on values starting with "poison", counting attempts in a file."""

    def init(self, config, context):
        self.log = config["attempts-file"]

    def process(self, record):
        if str(record.value).startswith("poison"):
            with open(self.log, "a") as f:
                f.write(record.value + "\\n")
            raise ValueError("cannot digest " + record.value)
        return record


class FailOnce(Processor):
    """Raises for "boom" until a marker file exists: the restarted worker succeeds."""

    def init(self, config, context):
        self.marker = config["marker"]

    def process(self, record):
        if record.value == "boom" and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise RuntimeError("first time fails")
        return record.with_value(record.value + "!")
'''


def fused_app(app_factory: Callable[..., Path], topics: dict[str, str]) -> Path:
    return app_factory(
        {
            "pipeline.yaml": TOPICS
            + """
pipeline:
  - {{id: a, type: python-processor, input: {inp}, configuration: {{className: agents.Suffix, suffix: -a}}}}
  - {{id: b, type: python-processor, configuration: {{className: agents.Suffix, suffix: -b}}}}
  - {{id: c, type: python-processor, output: {out}, configuration: {{className: agents.Suffix, suffix: -c}}}}
""",
            "python/agents.py": AGENTS.replace("{", "{{").replace("}", "}}"),
        },
        **topics,
    )


async def test_fused_processors_run_in_one_process_and_keep_headers(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    app_dir = fused_app(app_factory, topics)
    plan = plan_application(load_application(app_dir))
    assert [[a.id for a in e.agents] for e in plan.executors] == [["a", "b", "c"]]
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "a")
    await send(
        producer,
        topics["inp"],
        Record("q1", headers={"langstream-client-session-id": "s1"}),
        Record("q2", headers={"langstream-client-session-id": "s2"}),
    )
    got = await read_all(kafka_bootstrap, topics["out"], 2)
    assert sorted(r.record.value for r in got) == ["q1-a-b-c", "q2-a-b-c"]
    by_value = {r.record.value: r.record.headers for r in got}
    assert by_value["q1-a-b-c"]["langstream-client-session-id"] == "s1"
    assert by_value["q2-a-b-c"]["langstream-client-session-id"] == "s2"
    assert {"-a", "-b", "-c"} <= set(by_value["q1-a-b-c"])
    assert all(r.event_source == f"/default/{app_dir.name}/agents/c" for r in got)
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{worker.health_port}/metrics")).text
    assert 'sluice_worker_records_in_total{executor="a"} 2.0' in metrics
    assert 'sluice_worker_records_out_total{executor="a"} 2.0' in metrics
    assert 'sluice_worker_processing_seconds_count{executor="a"} 2.0' in metrics
    assert await worker.stop() == 0


def poison_app(
    app_factory: Callable[..., Path], topics: dict[str, str], tmp_path: Path, errors: str
) -> Path:
    return app_factory(
        {
            "pipeline.yaml": TOPICS
            + f"""
pipeline:
  - id: p
    type: python-processor
    input: {{inp}}
    output: {{out}}
    errors: {errors}
    configuration: {{{{className: agents.Poison, attempts-file: "{tmp_path / "attempts"}"}}}}
""",
            "python/agents.py": AGENTS.replace("{", "{{").replace("}", "}}"),
        },
        **topics,
    )


async def test_poison_record_is_retried_then_dead_lettered(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    app_dir = poison_app(app_factory, topics, tmp_path, "{{on-failure: dead-letter, retries: 2}}")
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "p")
    await send(producer, topics["inp"], Record("ok-1"))
    await send(producer, topics["inp"], Record("poison-1", headers={"session": "x"}))
    await send(producer, topics["inp"], Record("ok-2"))
    got = await read_all(kafka_bootstrap, topics["out"], 2)
    assert [r.record.value for r in got] == ["ok-1", "ok-2"]
    [dead] = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 1)
    assert dead.record.value == "poison-1"
    headers = dead.record.headers
    assert headers["error-class"] == "builtins.ValueError"
    assert headers["error-message"] == "cannot digest poison-1"
    assert headers["origin-topic"] == topics["inp"]
    assert (headers["origin-partition"], headers["origin-offset"]) == ("0", "1")
    assert headers["session"] == "x"
    assert dead.event_source == "/test"
    assert (tmp_path / "attempts").read_text().splitlines() == ["poison-1"] * 3
    assert await worker.stop() == 0


async def test_skip_goes_on(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    app_dir = poison_app(app_factory, topics, tmp_path, "{{on-failure: skip}}")
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "p")
    await send(producer, topics["inp"], Record("poison-1"))
    await send(producer, topics["inp"], Record("ok-1"))
    got = await read_all(kafka_bootstrap, topics["out"], 1, settle=1)
    assert [r.record.value for r in got] == ["ok-1"]
    assert (tmp_path / "attempts").read_text().splitlines() == ["poison-1"]
    assert await worker.stop() == 0


async def test_undecodable_record_follows_the_policy(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    from sluice.events import WireMessage

    app_dir = poison_app(app_factory, topics, tmp_path, "{{on-failure: dead-letter}}")
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "p")
    corrupt = WireMessage(
        None,
        b"{not json",
        (
            ("ce_specversion", b"1.0"),
            ("ce_id", b"1"),
            ("ce_source", b"/x"),
            ("ce_type", b"t"),
            ("content-type", b"application/json"),
        ),
    )
    await producer.send_message(topics["inp"], corrupt)
    await send(producer, topics["inp"], Record("after"))
    got = await read_all(kafka_bootstrap, topics["out"], 1)
    assert [r.record.value for r in got] == ["after"]
    from sluice.application.model import TopicSpec
    from sluice.kafka import Consumer, KafkaSettings

    async with Consumer(
        KafkaSettings(kafka_bootstrap),
        [TopicSpec(topics["inp"] + "-deadletter")],
        start_at="beginning",
    ) as consumer:
        items: list[object] = []
        for _ in range(50):
            items += await consumer.poll(timeout_ms=200)
            if items:
                break
    [dead] = items
    # Copied byte for byte: still undecodable, with the error headers added.
    assert getattr(dead, "value", None) == b"{not json"
    headers = dict(getattr(dead, "headers", ()))
    assert headers["error-class"] == b"sluice.Undecodable"
    assert headers["origin-offset"] == b"0"
    assert await worker.stop() == 0


async def test_fail_exits_non_zero_and_the_record_is_processed_after_restart(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    app_dir = app_factory(
        {
            "pipeline.yaml": TOPICS
            + f"""
pipeline:
  - id: f
    type: python-processor
    input: {{inp}}
    output: {{out}}
    configuration: {{{{className: agents.FailOnce, marker: "{tmp_path / "marker"}"}}}}
""",
            "python/agents.py": AGENTS.replace("{", "{{").replace("}", "}}"),
        },
        **topics,
    )
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "f")
    await send(producer, topics["inp"], Record("one"))
    await read_all(kafka_bootstrap, topics["out"], 1)
    await send(producer, topics["inp"], Record("boom"))
    assert await worker.exited() == 1
    assert any("errors.on-failure is fail" in line for line in worker.output)
    again = await start_worker(app_dir, "f")
    got = await read_all(kafka_bootstrap, topics["out"], 2)
    assert [r.record.value for r in got] == ["one!", "boom!"]
    assert await again.stop() == 0


async def test_sigterm_mid_stream_gives_no_duplicates(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    app_dir = fused_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_worker(app_dir, "a")
    total = 400
    sending = asyncio.create_task(
        send(producer, topics["inp"], *(Record(f"v{i}") for i in range(total)))
    )
    await read_all(kafka_bootstrap, topics["out"], 50)
    assert await worker.stop(signal.SIGTERM) == 0
    await sending
    second = await start_worker(app_dir, "a")
    got = await read_all(kafka_bootstrap, topics["out"], total, settle=1)
    values = [r.record.value for r in got]
    assert len(values) == len(set(values)) == total
    assert await second.stop() == 0
