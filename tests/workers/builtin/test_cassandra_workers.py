"""The datasource agents on a ``cassandra`` datasource in real worker processes, on the real
broker and a real Cassandra 5: ``query-vector-db`` answering with an ANN search (a failing
statement under ``dead-letter``, without the password), and ``vector-db-sink`` with LangStream's
``mapping`` redelivered after SIGKILL (one row per key) and across a restart of the database
(nothing lost)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.cassandra.server import (
    PASSWORD,
    LocalCassandra,
    cassandra_resource,
    keyspace_name,
)
from tests.workers.conftest import StartApp, StartWorker, prepare, read_all, send
from workers.builtin.datasources.cassandra import CassandraDataSource, cassandra_settings

pytestmark = pytest.mark.kafka

CONFIGURATION = """
configuration:
  resources:
    - type: "vector-database"
      name: "CassandraDatasource"
      configuration:
        service: "cassandra"
        contact-points: "{host}"
        port: {port}
        loadBalancing-localDc: "datacenter1"
        username: "sluice"
        password: "{password}"
"""


def configuration(node: LocalCassandra) -> str:
    return CONFIGURATION.format(host=node.host, port=node.port, password=PASSWORD)


async def cql(node: LocalCassandra, *statements: str) -> list[dict[str, Any]]:
    source = CassandraDataSource("admin", cassandra_settings("admin", cassandra_resource(node)))
    await source.start()
    try:
        rows: list[dict[str, Any]] = []
        for statement in statements:
            rows = await source.run(statement, [])
        return rows
    finally:
        await source.close()


async def documents_table(node: LocalCassandra) -> str:
    keyspace = keyspace_name()
    await cql(
        node,
        f"CREATE KEYSPACE {keyspace} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        f"CREATE TABLE {keyspace}.documents (filename text, chunk_id int, text text, "
        "embeddings_vector vector<float, 3>, PRIMARY KEY (filename, chunk_id))",
        f"CREATE CUSTOM INDEX ON {keyspace}.documents (embeddings_vector) USING "
        "'StorageAttachedIndex' WITH OPTIONS = {'similarity_function': 'COSINE'}",
    )
    return keyspace


QUERY = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: query-vector-db
    input: {inp}
    output: {out}
    errors: {{on-failure: dead-letter}}
    configuration:
      datasource: "CassandraDatasource"
      query: "SELECT text, chunk_id FROM {keyspace}.documents ORDER BY embeddings_vector ANN OF ? LIMIT 2"
      fields: ["value.embeddings"]
      output-field: "value.related_documents"
"""


async def test_query_vector_db_in_a_worker(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
    cassandra_server: LocalCassandra,
) -> None:
    keyspace = await documents_table(cassandra_server)
    vectors: list[list[float]] = [[1, 0, 0], [0, 1, 0], [0.9, 0.2, 0]]
    for index, vector in enumerate(vectors):
        await CassandraWorkersTable(cassandra_server, keyspace).insert(index, vector)
    worker = await start_app(
        {
            "pipeline.yaml": QUERY.format(**topics, keyspace=keyspace),
            "configuration.yaml": configuration(cassandra_server),
        }
    )
    for key, value in (
        ("k1", {"embeddings": [1, 0, 0]}),
        ("bad", {"embeddings": [1, 0]}),  # a vector of the wrong size
        ("k2", {"embeddings": [0, 1, 0]}),
    ):
        await send(producer, topics["inp"], Record(json.dumps(value), key=key))
    got = await read_all(kafka_bootstrap, topics["out"], 2, settle=0.5)
    assert await worker.stop() == 0
    assert [o.record.key for o in got] == ["k1", "k2"]
    assert json.loads(got[0].record.value)["related_documents"] == [
        {"text": "t0", "chunk_id": 0},
        {"text": "t2", "chunk_id": 2},
    ]
    assert json.loads(got[1].record.value)["related_documents"][0] == {"text": "t1", "chunk_id": 1}
    [dead] = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 1)
    assert dead.record.key == "bad"
    headers = dead.record.headers
    assert headers["error-class"] == "workers.builtin.datasources.errors.DataSourceError"
    assert 'datasource "CassandraDatasource"' in headers["error-message"]
    assert PASSWORD not in json.dumps(dict(headers)) + "\n".join(worker.output)


class CassandraWorkersTable:
    """Rows of a test's documents table."""

    def __init__(self, node: LocalCassandra, keyspace: str) -> None:
        self.node = node
        self.keyspace = keyspace

    async def insert(self, index: int, vector: list[float]) -> None:
        source = CassandraDataSource("a", cassandra_settings("a", cassandra_resource(self.node)))
        await source.start()
        try:
            await source.execute(
                f"INSERT INTO {self.keyspace}.documents (filename, chunk_id, text, "
                "embeddings_vector) VALUES (?, ?, ?, ?)",
                ["doc", index, f"t{index}", vector],
            )
        finally:
            await source.close()


