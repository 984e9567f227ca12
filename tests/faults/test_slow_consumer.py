"""F10: a slow consumer. Records arrive through the gateway at a steady rate while two of them
each take longer than the worker's ``max.poll.interval.ms`` (3 s here), so lag builds up behind
them. The worker must stay in its group (keep polling with its partition paused), so every record
is processed once (the agent's own log of what it processed shows no repeats), the lag drains,
and the gateway's produce latency does not care. I1, I2, I4; duplicates reported."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from sluice.application import load_application, plan_application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import ensure_topics
from tests.faults.support import (
    Ledger,
    children,
    counts,
    end_offsets,
    gateway_process,
    group_of,
    instance_file,
    other_5xx,
    read_topic,
    skipped,
    summary,
    wait_committed,
    write_app,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(180)]

POLL_INTERVAL_MS = 3000
SLOW = 4.5
"""Seconds the two slow records take: 1.5 times the poll interval."""

GATEWAYS = """
gateways:
  - {id: in, type: produce, topic: f10-in}
"""
PIPELINE = """
topics:
  - {{name: f10-in, creation-mode: create-if-not-exists}}
  - {{name: f10-out, creation-mode: create-if-not-exists}}
pipeline:
  - id: slow
    type: python-processor
    input: f10-in
    output: f10-out
    configuration: {{className: agents.Slow, log: "{log}"}}
"""
AGENTS = f"""
import time

from sluice import Processor


class Slow(Processor):
    def init(self, config):
        self.log = config["log"]

    def process(self, record):
        # One line per processing, before the effect: a redelivery shows as a repeat.
        with open(self.log, "a") as log:
            log.write(str(record.value).split()[0] + "\\n")
        time.sleep({SLOW} if "slow" in str(record.value) else 0.01)
        return record
"""


async def test_records_slower_than_the_poll_interval_are_processed_once_and_lag_drains(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    processed = tmp_path / "processed.log"
    app = write_app(
        tmp_path,
        {
            "gateways.yaml": GATEWAYS,
            "pipeline.yaml": PIPELINE.format(log=processed),
            "python/agents.py": AGENTS,
        },
    )
    # Topic names are fixed by the gateway file: a fresh broker per session, but be safe.
    await ensure_topics(
        KafkaSettings(kafka_bootstrap), plan_application(load_application(app)).topics
    )
    before = {m.ident for m in await read_topic(kafka_bootstrap, "f10-in", settle=0.5)}
    ledger = Ledger()
    latencies: list[float] = []
    instance = instance_file(tmp_path, **{"max.poll.interval.ms": str(POLL_INTERVAL_MS)})
    async with (
        gateway_process(app, kafka_bootstrap, tmp_path / "gateway.log") as gateway,
        children(app, kafka_bootstrap, tmp_path, instance) as kids,
        httpx.AsyncClient(timeout=30, trust_env=False) as client,
    ):
        worker = await kids.worker("slow")
        url = f"{gateway.url}/api/gateways/produce/default/faults/in"
        started = time.monotonic()
        for n in range(120):
            sent_at = time.monotonic()
            await ledger.produce(client, url)
            latencies.append(time.monotonic() - sent_at)
            if n in (20, 60):
                # The slow ones: a record whose value says so.
                ident = ledger.new_id()
                response = await client.post(url, json={"value": f"{ident} slow"})
                ledger.statuses[response.status_code] += 1
                (ledger.ok if response.is_success else ledger.info).add(ident)
            await asyncio.sleep(0.05)
        produced_for = time.monotonic() - started
        outputs = await read_topic(kafka_bootstrap, "f10-out", expect=ledger.ok, within=60)
        inputs = await read_topic(kafka_bootstrap, "f10-in", settle=0.5)
        ends = end_offsets(inputs)
        offsets = await wait_committed(kafka_bootstrap, group_of("slow"), "f10-in", ends)
        drained = time.monotonic() - started - produced_for
        code = await worker.stop()

    inputs = [m for m in inputs if m.ident not in before]
    found = counts(outputs)
    lost = ledger.ok - found.keys()
    phantoms = found.keys() - ledger.ok - ledger.info - before
    runs = Counter(processed.read_text().split())
    repeats = {ident: n for ident, n in runs.items() if n > 1}
    skips = skipped(inputs, offsets, lambda m: m.ident in found)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    line = summary(
        f"F10 slow consumer (2 records of {SLOW} s, max.poll.interval {POLL_INTERVAL_MS} ms)",
        sent=ledger.sent,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(lost),
        phantoms=len(phantoms),
        duplicates=sum(n - 1 for i, n in found.items() if i in ledger.ok),
        other_5xx=other_5xx(ledger.statuses),
        recovered=drained,
        extra=f"processed twice {len(repeats)}, produce p99 {p99 * 1000:.0f} ms, "
        f"skipped {len(skips)}, committed {offsets}, ends {ends}",
    )
    assert not lost and not phantoms and not skips, line
    assert set(ledger.statuses) == {200}, line
    assert offsets == ends, line
    assert not repeats, f"processed more than once: {repeats}; {line}"
    assert p99 < 1.0, line
    assert code == 0, line
