"""B2: ``compute-ai-embeddings`` on the local model through a real worker, against the same model
called directly, in the same run.

The subject is LangStream's Hugging Face embeddings example as a user writes it: a
``hugging-face-configuration`` resource with ``provider: local`` (all-MiniLM-L6-v2, int8, on
onnxruntime) and one ``compute-ai-embeddings`` agent (``text: "{{ value.text }}"``,
``embeddings-field: value.embeddings``, ``batch-size: 10``, ``flush-interval: 500``, the values
of LangStream's examples) between an input and an output topic, in a real worker process
(``python -m workers``) on the local broker, fed pre-filled CloudEvents whose values hold a
question of 12 to 40 words. Its rate is measured from outside as in T3
(:mod:`benchmarks.worker_runs`), over the records written after the first output.

The baseline runs in this process: the same texts, in the same order, through
:meth:`~workers.builtin.embedding_models.LocalEmbeddingModel.embed` ``batch-size`` at a time
(the model loaded and warmed up beforehand, so only the calls are timed). A second reference,
``direct-single``, embeds one text per call: what the pipeline costs when each record is
embedded alone (the runtime before cross-record batching), so the gap between the two
references is what batching can win and the gap between ``direct-single`` and the pipeline is
the pipeline's own cost. The variants alternate, several repetitions; the figure is the
pipeline's median rate over the baseline's.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import spread
from benchmarks.worker_runs import fill, new_topics, running, watch, worker_argv
from sluice.application import plan_application
from sluice.application.loader import load_application

__all__ = ["BATCH_SIZE", "FLUSH_INTERVAL_MS", "VARIANTS", "run", "text_of"]

VARIANTS = ("direct", "pipeline", "direct-single")
BATCH_SIZE = 10
FLUSH_INTERVAL_MS = 500
TARGET = 0.8
EXECUTOR = "embed"

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: embed
    name: compute-embeddings
    type: compute-ai-embeddings
    input: {inp}
    output: {out}
    configuration:
      model: all-MiniLM-L6-v2
      text: "{{{{ value.text }}}}"
      embeddings-field: value.embeddings
      batch-size: {batch_size}
      flush-interval: {flush_interval}
"""
CONFIGURATION = """
configuration:
  resources:
    - type: hugging-face-configuration
      name: local embeddings
      configuration:
        provider: local
"""

_PHRASE = (
    "how does the pipeline keep records in order when a worker restarts while its model "
    "computes the vectors of long questions about kafka topics gateways agents and the "
    "documents users index every day with a few more words to vary what each text says"
)
_WORDS = _PHRASE.split()


def text_of(i: int) -> str:
    """Input ``i``'s text: 12 to 40 words, the same in every variant and every run."""
    rng = random.Random(i)
    words = [rng.choice(_WORDS) for _ in range(rng.randint(12, 40))]
    return f"question {i}: " + " ".join(words) + "?"


def value_of(i: int) -> dict[str, Any]:
    return {"id": i, "text": text_of(i)}


@dataclass(frozen=True)
class Sample:
    variant: str
    repetition: int
    records: int
    seconds: float
    records_per_second: float
    cpu_seconds_per_1k: float


def write_app(folder: Path, inp: str, out: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "pipeline.yaml").write_text(
        PIPELINE.format(inp=inp, out=out, batch_size=BATCH_SIZE, flush_interval=FLUSH_INTERVAL_MS)
    )
    (folder / "configuration.yaml").write_text(CONFIGURATION)
    plan = plan_application(load_application(folder))
    if [e.id for e in plan.executors] != [EXECUTOR]:
        raise RuntimeError(f"B2: expected one executor {EXECUTOR!r}, got {plan.executors}")
    return folder


def direct(variant: str, repetition: int, texts: list[str]) -> Sample:
    """The model called in this process on ``texts``, ``BATCH_SIZE`` (or one) per call."""
    from workers.builtin.embedding_models import load_model

    model = load_model()
    batch = 1 if variant == "direct-single" else BATCH_SIZE
    model.embed(texts[:batch])  # onnxruntime's first run allocates; not timed
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), batch):
        model.embed(texts[start : start + batch])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Sample(
        variant, repetition, len(texts), seconds, len(texts) / seconds, 1000 * cpu / len(texts)
    )


async def pipeline(repetition: int, bootstrap: str, records: int, work: Path) -> Sample:
    inp, out = await new_topics(bootstrap, "b2", "in", "out")
    await fill(bootstrap, inp, records, value_of)
    app = write_app(work / f"app-{inp}", inp, out)
    async with running(worker_argv(app, EXECUTOR, bootstrap, work / "state")) as process:
        span = await watch(bootstrap, out, records, process)
    # Count only what was embedded after the first output was seen (a whole batch, once
    # batches span records).
    worked = records - span.outputs_at_first
    rate = worked / span.seconds if span.seconds > 0 else float("inf")
    return Sample(
        "pipeline", repetition, records, span.seconds, rate, 1000 * span.cpu_seconds / worked
    )


async def run(bootstrap: str, *, records: int, repetitions: int) -> dict[str, object]:
    records = max(BATCH_SIZE * 2, records - records % BATCH_SIZE)  # whole batches only
    texts = [text_of(i) for i in range(records)]
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="sluice-b2-") as tmp:
        for repetition in range(repetitions):
            shift = repetition % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                if variant == "pipeline":
                    sample = await pipeline(repetition, bootstrap, records, Path(tmp))
                else:
                    sample = direct(variant, repetition, texts)
                print(
                    f"  B2 {variant:13} #{repetition}: {sample.records_per_second:7.1f} "
                    f"records/s, {sample.cpu_seconds_per_1k:.1f} CPU-s per 1k records",
                    flush=True,
                )
                samples.append(sample)
    rates = {v: [s.records_per_second for s in samples if s.variant == v] for v in VARIANTS}
    cpus = {v: [s.cpu_seconds_per_1k for s in samples if s.variant == v] for v in VARIANTS}
    ratio = statistics.median(rates["pipeline"]) / statistics.median(rates["direct"])
    per_repetition = [p / d for p, d in zip(rates["pipeline"], rates["direct"], strict=True)]
    return {
        "id": "B2",
        "scenario": "compute-ai-embeddings on the local model (all-MiniLM-L6-v2 int8, "
        f"onnxruntime) in a worker, batch-size {BATCH_SIZE}, flush-interval "
        f"{FLUSH_INTERVAL_MS} ms: input topic -> agent -> output topic",
        "baseline": f"the same model's embed() in the benchmark process on the same texts, "
        f"{BATCH_SIZE} per call (direct-single: one per call, for reference)",
        "records": records,
        "batch_size": BATCH_SIZE,
        "flush_interval_ms": FLUSH_INTERVAL_MS,
        "words_per_text_mean": statistics.mean(len(t.split()) for t in texts),
        "repetitions": repetitions,
        "records_per_second": {v: spread(rates[v]) for v in VARIANTS},
        "cpu_seconds_per_1k_records": {v: spread(cpus[v]) for v in VARIANTS},
        "ratio": ratio,
        "ratio_per_repetition": spread(per_repetition),
        "ratio_to_direct_single": statistics.median(rates["pipeline"])
        / statistics.median(rates["direct-single"]),
        # On a shared machine the rates follow what the neighbours leave; the CPU each record
        # costs moves less: the direct calls' CPU-seconds per record over the worker's.
        "cpu_ratio": statistics.median(cpus["direct"]) / statistics.median(cpus["pipeline"]),
        "target": f">= {TARGET}x the direct model's records/s",
        "met": ratio >= TARGET,
        "samples": [asdict(s) for s in samples],
    }
