"""B4: ``vector-db-sink`` on a jdbc datasource through a real worker, against a bare batched
insert of the same rows with the same driver, in the same run.

The subject is LangStream's jdbc sink as its examples write it (``table-name``, ``fields`` with
the ``primary-key`` columns ``filename`` and ``chunk_id``, ``text`` and a 384-dimension
``embeddings_vector`` taken as the record holds it; the variant ``pipeline-fn`` passes it
through ``fn:toListOfFloat`` as LangStream's examples do), with Sluice's default batching
(``batch-size`` 100, ``flush-interval`` 100 ms), in a real worker process (``python -m
workers``) on the local broker, fed pre-filled CloudEvents, writing to the embedded PostgreSQL
with pgvector. Its rate is the table's row
count, sampled every 20 ms from the first row to the last, with the worker's CPU-seconds read
at those moments (start-up not counted), over the rows written after the first sample.

The baseline runs in this process: the same rows, in the same order, with psycopg (the driver
the sink uses), ``executemany`` of a plain ``INSERT`` in one transaction per 100 rows, vectors
in pgvector's text form, into an empty table of the same shape. Variants alternate, several
repetitions, each on a fresh table; the figure is the worker's median rate over the baseline's.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from benchmarks.harness import cpu_seconds, spread
from benchmarks.postgres_runs import (
    DIMENSIONS,
    configuration_yaml,
    create_table,
    local_postgres,
    sql,
    value_of,
)
from benchmarks.worker_runs import fill, new_topics, running, worker_argv
from sluice.application import plan_application
from sluice.application.loader import load_application
from sluice.postgres import LocalPostgres

__all__ = ["BATCH_SIZE", "VARIANTS", "run"]

VARIANTS = ("direct", "pipeline", "pipeline-fn")
BATCH_SIZE = 100
TARGET = 0.7
EXECUTOR = "write"

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
pipeline:
  - id: write
    name: write chunks
    type: vector-db-sink
    input: {inp}
    configuration:
      datasource: JdbcDatasource
      table-name: {table}
      fields:
        - {{name: filename, expression: value.filename, primary-key: true}}
        - {{name: chunk_id, expression: value.chunk_id, primary-key: true}}
        - {{name: text, expression: value.text}}
        - {{name: embeddings_vector, expression: "{vector}"}}
"""
VECTOR_EXPRESSIONS = {
    "pipeline": "value.embeddings_vector",
    "pipeline-fn": "fn:toListOfFloat(value.embeddings_vector)",
}
"""The vector column's expression per worker variant: the list as it is (as
``compute-ai-embeddings`` writes it), and through ``fn:toListOfFloat`` as LangStream's examples
write it (each number rounded to a 32-bit float, kept as its shortest decimal)."""


@dataclass(frozen=True)
class Sample:
    variant: str
    repetition: int
    records: int
    seconds: float
    records_per_second: float
    cpu_seconds_per_1k: float


def write_app(folder: Path, inp: str, table: str, server: LocalPostgres, vector: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "pipeline.yaml").write_text(PIPELINE.format(inp=inp, table=table, vector=vector))
    (folder / "configuration.yaml").write_text(configuration_yaml(server))
    plan = plan_application(load_application(folder))
    if [e.id for e in plan.executors] != [EXECUTOR]:
        raise RuntimeError(f"B4: expected one executor {EXECUTOR!r}, got {plan.executors}")
    return folder


def vector_text(vector: list[float]) -> str:
    return "[" + ",".join(repr(x) for x in vector) + "]"


async def direct(repetition: int, server: LocalPostgres, records: int) -> Sample:
    """The rows inserted by this process, ``BATCH_SIZE`` per transaction."""
    table = f"b4_direct_{uuid.uuid4().hex[:8]}"
    await create_table(server, table)
    values = [value_of(i) for i in range(records)]
    insert = (
        f"INSERT INTO {table} (filename, chunk_id, text, embeddings_vector) VALUES (%s, %s, %s, %s)"
    )
    async with await psycopg.AsyncConnection.connect(
        **server.connection_arguments(), autocommit=True
    ) as connection:
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, records, BATCH_SIZE):
            params = [
                (v["filename"], v["chunk_id"], v["text"], vector_text(v["embeddings_vector"]))
                for v in values[start : start + BATCH_SIZE]
            ]
            async with connection.transaction(), connection.cursor() as cursor:
                await cursor.executemany(insert, params)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await check_rows(server, table, records)
    return Sample("direct", repetition, records, seconds, records / seconds, 1000 * cpu / records)


