"""The datasource agents in real worker processes on the real broker and the real PostgreSQL:
``query`` answering from a table (a failing statement under ``dead-letter``, without the
password), ``vector-db-sink`` writing rows (redelivered after SIGKILL: no duplicate row, with
or without a unique index; killed in the middle of a batch: nothing lost), a database restart mid-stream (nothing lost, no duplicate row) and a
write to a missing table under the ``errors`` policy."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.kafka import Producer
from sluice.net import free_port
from sluice.postgres import LocalPostgres, LocalPostgresSettings
from sluice.record import Record
from tests.postgres import PASSWORD, passable_directory, table_name
from tests.workers.conftest import StartApp, StartWorker, prepare, read_all, send

pytestmark = pytest.mark.kafka

CONFIGURATION = """
configuration:
  resources:
    - type: "datasource"
      name: "JdbcDatasource"
      configuration:
        service: "jdbc"
        driverClass: "org.postgresql.Driver"
        url: "{url}"
        user: "postgres"
        password: "{password}"
"""


def configuration(server: LocalPostgres) -> str:
    return CONFIGURATION.format(url=server.jdbc_url, password=PASSWORD)


async def sql(server: LocalPostgres, statement: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(
        **server.connection_arguments(), autocommit=True
    ) as connection:
        cursor = await connection.execute(statement)
        return await cursor.fetchall() if cursor.description else []


async def wait_for(
    server: LocalPostgres, statement: str, expected: Any, within: float = 60
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    got = None
    while asyncio.get_running_loop().time() < deadline:
        got = await sql(server, statement)
        if got == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{statement}: {got!r}, expected {expected!r}")


QUERY = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: query
    input: {inp}
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration:
      datasource: "JdbcDatasource"
      query: "SELECT answer FROM {table} WHERE id = ? ORDER BY answer"
      fields: ["value.id"]
      output-field: "value.answers"
"""


async def test_query_in_a_worker(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
    postgres_server: LocalPostgres,
) -> None:
    table = table_name("answers")
    await sql(postgres_server, f"CREATE TABLE {table} (id int, answer text)")
    await sql(postgres_server, f"INSERT INTO {table} VALUES (1, 'a'), (1, 'b'), (2, 'c')")
    worker = await start_app(
        {
            "pipeline.yaml": QUERY.format(**topics, table=table),
            "configuration.yaml": configuration(postgres_server),
        }
    )
    for key, value in (("k1", {"id": 1}), ("bad", {"id": "not a number"}), ("k2", {"id": 2})):
        await send(producer, topics["inp"], Record(json.dumps(value), key=key, headers={"s": key}))
    got = await read_all(kafka_bootstrap, topics["out"], 2, settle=0.5)
    assert await worker.stop() == 0
    assert [(o.record.key, o.record.headers["s"]) for o in got] == [("k1", "k1"), ("k2", "k2")]
    assert json.loads(got[0].record.value) == {
        "id": 1,
        "answers": [{"answer": "a"}, {"answer": "b"}],
    }
    assert json.loads(got[1].record.value) == {"id": 2, "answers": [{"answer": "c"}]}
    [dead] = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 1)
    assert dead.record.key == "bad"
    headers = dead.record.headers
    assert headers["error-class"] == "workers.builtin.datasources.errors.DataSourceError"
    assert "invalid input syntax for type integer" in headers["error-message"]
    assert 'datasource "JdbcDatasource"' in headers["error-message"]
    assert PASSWORD not in json.dumps(dict(headers)) + "\n".join(worker.output)


SINK = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
pipeline:
  - id: write
    type: vector-db-sink
    input: {inp}
    errors: {{on-failure: {on_failure}}}
    configuration:
      datasource: "JdbcDatasource"
      table-name: "{table}"
      fields:
        - {{name: "filename", expression: "value.filename", primary-key: true}}
        - {{name: "chunk_id", expression: "value.chunk_id", primary-key: true}}
        - {{name: "text", expression: "value.text"}}
        - {{name: "embeddings_vector", expression: "fn:toListOfFloat(value.embeddings_vector)"}}
