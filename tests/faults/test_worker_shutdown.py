"""F5: a worker stopped with SIGTERM in the middle of a batch finishes or abandons what it
started, commits only contiguous finished work and exits 0; its successor goes on from there.
A clean stop means no duplicates at all (Kafka's ``test_consumer_bounce``: position ==
consumed), besides I1 (every input has its output) and I4 (no commit past unfinished work)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from sluice.application import load_application, plan_application
from sluice.kafka import KafkaSettings, Producer
from sluice.kafka.admin import ensure_topics
from tests.faults.support import (
    Ledger,
    children,
    committed,
    counts,
    end_offsets,
    group_of,
    instance_file,
    read_topic,
    skipped,
    summary,
    write_app,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(150)]

RECORDS = 300
STOPS = 2
"""Workers stopped with SIGTERM mid-batch, one after the other, before a last one finishes."""

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: slow
    type: python-processor
    input: {inp}
    output: {out}
    configuration: {{className: agents.Slow}}
"""
AGENTS = """
import time

from sluice import Processor


class Slow(Processor):
    # 20 ms a record: a poll of 200 records takes 4 s, so a SIGTERM lands inside a batch.
    def process(self, record):
        time.sleep(0.02)
        return record
"""


async def test_sigterm_mid_batch_commits_finished_work_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    inp, out = f"f5-in-{suffix}", f"f5-out-{suffix}"
    app = write_app(
        tmp_path, {"pipeline.yaml": PIPELINE.format(inp=inp, out=out), "python/agents.py": AGENTS}
    )
    settings = KafkaSettings(kafka_bootstrap)
    await ensure_topics(settings, plan_application(load_application(app)).topics)
    ledger = Ledger()
    async with Producer(settings) as producer:
        await asyncio.gather(*(ledger.send(producer, inp) for _ in range(RECORDS)))
    assert len(ledger.ok) == RECORDS

    started = time.monotonic()
    codes = []
    async with children(app, kafka_bootstrap, tmp_path, instance_file(tmp_path)) as kids:
        for _ in range(STOPS):
            worker = await kids.worker("slow")
            await asyncio.sleep(1.5)
            codes.append(await worker.stop())
        last = await kids.worker("slow")
        outputs = await read_topic(kafka_bootstrap, out, expect=ledger.ok, within=60)
        recovered = time.monotonic() - started
        inputs = await read_topic(kafka_bootstrap, inp, settle=0.5)
        await asyncio.sleep(1)  # the last worker commits every 0.5 s
        offsets = await committed(kafka_bootstrap, group_of("slow"), inp)
        codes.append(await last.stop())

    found = counts(outputs)
    done = set(found)
    lost = ledger.ok - done
    phantoms = done - ledger.ok - ledger.info
    duplicates = sum(n - 1 for n in found.values())
    skips = skipped(inputs, offsets, lambda m: m.ident in done)
    line = summary(
        f"F5 worker SIGTERM mid-batch x{STOPS}",
        sent=ledger.sent,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(lost),
        phantoms=len(phantoms),
        duplicates=duplicates,
        other_5xx=0,
        recovered=recovered,
        extra=f"exit codes {codes}, committed {offsets}, skipped {len(skips)}",
    )
    assert codes == [0] * (STOPS + 1), line
    assert not lost and not phantoms and not skips, line
    assert duplicates == 0, line
    assert offsets == end_offsets(inputs), line
