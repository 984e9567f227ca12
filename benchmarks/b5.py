"""B5: ``query-vector-db`` on a jdbc datasource through a real worker: latency p50/p99 at 50
queries/s (open loop), against the same query run directly, in the same run.

The table holds 5,000 document chunks with 384-dimension vectors (pgvector, no index: an exact
search, the same work every time); the query is LangStream's jdbc examples' nearest-neighbour
search, ``SELECT ... ORDER BY embeddings_vector <=> CAST(? AS vector) LIMIT 5`` with the
question's vector as its field. The subject: ``query-vector-db`` between an input and an output
topic in a real worker process (``python -m workers``) on the local broker; each question is
sent at its scheduled time (open loop: 50 per second whatever the answers do), and its latency
runs from that time to its answer read from the output topic (produce, consume, the query,
produce, consume). The baseline: the same query with the same vectors from this process through
psycopg (a pool of 4 connections, the agent's default), at the same schedule, from the
scheduled time to the rows. Variants alternate, several repetitions; the worker answers a few
questions first, not timed, so start-up is not counted.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from benchmarks.harness import percentile, spread
from benchmarks.postgres_runs import (
    DIMENSIONS,
    configuration_yaml,
    create_table,
    local_postgres,
    value_of,
    vector_of,
)
from benchmarks.worker_runs import new_topics, running, worker_argv
from sluice.application import plan_application
from sluice.application.loader import load_application
from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.postgres import LocalPostgres
from sluice.record import Record

__all__ = ["RATE", "ROWS", "VARIANTS", "run"]

VARIANTS = ("direct", "pipeline")
RATE = 50.0
ROWS = 5000
WARM_UP = 5
WITHIN = 30.0
EXECUTOR = "search"

QUERY = (
    "SELECT text, chunk_id FROM {table} ORDER BY embeddings_vector <=> CAST(? AS vector) LIMIT 5"
)

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: search
    name: lookup related documents
    type: query-vector-db
    input: {inp}
    output: {out}
    configuration:
      datasource: JdbcDatasource
      query: "{query}"
      fields:
        - "value.question_embeddings"
      output-field: "value.related_documents"
"""


@dataclass(frozen=True)
class Sample:
    variant: str
    repetition: int
    queries: int
    answered: int
    seconds_sending: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def question(i: int) -> dict[str, Any]:
    return {"id": i, "question_embeddings": vector_of(1_000_000 + i)}


async def fill_table(server: LocalPostgres, table: str) -> None:
    await create_table(server, table)
    insert = (
        f"INSERT INTO {table} (filename, chunk_id, text, embeddings_vector) "
        "VALUES (%s, %s, %s, %s::vector)"
    )
    async with await psycopg.AsyncConnection.connect(
        **server.connection_arguments(), autocommit=True
    ) as connection:
        for start in range(0, ROWS, 500):
            values = [value_of(i) for i in range(start, min(ROWS, start + 500))]
            params = [
                (v["filename"], v["chunk_id"], v["text"], str(v["embeddings_vector"]))
                for v in values
            ]
            async with connection.transaction(), connection.cursor() as cursor:
                await cursor.executemany(insert, params)
        await connection.execute(f"ANALYZE {table}")


