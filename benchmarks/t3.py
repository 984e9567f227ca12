"""T3: a worker (consume -> identity python agent -> produce, commits) against a bare loop.

Both run as their own process against the same local broker, on the same number of pre-filled
CloudEvents, alternating, several repetitions. Throughput is measured the same way for both, from
outside: the output topic's end offset, sampled, from the first output to the last.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from sluice.application.model import TopicSpec
from sluice.kafka import KafkaSettings, Producer
from sluice.kafka.admin import ensure_topics
from sluice.record import Record

APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - {{id: {agent}, type: python-processor, input: {inp}, output: {out},
      configuration: {{className: bench.Identity}}}}
"""
AGENT = """
from langstream import Processor


class Identity(Processor):
    async def process(self, record):
        return [record]
"""


@dataclass(frozen=True)
class Sample:
    variant: str
    repetition: int
    records: int
    seconds: float
    records_per_second: float
    cpu_seconds: float


async def fill(settings: KafkaSettings, topic: str, count: int) -> None:
    async with Producer(settings) as producer:
        for start in range(0, count, 2000):
            await asyncio.gather(
                *(
                    producer.send(
                        topic,
                        Record(
                            {"question": f"q{i}", "n": i},
                            key=f"k{i % 64}",
                            headers={"langstream-client-session-id": "s"},
                        ),
                        source="/bench",
                    )
                    for i in range(start, min(count, start + 2000))
                )
            )


async def _watch(bootstrap: str, topic: str, count: int, within: float) -> tuple[float, float]:
    """Times (monotonic) when the first and the last of ``count`` outputs were there."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    first = None
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            end = (await consumer.end_offsets([tp]))[tp]
            now = time.monotonic()
            if end > 0 and first is None:
                first = now
            if end >= count:
                assert first is not None
                return first, now
            await asyncio.sleep(0.02)
    finally:
        await consumer.stop()
    raise TimeoutError(f"only part of {count} records reached {topic} in {within:.0f}s")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one(variant: str, repetition: int, bootstrap: str, records: int, work: Path) -> Sample:
    settings = KafkaSettings(bootstrap)
    suffix = uuid.uuid4().hex[:8]
    inp, out = f"t3-in-{suffix}", f"t3-out-{suffix}"
    await ensure_topics(
        settings,
        [
            TopicSpec(inp, "create-if-not-exists", partitions=1),
            TopicSpec(out, "create-if-not-exists", partitions=1),
        ],
    )
    await fill(settings, inp, records)
    if variant == "baseline":
        argv = [
            sys.executable,
            "-m",
            "benchmarks.baseline_loop",
            "--bootstrap-servers",
            bootstrap,
            "--input",
            inp,
            "--output",
            out,
            "--group",
            f"g-{suffix}",
        ]
    else:
        app = work / f"app-{suffix}"
        (app / "python").mkdir(parents=True)
        (app / "pipeline.yaml").write_text(APP.format(inp=inp, out=out, agent="identity"))
        (app / "python" / "bench.py").write_text(AGENT)
        argv = [
            sys.executable,
            "-m",
            "workers",
            str(app),
            "--executor",
            "identity",
            "--bootstrap-servers",
            bootstrap,
            "--state-dir",
            str(work / "state"),
        ]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        first, last = await _watch(bootstrap, out, records, within=600)
        cpu = _cpu_seconds(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    seconds = last - first
    # The first output marks the start; count the records after it.
    rate = (records - 1) / seconds if seconds > 0 else float("inf")
    return Sample(variant, repetition, records, seconds, rate, cpu)


async def run(bootstrap: str, *, records: int, repetitions: int) -> dict[str, object]:
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="sluice-t3-") as tmp:
        for repetition in range(repetitions):
            order = ("baseline", "worker") if repetition % 2 == 0 else ("worker", "baseline")
            for variant in order:
                sample = await one(variant, repetition, bootstrap, records, Path(tmp))
                print(
                    f"  T3 {variant:8} #{repetition}: {sample.records_per_second:9.0f} "
                    f"records/s, {sample.cpu_seconds:.1f} CPU-s",
                    flush=True,
                )
                samples.append(sample)
    rates = {
        v: [s.records_per_second for s in samples if s.variant == v] for v in ("baseline", "worker")
    }
    worker, baseline = statistics.median(rates["worker"]), statistics.median(rates["baseline"])
    ratio = worker / baseline
    return {
        "id": "T3",
        "scenario": "worker: consume -> python-processor (identity) -> produce, commits",
        "baseline": "bare aiokafka consume+produce loop, commit per batch (same run)",
        "records": records,
        "repetitions": repetitions,
        "worker_records_per_second": {
            "median": worker,
            "min": min(rates["worker"]),
            "max": max(rates["worker"]),
        },
        "baseline_records_per_second": {
            "median": baseline,
            "min": min(rates["baseline"]),
            "max": max(rates["baseline"]),
        },
        "ratio": ratio,
        "target": ">= 0.4x baseline and >= 10000 records/s",
        "met": ratio >= 0.4 and worker >= 10_000,
        "samples": [asdict(s) for s in samples],
    }