async def pipeline(
    variant: str, repetition: int, bootstrap: str, server: LocalPostgres, records: int, work: Path
) -> Sample:
    [inp] = await new_topics(bootstrap, "b4", "in")
    await fill(bootstrap, inp, records, value_of)
    table = f"b4_sink_{uuid.uuid4().hex[:8]}"
    await create_table(server, table)
    app = write_app(work / f"app-{inp}", inp, table, server, VECTOR_EXPRESSIONS[variant])
    count = f"SELECT count(*) FROM {table}"
    async with (
        running(worker_argv(app, EXECUTOR, bootstrap, work / "state")) as process,
        await psycopg.AsyncConnection.connect(
            **server.connection_arguments(), autocommit=True
        ) as connection,
    ):
        first: tuple[float, float, int] | None = None
        deadline = time.monotonic() + 600
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"B4: the worker exited with code {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"B4: not every row reached {table} in 600 s")
            row = await (await connection.execute(count)).fetchone()
            rows = int(row[0]) if row else 0
            now, cpu = time.monotonic(), cpu_seconds(process.pid)
            if rows > 0 and first is None:
                first = (now, cpu, rows)
            if rows >= records:
                break
            await asyncio.sleep(0.02)
    assert first is not None
    worked = records - first[2]
    seconds = now - first[0]
    rate = worked / seconds if seconds > 0 else float("inf")
    await check_rows(server, table, records)
    return Sample(
        variant, repetition, records, seconds, rate, 1000 * (cpu - first[1]) / max(worked, 1)
    )


async def check_rows(server: LocalPostgres, table: str, records: int) -> None:
    """Every record is one row (the figure counts rows, so a duplicate would inflate it)."""
    [(rows, keys)] = await sql(
        server, f"SELECT count(*), count(DISTINCT (filename, chunk_id)) FROM {table}"
    )
    if (rows, keys) != (records, records):
        raise RuntimeError(f"B4: {table} has {rows} rows, {keys} keys for {records} records")


async def run(bootstrap: str, *, records: int, repetitions: int) -> dict[str, object]:
    records = max(BATCH_SIZE * 2, records - records % BATCH_SIZE)
    samples: list[Sample] = []
    async with local_postgres() as server:
        with tempfile.TemporaryDirectory(prefix="sluice-b4-") as tmp:
            for repetition in range(repetitions):
                shift = repetition % len(VARIANTS)
                for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                    if variant in VECTOR_EXPRESSIONS:
                        sample = await pipeline(
                            variant, repetition, bootstrap, server, records, Path(tmp)
                        )
                    else:
                        sample = await direct(repetition, server, records)
                    print(
                        f"  B4 {variant:8} #{repetition}: {sample.records_per_second:7.1f} "
                        f"rows/s, {sample.cpu_seconds_per_1k:.2f} CPU-s per 1k rows",
                        flush=True,
                    )
                    samples.append(sample)
    rates = {v: [s.records_per_second for s in samples if s.variant == v] for v in VARIANTS}
    cpus = {v: [s.cpu_seconds_per_1k for s in samples if s.variant == v] for v in VARIANTS}
    ratio = statistics.median(rates["pipeline"]) / statistics.median(rates["direct"])
    per_repetition = [p / d for p, d in zip(rates["pipeline"], rates["direct"], strict=True)]
    return {
        "id": "B4",
        "scenario": f"vector-db-sink on the embedded PostgreSQL with pgvector in a worker, "
        f"batch-size {BATCH_SIZE} (default), {DIMENSIONS}-dimension vectors, upsert by key: "
        "input topic -> sink -> table (pipeline-fn: the vector through fn:toListOfFloat)",
        "baseline": f"psycopg executemany of a plain INSERT of the same rows in this process, "
        f"{BATCH_SIZE} rows per transaction",
        "records": records,
        "batch_size": BATCH_SIZE,
        "dimensions": DIMENSIONS,
        "repetitions": repetitions,
        "records_per_second": {v: spread(rates[v]) for v in VARIANTS},
        "cpu_seconds_per_1k_records": {v: spread(cpus[v]) for v in VARIANTS},
        "ratio": ratio,
        "ratio_per_repetition": spread(per_repetition),
        "ratio_with_fn": statistics.median(rates["pipeline-fn"])
        / statistics.median(rates["direct"]),
        "target": f">= {TARGET}x the bare batched insert's rows/s",
        "met": ratio >= TARGET,
        "samples": [asdict(s) for s in samples],
    }