SINK = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
pipeline:
  - id: write
    type: vector-db-sink
    input: {inp}
    errors: {{on-failure: fail}}
    configuration:
      datasource: "CassandraDatasource"
      table-name: "documents"
      keyspace: "{keyspace}"
      mapping: "filename=value.filename, chunk_id=value.chunk_id, text=value.text, embeddings_vector=value.embeddings_vector"
"""


def chunk(name: str, index: int) -> Record:
    value = {
        "filename": name,
        "chunk_id": index,
        "text": f"{name} chunk {index}",
        "embeddings_vector": [1, index, 0.5],
    }
    return Record(json.dumps(value), key=name)


async def test_vector_db_sink_redelivered_after_sigkill_writes_no_duplicate_row(
    app_factory: Any,
    topics: dict[str, str],
    start_worker: StartWorker,
    producer: Producer,
    kafka_bootstrap: str,
    fast_instance: Path,
    cassandra_server: LocalCassandra,
) -> None:
    keyspace = await documents_table(cassandra_server)
    app_dir = app_factory(
        {
            "pipeline.yaml": SINK.replace("{keyspace}", keyspace),
            "configuration.yaml": configuration(cassandra_server)
            .replace("{", "{{")
            .replace("}", "}}"),
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
    count = f"SELECT filename, chunk_id FROM {keyspace}.documents"
    deadline = asyncio.get_running_loop().time() + 60
    rows: list[dict[str, Any]] = []
    while asyncio.get_running_loop().time() < deadline:
        rows = await cql(cassandra_server, count)
        if len(rows) == 20:
            break
        await asyncio.sleep(0.3)
    await asyncio.sleep(1)  # the rest of the redelivered records, if any
    assert await final.stop() == 0, "\n".join(final.output)
    rows = await cql(cassandra_server, count)
    assert len(rows) == 20 == len({(r["filename"], r["chunk_id"]) for r in rows})
    [row] = await cql(
        cassandra_server,
        f"SELECT text, embeddings_vector FROM {keyspace}.documents "
        "WHERE filename = 'doc2' AND chunk_id = 3",
    )
    assert row == {"text": "doc2 chunk 3", "embeddings_vector": [1.0, 3.0, 0.5]}
    assert PASSWORD not in "\n".join(killed.output + final.output)


RESTARTED = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
pipeline:
  - id: write
    type: vector-db-sink
    input: {inp}
    errors: {{on-failure: fail, retries: 40}}
    configuration:
      datasource: "CassandraDatasource"
      table-name: "documents"
      keyspace: "{keyspace}"
      mapping: "filename=value.filename, chunk_id=value.chunk_id, text=value.text, embeddings_vector=value.embeddings_vector"
"""


async def test_vector_db_sink_across_a_database_restart(
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    cassandra_server: LocalCassandra,
) -> None:
    """Cassandra stops mid-stream and comes back on the same port: the records written meanwhile
    fail and are retried (the errors policy) while the driver reconnects; every record ends as
    one row."""
    keyspace = await documents_table(cassandra_server)
    worker = await start_app(
        {
            "pipeline.yaml": RESTARTED.format(**topics, keyspace=keyspace),
            "configuration.yaml": configuration(cassandra_server),
        },
        executor="write",
    )
    query = f"SELECT filename, chunk_id FROM {keyspace}.documents"

    async def rows(expected: int, within: float = 90) -> set[tuple[str, int]]:
        deadline = asyncio.get_running_loop().time() + within
        got: list[dict[str, Any]] = []
        while asyncio.get_running_loop().time() < deadline:
            got = await cql(cassandra_server, query)
            if len(got) >= expected:
                break
            await asyncio.sleep(0.3)
        return {(r["filename"], r["chunk_id"]) for r in got}

    await send(producer, topics["inp"], *[chunk("before", i) for i in range(10)])
    assert len(await rows(10)) == 10
    await cassandra_server.stop()
    await send(producer, topics["inp"], *[chunk("during", i) for i in range(10)])
    await asyncio.sleep(2)  # records fail and are retried meanwhile
    await cassandra_server.start()
    await send(producer, topics["inp"], *[chunk("after", i) for i in range(5)])
    written = await rows(25)
    assert await worker.stop() == 0, "\n".join(worker.output)
    assert written == {(name, i) for name in ("before", "during") for i in range(10)} | {
        ("after", i) for i in range(5)
    }
    assert len(await cql(cassandra_server, query)) == 25
    retried = [line for line in worker.output if "DataSourceError" in line and "retry" in line]
    assert retried, "no write failed while the node was down"
    assert 'datasource "CassandraDatasource"' in retried[0]
    assert PASSWORD not in "\n".join(worker.output)
