"""T3: a worker (consume -> identity python agent -> produce, commits) against a bare loop.

Both run as their own process against the same local broker, on the same number of pre-filled
CloudEvents, alternating, several repetitions. Throughput is measured the same way for both, from
outside (:mod:`benchmarks.worker_runs`): the output topic's end offset, sampled, from the first
output to the last.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.worker_runs import fill, new_topics, running, watch, worker_argv

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


def write_app(folder: Path, inp: str, out: str, agent: str = "identity") -> Path:
    """The application folder of T3's identity python-processor (executor ``agent``)."""
    (folder / "python").mkdir(parents=True)
    (folder / "pipeline.yaml").write_text(APP.format(inp=inp, out=out, agent=agent))
    (folder / "python" / "bench.py").write_text(AGENT)
    return folder


def value_of(i: int) -> dict[str, Any]:
    return {"question": f"q{i}", "n": i}


@dataclass(frozen=True)
class Sample:
    variant: str
    repetition: int
    records: int
    seconds: float
    records_per_second: float
    cpu_seconds: float


async def one(variant: str, repetition: int, bootstrap: str, records: int, work: Path) -> Sample:
    inp, out = await new_topics(bootstrap, "t3", "in", "out")
    await fill(bootstrap, inp, records, value_of)
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
            f"g-{inp}",
        ]
    else:
        app = write_app(work / f"app-{inp}", inp, out)
        argv = worker_argv(app, "identity", bootstrap, work / "state")
    async with running(argv) as process:
        span = await watch(bootstrap, out, records, process)
    return Sample(variant, repetition, records, span.seconds, span.rate(records), span.cpu_last)


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
