"""B1: a fused chain of built-in agents (compute -> drop -> document-to-json) in one worker,
against the built-in ``identity`` agent in a worker, in the same run.

Every variant is a real worker process (``python -m workers``) on the same local broker, fed the
same pre-filled CloudEvents (JSON object values of about 200 bytes), alternating, several
repetitions. Throughput is measured from outside as in T3 (:mod:`benchmarks.worker_runs`): the
output topic's end offset, sampled, from the first output to the last; the rate counts the *input*
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

import json
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import t3
from benchmarks.worker_runs import fill, new_topics, running, watch, worker_argv
from sluice.application import plan_application
from sluice.application.loader import load_application

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


def outputs_of(variant: str, records: int) -> int:
    """How many outputs ``records`` inputs give (the fused chain drops one in 20)."""
    if variant == "fused":
        return records - (records + DROPPED_ONE_IN - 1) // DROPPED_ONE_IN
    return records


def write_app(variant: str, folder: Path, inp: str, out: str) -> Path:
    """The application folder of ``variant``; checks that its agents plan as one executor."""
    if variant == "python-identity":
        t3.write_app(folder, inp, out, agent=EXECUTOR)
    else:
        text = (FUSED if variant == "fused" else IDENTITY).format(
            inp=inp, out=out, one_in=DROPPED_ONE_IN
        )
        folder.mkdir(parents=True)
        (folder / "pipeline.yaml").write_text(text)
    plan = plan_application(load_application(folder))
    if len(plan.executors) != 1 or plan.executors[0].id != EXECUTOR:
        chains = [[a.id for a in e.agents] for e in plan.executors]
        raise RuntimeError(f"B1 {variant}: the agents should fuse into one executor, got {chains}")
    return folder


async def one(variant: str, repetition: int, bootstrap: str, records: int, work: Path) -> Sample:
    inp, out = await new_topics(bootstrap, "b1", "in", "out")
    await fill(bootstrap, inp, records, value_of)
    app = write_app(variant, work / f"app-{inp}", inp, out)
    outputs = outputs_of(variant, records)
    async with running(worker_argv(app, EXECUTOR, bootstrap, work / "state")) as process:
        span = await watch(bootstrap, out, outputs, process)
    return Sample(
        variant,
        repetition,
        records,
        outputs,
        span.seconds,
        span.rate(records),
        span.cpu_seconds,
        1000 * span.cpu_seconds / (records - 1),
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
