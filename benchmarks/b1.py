"""B1: a fused chain of built-in agents (compute -> drop -> document-to-json) in one worker,
against the built-in ``identity`` agent in a worker, in the same run.

Every variant is a real worker process (``python -m workers``) on the same local broker, fed the
same pre-filled CloudEvents (JSON object values of about 200 bytes), alternating, several
repetitions. Throughput is measured from outside as in T3 (:mod:`benchmarks.t3`): the output
topic's end offset, sampled, from the first output to the last; the rate counts the *input*
records worked through (the fused chain drops 5% of them, so it writes fewer). The worker's
CPU-seconds are read from ``/proc`` at the first and the last output, so start-up (imports,
connecting) is not counted.

The variants:

- ``fused``: ``compute`` (``value.n1 = value.n + 1``, ``value.question =
  fn:uppercase(value.question)``, ``properties.bucket = value.n % 20``), then ``drop`` with
  ``when: value.n % 20 == 0`` (one record in 20), then ``document-to-json`` (the value becomes
  ``{"text": <the value as JSON>, <headers>...}``). The planner fuses the three into one executor.
- ``identity``: the built-in ``identity`` agent (the baseline: the runtime's own cost).
- ``python-identity``: T3's identity ``python-processor`` (for reference: what the Python SDK
  adapter adds).
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks import t3
from sluice.application import plan_application
from sluice.application.loader import load_application
from sluice.application.model import TopicSpec
from sluice.kafka import KafkaSettings, Producer
from sluice.kafka.admin import ensure_topics
from sluice.record import Record

__all__ = ["DROPPED_ONE_IN", "VARIANTS", "run", "value_of"]

VARIANTS = ("identity", "fused", "python-identity")
DROPPED_ONE_IN = 20
"""``drop`` removes the records whose ``n`` is a multiple of this (5%)."""

FUSED = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: compute
    type: compute
    input: {inp}
    configuration:
      fields:
        - {{name: value.n1, expression: "value.n + 1"}}
        - {{name: value.question, expression: "fn:uppercase(value.question)"}}
        - {{name: properties.bucket, expression: "value.n % {one_in}"}}
  - id: drop
    type: drop
    configuration: {{when: "value.n % {one_in} == 0"}}
  - id: to-json
    type: document-to-json
    output: {out}
    configuration: {{text-field: text}}
"""
IDENTITY = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - {{id: compute, type: identity, input: {inp}, output: {out}}}
"""
EXECUTOR = "compute"
"""The executor every variant's worker runs (the planner names a chain after its first agent)."""

_FILLER = "How does the pipeline treat a question of this length, with a few words more? "


def value_of(i: int) -> dict[str, Any]:
    """The value of input record ``i``: a JSON object of about 200 bytes.

    >>> len(json.dumps(value_of(12345), separators=(",", ":")))
    200
    """
    return {
        "n": i,
        "question": f"q{i:06d}: {_FILLER}{_FILLER[:58]}",
        "user": f"user-{i % 100:03d}",
        "lang": "en",
    }


@dataclass(frozen=True)
class Sample:
    variant: str
    repetition: int
    records: int
    outputs: int
    seconds: float
    records_per_second: float
    cpu_seconds: float
    cpu_seconds_per_1k: float


async def fill(settings: KafkaSettings, topic: str, count: int) -> None:
    async with Producer(settings) as producer:
        for start in range(0, count, 2000):
            await asyncio.gather(
                *(
                    producer.send(
                        topic,
                        Record(
                            value_of(i),
                            key=f"k{i % 64}",
                            headers={"langstream-client-session-id": "s"},
                        ),
                        source="/bench",
                    )
                    for i in range(start, min(count, start + 2000))
                )
            )


def outputs_of(variant: str, records: int) -> int:
    """How many outputs ``records`` inputs give (the fused chain drops one in 20)."""
    if variant == "fused":
        return records - (records + DROPPED_ONE_IN - 1) // DROPPED_ONE_IN
    return records


def write_app(variant: str, folder: Path, inp: str, out: str) -> Path:
    """The application folder of ``variant``; checks that its agents plan as one executor."""
    (folder / "python").mkdir(parents=True)
    if variant == "python-identity":
        text = t3.APP.format(inp=inp, out=out, agent=EXECUTOR)
        (folder / "python" / "bench.py").write_text(t3.AGENT)
    else:
        text = (FUSED if variant == "fused" else IDENTITY).format(
            inp=inp, out=out, one_in=DROPPED_ONE_IN
        )
    (folder / "pipeline.yaml").write_text(text)
    plan = plan_application(load_application(folder))
    if len(plan.executors) != 1 or plan.executors[0].id != EXECUTOR:
        chains = [[a.id for a in e.agents] for e in plan.executors]
        raise RuntimeError(f"B1 {variant}: the agents should fuse into one executor, got {chains}")
    return folder


