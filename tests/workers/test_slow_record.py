"""A record slower than ``max.poll.interval.ms`` (F10): the worker keeps polling (its partitions
paused) while the agent works, so the group keeps it as a member. The slow record and its
neighbours are processed once each, the worker is assigned its partition once, nothing is lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.conftest import StartWorker, prepare, read_all, send

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(180)]

APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: slow
    type: python-processor
    input: {inp}
    output: {out}
    configuration: {{className: agents.Slow, log: "{log}"}}
"""
AGENTS = """
import time

from sluice import Processor


class Slow(Processor):
    def init(self, config):
        self.log = config["log"]

    def process(self, record):
        # One line per processing, written before the effect: redeliveries show as repeats.
        with open(self.log, "a") as log:
            log.write(record.value + "\\n")
        if record.value == "slow":
            time.sleep(SECONDS)
        return record
"""
POLL_INTERVAL_MS = 3000
SECONDS = 2 * POLL_INTERVAL_MS / 1000
INSTANCE = f"""
instance:
  streamingCluster:
    type: kafka
    configuration:
      admin:
        session.timeout.ms: 2000
        heartbeat.interval.ms: 500
        max.poll.interval.ms: {POLL_INTERVAL_MS}
"""


async def test_a_record_slower_than_the_poll_interval_is_processed_once(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    log = tmp_path / "processed.log"
    agents = AGENTS.replace("SECONDS", repr(SECONDS))
    app_dir = app_factory(
        {"pipeline.yaml": APP, "python/agents.py": agents.replace("{", "{{").replace("}", "}}")},
        log=str(log),
        **topics,
    )
    instance = tmp_path / "instance.yaml"
    instance.write_text(INSTANCE)
    await prepare(app_dir, kafka_bootstrap)
    values = [f"before-{i}" for i in range(20)] + ["slow"] + [f"after-{i}" for i in range(20)]
    await send(producer, topics["inp"], *(Record(v) for v in values))

    worker = await start_worker(app_dir, "slow", instance=instance)
    outputs = await read_all(
        kafka_bootstrap, topics["out"], len(values), within=60, settle=SECONDS + 2
    )
    code = await worker.stop()

    processed = log.read_text().split()
    repeated = sorted({v for v in processed if processed.count(v) > 1})
    assert not repeated, f"processed more than once: {repeated}"
    assert sorted(processed) == sorted(values)
    written = [r.record.value for r in outputs]
    assert sorted(written) == sorted(values), "each input is written once"
    assignments = [line for line in worker.output if " assigned " in line]
    assert len(assignments) == 1, "\n".join(worker.output)
    assert code == 0, "\n".join(worker.output)
