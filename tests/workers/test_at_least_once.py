"""At-least-once under SIGKILL: every acknowledged input has an output, none is skipped."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.conftest import StartWorker, prepare, read_all, send

pytestmark = pytest.mark.kafka

APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - {{id: copy, type: identity, input: {inp}, output: {out}}}
"""
RUNS = 20
PER_RUN = 30


async def test_sigkill_after_processing_before_commit_loses_nothing(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fast_instance: Path,
) -> None:
    app_dir = app_factory({"pipeline.yaml": APP}, **topics)
    await prepare(app_dir, kafka_bootstrap)
    rng = random.Random(20261123)
    sent: list[str] = []
    killed = 0
    for run in range(RUNS):
        batch = [f"r{run}-{i}" for i in range(PER_RUN)]
        await send(producer, topics["inp"], *(Record(v) for v in batch))
        sent += batch
        # Killed after between 1 and PER_RUN finished records, with outputs acknowledged and
        # their offsets not yet committed (the commit interval is longer than the work).
        kill_after = rng.randint(1, PER_RUN)
        worker = await start_worker(
            app_dir,
            "copy",
            env={"SLUICE_FAULT_KILL_AFTER": str(kill_after)},
            ready=False,
            instance=fast_instance,
        )
        code = await worker.exited(within=60)
        assert code == -9, "\n".join(worker.output)
        killed += 1
    final = await start_worker(app_dir, "copy", instance=fast_instance)
    outputs = await read_all(
        kafka_bootstrap,
        topics["out"],
        len(sent),
        within=90,
        until=lambda got: set(sent) <= {r.record.value for r in got},
    )
    values = [r.record.value for r in outputs]
    assert killed == RUNS
    missing = set(sent) - set(values)
    assert not missing, f"lost {len(missing)} acknowledged inputs"
    assert len(values) > len(set(values)), "SIGKILL before commit must redeliver something"
    assert await final.stop() == 0