async def _watch(
    bootstrap: str, topic: str, count: int, pid: int, within: float
) -> tuple[float, float, float, float]:
    """(time, worker CPU-seconds) when the first and the last of ``count`` outputs were there."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    first: tuple[float, float] | None = None
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            end = (await consumer.end_offsets([tp]))[tp]
            now, cpu = time.monotonic(), t3._cpu_seconds(pid)
            if end > 0 and first is None:
                first = (now, cpu)
            if end >= count:
                assert first is not None
                return first[0], now, first[1], cpu
            await asyncio.sleep(0.02)
    finally:
        await consumer.stop()
    raise TimeoutError(f"only part of {count} records reached {topic} in {within:.0f}s")


async def one(variant: str, repetition: int, bootstrap: str, records: int, work: Path) -> Sample:
    settings = KafkaSettings(bootstrap)
    suffix = uuid.uuid4().hex[:8]
    inp, out = f"b1-in-{suffix}", f"b1-out-{suffix}"
    await ensure_topics(
        settings,
        [
            TopicSpec(inp, "create-if-not-exists", partitions=1),
            TopicSpec(out, "create-if-not-exists", partitions=1),
        ],
    )
    await fill(settings, inp, records)
    app = write_app(variant, work / f"app-{suffix}", inp, out)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        str(app),
        "--executor",
        EXECUTOR,
        "--bootstrap-servers",
        bootstrap,
        "--state-dir",
        str(work / "state"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    outputs = outputs_of(variant, records)
    try:
        first, last, cpu_first, cpu_last = await _watch(
            bootstrap, out, outputs, process.pid, within=600
        )
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    seconds = last - first
    # The first output marks the start; count the inputs worked through after it.
    rate = (records - 1) / seconds if seconds > 0 else float("inf")
    cpu = cpu_last - cpu_first
    return Sample(
        variant, repetition, records, outputs, seconds, rate, cpu, 1000 * cpu / (records - 1)
    )


def _figure(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def run(
    bootstrap: str, *, records: int, repetitions: int, variants: tuple[str, ...] = VARIANTS
) -> dict[str, object]:
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="sluice-b1-") as tmp:
        for repetition in range(repetitions):
            # Alternate: each repetition rotates which variant goes first.
            shift = repetition % len(variants)
            order = variants[shift:] + variants[:shift]
            for variant in order:
                sample = await one(variant, repetition, bootstrap, records, Path(tmp))
                print(
                    f"  B1 {variant:15} #{repetition}: {sample.records_per_second:9.0f} "
                    f"records/s, {sample.cpu_seconds_per_1k:.3f} CPU-s per 1k records",
                    flush=True,
                )
                samples.append(sample)
    rates = {v: [s.records_per_second for s in samples if s.variant == v] for v in variants}
    cpus = {v: [s.cpu_seconds_per_1k for s in samples if s.variant == v] for v in variants}
    ratios = [
        f.records_per_second / i.records_per_second
        for f, i in zip(
            (s for s in samples if s.variant == "fused"),
            (s for s in samples if s.variant == "identity"),
            strict=True,
        )
    ]
    ratio = statistics.median(rates["fused"]) / statistics.median(rates["identity"])
    sizes = [len(json.dumps(value_of(i), separators=(",", ":"))) for i in range(records)]
    return {
        "id": "B1",
        "scenario": "worker: consume -> compute + drop (5%) + document-to-json fused in one "
        "executor -> produce, commits",
        "baseline": "the built-in identity agent in a worker (same run, same records)",
        "records": records,
        "value_bytes_mean": statistics.mean(sizes),
        "repetitions": repetitions,
        "records_per_second": {v: _figure(rates[v]) for v in variants},
        "cpu_seconds_per_1k_records": {v: _figure(cpus[v]) for v in variants},
        "ratio": ratio,
        "ratio_per_repetition": _figure(ratios),
        "target": ">= 0.7x the identity agent's records/s",
        "met": ratio >= 0.7,
        "samples": [asdict(s) for s in samples],
    }