"""


def chunk(name: str, index: int) -> Record:
    value = {
        "filename": name,
        "chunk_id": str(index),
        "text": f"{name} chunk {index}",
        "embeddings_vector": [1.0, float(index), 0.5],
    }
    return Record(json.dumps(value), key=name)


@pytest.mark.parametrize("primary_key", [True, False], ids=["primary-key", "no-unique-index"])
async def test_vector_db_sink_redelivered_after_sigkill_writes_no_duplicate_row(
    app_factory: Any,
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fast_instance: Path,
    postgres_server: LocalPostgres,
    primary_key: bool,
) -> None:
    table = table_name("documents")
    key = ", PRIMARY KEY (filename, chunk_id)" if primary_key else ""
    await sql(
        postgres_server,
        f"CREATE TABLE {table} (filename text, chunk_id int, text text, "
        f"embeddings_vector vector(3){key})",
    )
    app_dir = app_factory(
        {
            "pipeline.yaml": SINK.replace("{table}", table).replace("{on_failure}", "fail"),
            "configuration.yaml": configuration(postgres_server),
        },
        **topics,
    )
    await prepare(app_dir, kafka_bootstrap)
    records = [chunk(f"doc{d}", i) for d in range(4) for i in range(5)]
    await send(producer, topics["inp"], *records[:10])
    killed = await start_worker(
        app_dir, "write", env={"SLUICE_FAULT_KILL_AFTER": "6"}, ready=False, instance=fast_instance
    )
    assert await killed.exited(within=60) == -9, "\n".join(killed.output)
    await send(producer, topics["inp"], *records[10:])
    await send(producer, topics["inp"], *records[:3])  # sent twice too
    final = await start_worker(app_dir, "write", instance=fast_instance)
    count = f"SELECT count(*), count(DISTINCT (filename, chunk_id)) FROM {table}"
    await wait_for(postgres_server, count, [(20, 20)])
    await asyncio.sleep(1)  # the rest of the redelivered records, if any
    assert await final.stop() == 0, "\n".join(final.output)
    assert await sql(postgres_server, count) == [(20, 20)]
    assert await sql(
        postgres_server,
        f"SELECT text, embeddings_vector::text FROM {table} WHERE filename = 'doc2' AND chunk_id = 3",
    ) == [("doc2 chunk 3", "[1,3,0.5]")]


async def test_vector_db_sink_errors_policy(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
    postgres_server: LocalPostgres,
) -> None:
    missing = table_name("missing")
    worker = await start_app(
        {
            "pipeline.yaml": SINK.format(**topics, table=missing, on_failure="dead-letter"),
            "configuration.yaml": configuration(postgres_server),
        },
        executor="write",
    )
    await send(producer, topics["inp"], chunk("doc", 0), chunk("doc", 1))
    dead = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 2)
    assert await worker.stop() == 0
    assert [json.loads(d.record.value)["chunk_id"] for d in dead] == ["0", "1"]
    message = dead[0].record.headers["error-message"]
    assert f'table "{missing}" does not exist' in message
    assert PASSWORD not in message + "\n".join(worker.output)


RESTARTED = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
pipeline:
  - id: write
    type: vector-db-sink
    input: {inp}
    errors: {{on-failure: fail, retries: 40}}
    configuration:
      datasource: "JdbcDatasource"
      table-name: "documents"
      fields:
        - {{name: "filename", expression: "value.filename", primary-key: true}}
        - {{name: "chunk_id", expression: "value.chunk_id", primary-key: true}}
        - {{name: "text", expression: "value.text"}}
        - {{name: "embeddings_vector", expression: "value.embeddings_vector"}}
"""


@pytest.fixture
def restartable_dir() -> Iterator[Path]:
    path = passable_directory()
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_vector_db_sink_across_a_database_restart(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    restartable_dir: Path,
) -> None:
    """PostgreSQL stops mid-stream and comes back: the records written meanwhile are retried
    (the errors policy) until it is back; every record ends as one row."""
    server = LocalPostgres(LocalPostgresSettings(data_dir=restartable_dir / "pg", port=free_port()))
    await server.start()
    try:
        await sql(
            server,
            "CREATE TABLE documents (filename text, chunk_id int, text text, "
            "embeddings_vector vector(3), PRIMARY KEY (filename, chunk_id))",
        )
        configuration = CONFIGURATION.format(url=server.jdbc_url, password="unused").replace(
            'password: "unused"', "connection-timeout-seconds: 2"
        )
        worker = await start_app(
            {
                "pipeline.yaml": RESTARTED.format(**topics),
                "configuration.yaml": configuration,
            },
            executor="write",
        )
        count = "SELECT count(*), count(DISTINCT (filename, chunk_id)) FROM documents"
        await send(producer, topics["inp"], *[chunk("before", i) for i in range(10)])
        await wait_for(server, count, [(10, 10)])
        await server.stop()
        await send(producer, topics["inp"], *[chunk("during", i) for i in range(10)])
        await asyncio.sleep(3)  # records fail and are retried meanwhile
        await server.start()
        await send(producer, topics["inp"], *[chunk("after", i) for i in range(5)])
        await wait_for(server, count, [(25, 25)], within=90)
        assert await worker.stop() == 0, "\n".join(worker.output)
    finally:
        await server.stop()