async def open_loop(count: int, send: Any) -> tuple[list[float], float]:
    """Call ``send(i, scheduled)`` for i in 0..count-1 at ``RATE`` per second, each as its own
    task: the latencies (seconds, None for the unanswered) and the seconds sending took."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1
    tasks = []
    for i in range(count):
        scheduled = start + i / RATE
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(send(i, scheduled)))
    sending = loop.time() - start
    results = await asyncio.gather(*tasks)
    return [r for r in results if r is not None], sending


async def direct(repetition: int, server: LocalPostgres, table: str, count: int) -> Sample:
    text = QUERY.format(table=table).replace("?", "%s")
    loop = asyncio.get_running_loop()
    async with AsyncConnectionPool(
        kwargs={**server.connection_arguments(), "autocommit": True},
        min_size=4,
        max_size=4,
        open=False,
    ) as pool:
        await pool.wait()

        async def send(i: int, scheduled: float) -> float:
            async with pool.connection() as connection:
                cursor = await connection.execute(text, [str(question(i)["question_embeddings"])])
                await cursor.fetchall()
            return loop.time() - scheduled

        for i in range(WARM_UP):
            await send(count + i, loop.time())
        latencies, sending = await open_loop(count, send)
    return _sample("direct", repetition, count, latencies, sending)


async def pipeline(
    repetition: int, bootstrap: str, server: LocalPostgres, table: str, count: int, work: Path
) -> Sample:
    inp, out = await new_topics(bootstrap, "b5", "in", "out")
    app = work / f"app-{inp}"
    app.mkdir(parents=True)
    (app / "pipeline.yaml").write_text(
        PIPELINE.format(inp=inp, out=out, query=QUERY.format(table=table))
    )
    (app / "configuration.yaml").write_text(configuration_yaml(server))
    plan = plan_application(load_application(app))
    if [e.id for e in plan.executors] != [EXECUTOR]:
        raise RuntimeError(f"B5: expected one executor {EXECUTOR!r}, got {plan.executors}")
    settings = KafkaSettings(bootstrap)
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[float]] = {}

    async def read(consumer: Consumer) -> None:
        while True:
            for item in await consumer.poll(timeout_ms=50):
                if isinstance(item, ConsumedRecord):
                    future = waiting.pop(str(item.record.key), None)
                    if future is not None and not future.done():
                        future.set_result(loop.time())

    async with (
        Producer(settings) as producer,
        Consumer(settings, [TopicSpec(out)], start_at="end") as consumer,
        running(worker_argv(app, EXECUTOR, bootstrap, work / "state")) as process,
    ):
        reader = asyncio.ensure_future(read(consumer))

        async def send(i: int, scheduled: float) -> float | None:
            key = f"q{repetition}-{i}"
            answered = waiting[key] = loop.create_future()
            await producer.send(inp, Record(question(i), key=key), source="/bench")
            try:
                arrived: float = await asyncio.wait_for(answered, WITHIN)
                return arrived - scheduled
            except TimeoutError:
                return None

        try:
            for i in range(WARM_UP):  # the worker starts, connects, answers: not timed
                if await send(count + i, loop.time()) is None and process.returncode is None:
                    raise TimeoutError(f"B5: the worker answered no warm-up question in {WITHIN}s")
            latencies, sending = await open_loop(count, send)
        finally:
            reader.cancel()
    return _sample("pipeline", repetition, count, latencies, sending)


def _sample(
    variant: str, repetition: int, count: int, latencies: list[float], sending: float
) -> Sample:
    ms = [1000 * x for x in latencies] or [float("nan")]
    return Sample(
        variant,
        repetition,
        count,
        len(latencies),
        sending,
        percentile(ms, 0.5),
        percentile(ms, 0.99),
        max(ms),
    )


async def run(bootstrap: str, *, seconds: float, repetitions: int) -> dict[str, object]:
    count = max(20, int(seconds * RATE))
    samples: list[Sample] = []
    async with local_postgres() as server:
        table = f"b5_{uuid.uuid4().hex[:8]}"
        await fill_table(server, table)
        with tempfile.TemporaryDirectory(prefix="sluice-b5-") as tmp:
            for repetition in range(repetitions):
                shift = repetition % len(VARIANTS)
                for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                    if variant == "pipeline":
                        sample = await pipeline(
                            repetition, bootstrap, server, table, count, Path(tmp)
                        )
                    else:
                        sample = await direct(repetition, server, table, count)
                    print(
                        f"  B5 {variant:8} #{repetition}: p50 {sample.p50_ms:6.1f} ms, p99 "
                        f"{sample.p99_ms:6.1f} ms, {sample.answered}/{sample.queries} answered",
                        flush=True,
                    )
                    samples.append(sample)
    p50 = {v: [s.p50_ms for s in samples if s.variant == v] for v in VARIANTS}
    p99 = {v: [s.p99_ms for s in samples if s.variant == v] for v in VARIANTS}
    answered = all(s.answered == s.queries for s in samples)
    # Open loop: the schedule is kept when sending took no longer than planned (+10%).
    on_schedule = all(s.seconds_sending <= 1.1 * (s.queries - 1) / RATE + 0.05 for s in samples)
    return {
        "id": "B5",
        "scenario": f"query-vector-db on the embedded PostgreSQL with pgvector in a worker, "
        f"{ROWS} rows of {DIMENSIONS}-dimension vectors, exact nearest 5 (no index), "
        f"{RATE:g} queries/s open loop: input topic -> agent -> output topic",
        "baseline": "the same query and vectors through psycopg from the benchmark process "
        "(a pool of 4 connections) at the same schedule",
        "rate_per_second": RATE,
        "queries": count,
        "rows": ROWS,
        "repetitions": repetitions,
        "p50_ms": {v: spread(p50[v]) for v in VARIANTS},
        "p99_ms": {v: spread(p99[v]) for v in VARIANTS},
        "ratio": statistics.median(p99["pipeline"]) / statistics.median(p99["direct"]),
        "added_p50_ms": statistics.median(p50["pipeline"]) - statistics.median(p50["direct"]),
        "target": f"p99 reported at {RATE:g} queries/s; every query answered on schedule",
        "met": answered and on_schedule,
        "samples": [asdict(s) for s in samples],
    }
