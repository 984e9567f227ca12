"""F6: a rebalance storm. Workers of one executor scale 1 -> 3 -> 1 -> 3 -> 1 while records keep
arriving on a three-partition topic. Every acknowledged input reaches the output (I1), nothing
appears that was not sent (I2), no commit passes unfinished work (I4), no partition is left
behind (lag 0 at the end). Duplicates are allowed (a revoked partition's last records may be
processed twice) and reported."""

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
    WorkerProcess,
    children,
    counts,
    end_offsets,
    group_of,
    instance_file,
    read_topic,
    skipped,
    summary,
    wait_committed,
    write_app,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(180)]

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists, partitions: 3}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - {{id: copy, type: identity, input: {inp}, output: {out}}}
"""
STEP = 2.0
"""Seconds between two changes of the number of workers."""


async def _load(ledger: Ledger, producer: Producer, topic: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.gather(*(ledger.send(producer, topic) for _ in range(5)))
        await asyncio.sleep(0.05)


async def test_scaling_workers_1_3_1_under_load_loses_and_skips_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    inp, out = f"f6-in-{suffix}", f"f6-out-{suffix}"
    app = write_app(tmp_path, {"pipeline.yaml": PIPELINE.format(inp=inp, out=out)})
    settings = KafkaSettings(kafka_bootstrap)
    await ensure_topics(settings, plan_application(load_application(app)).topics)
    ledger = Ledger()
    codes: list[int] = []
    async with (
        Producer(settings) as producer,
        children(app, kafka_bootstrap, tmp_path, instance_file(tmp_path)) as kids,
    ):
        first = await kids.worker("copy")
        stop = asyncio.Event()
        load = asyncio.create_task(_load(ledger, producer, inp, stop))
        try:
            alive: list[WorkerProcess] = [first]
            for _ in range(2):
                await asyncio.sleep(STEP)
                alive += await asyncio.gather(kids.worker("copy"), kids.worker("copy"))
                await asyncio.sleep(STEP)
                # Keep the newest one: the survivor is never the worker that started alone.
                leaving, alive = alive[:-1], alive[-1:]
                codes += await asyncio.gather(*(w.stop() for w in leaving))
            await asyncio.sleep(STEP)
        finally:
            stop.set()
            await load
        stopped_at = time.monotonic()
        outputs = await read_topic(kafka_bootstrap, out, expect=ledger.ok, within=60)
        inputs = await read_topic(kafka_bootstrap, inp, settle=0.5)
        ends = end_offsets(inputs)
        offsets = await wait_committed(kafka_bootstrap, group_of("copy"), inp, ends)
        drained = time.monotonic() - stopped_at
        codes.append(await alive[0].stop())

    found = counts(outputs)
    lost = ledger.ok - found.keys()
    phantoms = found.keys() - ledger.ok - ledger.info
    duplicates = sum(n - 1 for n in found.values())
    skips = skipped(inputs, offsets, lambda m: m.ident in found)
    line = summary(
        "F6 rebalance storm 1-3-1-3-1 workers",
        sent=ledger.sent,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(lost),
        phantoms=len(phantoms),
        duplicates=duplicates,
        other_5xx=0,
        recovered=drained,
        extra=f"exit codes {codes}, committed {offsets}, ends {ends}, skipped {len(skips)}",
    )
    assert not lost and not phantoms and not skips, line
    assert offsets == ends, f"lag left: {line}"
    assert codes == [0] * len(codes), line
    assert len(ledger.ok) > 500, line