async def test_a_database_that_cannot_be_reached_stops_the_worker_at_start(
    start_app: StartApp, topics: dict[str, str]
) -> None:
    port = free_port()
    configuration = CONFIGURATION.format(
        url=f"jdbc:postgresql://127.0.0.1:{port}/db", password="never-shown-secret"
    ).replace('user: "postgres"', 'user: "postgres"\n        connection-timeout-seconds: 1')
    worker = await start_app(
        {"pipeline.yaml": QUERY.format(**topics, table="t"), "configuration.yaml": configuration},
        ready=False,
    )
    assert await worker.exited(within=60) != 0
    output = "\n".join(worker.output)
    assert (
        f'datasource "JdbcDatasource" (postgresql://127.0.0.1:{port}/db): cannot connect' in output
    )
    assert "never-shown-secret" not in output


BATCHED = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
pipeline:
  - id: write
    type: vector-db-sink
    input: {inp}
    errors: {{on-failure: fail}}
    configuration:
      datasource: "JdbcDatasource"
      table-name: "{table}"
      batch-size: 20
      flush-interval: 50
      fields:
        - {{name: "filename", expression: "value.filename", primary-key: true}}
        - {{name: "chunk_id", expression: "value.chunk_id", primary-key: true}}
        - {{name: "text", expression: "value.text"}}
        - {{name: "embeddings_vector", expression: "fn:toListOfFloat(value.embeddings_vector)"}}
"""

SLOW_ROWS = """
CREATE FUNCTION {table}_slow() RETURNS trigger AS $$
BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER {table}_slow BEFORE INSERT OR UPDATE ON {table}
FOR EACH ROW EXECUTE FUNCTION {table}_slow();
"""


@pytest.mark.parametrize("primary_key", [True, False], ids=["primary-key", "no-unique-index"])
async def test_vector_db_sink_killed_in_the_middle_of_a_batch(
    app_factory: Any,
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fast_instance: Path,
    postgres_server: LocalPostgres,
    primary_key: bool,
) -> None:
    """SIGKILL while a batch's transaction runs (each row made slow by a trigger): the batch is
    rolled back, its records are read again by the next worker, and every record ends as one
    row, with no row lost and none twice."""
    table = table_name("batched")
    key = ", PRIMARY KEY (filename, chunk_id)" if primary_key else ""
    await sql(
        postgres_server,
        f"CREATE TABLE {table} (filename text, chunk_id int, text text, "
        f"embeddings_vector vector(3){key})",
    )
    await sql(postgres_server, SLOW_ROWS.format(table=table))
    application = f"sink-{table}"
    app_dir = app_factory(
        {
            "pipeline.yaml": BATCHED.replace("{table}", table),
            "configuration.yaml": configuration(postgres_server)
            + f'        ApplicationName: "{application}"\n',
        },
        **topics,
    )
    await prepare(app_dir, kafka_bootstrap)
    records = [chunk(f"doc{d}", i) for d in range(10) for i in range(10)]
    await send(producer, topics["inp"], *records)
    killed = await start_worker(app_dir, "write", instance=fast_instance)
    count = f"SELECT count(*), count(DISTINCT (filename, chunk_id)) FROM {table}"
    in_a_batch = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
        f"'{application}' AND state = 'active'"
    )
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        [(written, _)] = await sql(postgres_server, count)
        [(active,)] = await sql(postgres_server, in_a_batch)
        if written >= 20 and active:
            break
        assert asyncio.get_running_loop().time() < deadline, "\n".join(killed.output)
        await asyncio.sleep(0.05)
    assert await killed.stop(signal.SIGKILL) == -9
    [(written, _)] = await sql(postgres_server, count)
    assert 20 <= written < 100 and written % 20 == 0, written  # whole batches only
    final = await start_worker(app_dir, "write", instance=fast_instance)
    await wait_for(postgres_server, count, [(100, 100)], within=90)
    await asyncio.sleep(1)  # the rest of the redelivered records, if any
    assert await final.stop() == 0, "\n".join(final.output)
    assert await sql(postgres_server, count) == [(100, 100)]
    assert await sql(
        postgres_server, f"SELECT text FROM {table} WHERE filename = 'doc7' AND chunk_id = 3"
    ) == [("doc7 chunk 3",)]
