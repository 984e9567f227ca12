"""``vector-db-sink`` on a jdbc datasource, on the real PostgreSQL: rows written by key (one row
after a record is written twice, with or without a unique index), vectors into pgvector columns,
a null value deleting, and the errors of configuration and writes; records written at once go in
batches (the last of a key wins, a bad row fails its record alone)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from sluice.postgres import LocalPostgres
from sluice.record import Record
from tests.postgres import PASSWORD, jdbc_resource, table_name
from workers.builtin.datasources import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.table_sink import LANES, TableSink
from workers.builtin.vector_sink import VectorDBSink

MakeSink = Callable[..., Awaitable[VectorDBSink]]

FIELDS = [
    {"name": "filename", "expression": "value.filename", "primary-key": True},
    {"name": "chunk_id", "expression": "value.chunk_id", "primary-key": True},
    {"name": "text", "expression": "value.text"},
    {"name": "num_tokens", "expression": "value.chunk_num_tokens"},
    {"name": "embeddings_vector", "expression": "fn:toListOfFloat(value.embeddings_vector)"},
]


async def sql(server: LocalPostgres, statement: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(
        **server.connection_arguments(), autocommit=True
    ) as connection:
        cursor = await connection.execute(statement)
        return await cursor.fetchall() if cursor.description else []


async def documents_table(server: LocalPostgres, *, primary_key: bool = True) -> str:
    table = table_name("documents")
    key = ", PRIMARY KEY (filename, chunk_id)" if primary_key else ""
    await sql(
        server,
        f"CREATE TABLE {table} (filename TEXT, chunk_id int, num_tokens int, text TEXT, "
        f"embeddings_vector vector(3){key})",
    )
    return table


@pytest.fixture
async def make_sink(postgres_server: LocalPostgres) -> AsyncIterator[MakeSink]:
    sinks: list[VectorDBSink] = []

    async def make(**config: Any) -> VectorDBSink:
        sink = VectorDBSink()
        await sink.init(
            {
                "datasource": "JdbcDatasource",
                "fields": FIELDS,
                **config,
                "resources": {"JdbcDatasource": jdbc_resource(postgres_server)},
                "resource-types": {"JdbcDatasource": "datasource"},
            }
        )
        await sink.start()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        await sink.close()


def chunk(chunk_id: str, text: str, vector: list[float]) -> Record:
    value = {
        "filename": "a.txt",
        "chunk_id": chunk_id,
        "text": text,
        "chunk_num_tokens": "3",
        "embeddings_vector": vector,
    }
    return Record(json.dumps(value), key="a.txt")


@pytest.mark.parametrize("primary_key", [True, False], ids=["on-conflict", "update-then-insert"])
async def test_rows_by_key(
    make_sink: MakeSink, postgres_server: LocalPostgres, primary_key: bool
) -> None:
    table = await documents_table(postgres_server, primary_key=primary_key)
    sink = await make_sink(**{"table-name": table})
    await sink.write(chunk("0", "first", [1, 0, 0]))
    await sink.write(chunk("1", "second", [0, 1, 0]))
    await sink.write(chunk("0", "first", [1, 0, 0]))  # a redelivery
    await sink.write(chunk("1", "second, changed", [0, 0.5, 0.5]))
    rows = await sql(
        postgres_server,
        f"SELECT filename, chunk_id, num_tokens, text, embeddings_vector::text FROM {table} "
        "ORDER BY chunk_id",
    )
    assert rows == [
        ("a.txt", 0, 3, "first", "[1,0,0]"),
        ("a.txt", 1, 3, "second, changed", "[0,0.5,0.5]"),
    ]
    await sink.write(Record(None, key="a.txt"))  # no value, no key fields: nothing matches
    deleted = Record(None, key=json.dumps({"filename": "a.txt", "chunk_id": 0}))
    keyed = await make_sink(
        **{"table-name": table},
        fields=[
            {"name": "filename", "expression": "key.filename", "primary-key": True},
            {"name": "chunk_id", "expression": "key.chunk_id", "primary-key": True},
        ],
    )
    await keyed.write(deleted)
    assert await sql(postgres_server, f"SELECT chunk_id FROM {table}") == [(1,)]


async def test_write_errors_fail_the_record(
    make_sink: MakeSink, postgres_server: LocalPostgres
) -> None:
    missing = await make_sink(**{"table-name": "no_such_table"})
    with pytest.raises(DataSourceError, match='table "no_such_table" does not exist') as caught:
        await missing.write(chunk("0", "x", [1, 0, 0]))
    assert PASSWORD not in str(caught.value)
    table = await documents_table(postgres_server)
    sink = await make_sink(**{"table-name": table})
    with pytest.raises(DataSourceError, match="expected 3 dimensions, not 2"):
        await sink.write(chunk("0", "x", [1, 0]))
    with pytest.raises(DataSourceError, match="invalid input syntax for type integer"):
        await sink.write(chunk("not a number", "x", [1, 0, 0]))
    await sink.write(chunk("0", "x", [1, 0, 0]))  # the pool is fine after errors
    assert await sql(postgres_server, f"SELECT count(*) FROM {table}") == [(1,)]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"table-name": None}, "table-name is required"),
        ({"table-name": "t; DROP TABLE x"}, "is not an SQL name"),
        (
            {"table-name": "t", "fields": [{"name": "a", "expression": "value.a"}]},
            "at least one field with primary-key: true",
        ),
        (
            {
                "table-name": "t",
                "fields": [{"name": "a b", "expression": "value.a", "primary-key": True}],
            },
            "column name 'a b' is not an SQL name",
        ),
    ],
)
async def test_configuration_errors(
    make_sink: MakeSink, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(DataSourceResourceError, match=message):
        await make_sink(**config)


async def test_records_written_together_in_batches_the_last_of_a_key_wins(
    make_sink: MakeSink, postgres_server: LocalPostgres
) -> None:
    """Records written at once (the worker lets ``records_in_flight`` in) share transactions of
    ``batch-size`` rows; rows are applied in the order they reached the sink, deletes too."""
    table = await documents_table(postgres_server)
    sink = await make_sink(**{"table-name": table, "batch-size": 10, "flush-interval": 50})
    assert sink.records_in_flight == 2 * 10 * LANES
    # Not bounded here: the pull executor keeps the window under half its 1,000 unfinished
    # records (test_embeddings_batching_worker runs a window of 1,200 through a real worker).
    large = await make_sink(**{"table-name": table, "batch-size": 1000})
    assert large.records_in_flight == 2 * 1000 * LANES
    records = [chunk(str(i % 7), f"text {i}", [1, 0, i]) for i in range(25)]
    await asyncio.gather(*(sink.write(record) for record in records))
    assert isinstance(sink.target, TableSink)
    # Each key takes one of two lanes: batches of 10, then a partial one after the interval.
    assert sum(lane.calls_made for lane in sink.target.lanes) in (3, 4)
    rows = await sql(postgres_server, f"SELECT chunk_id, text FROM {table} ORDER BY chunk_id")
    assert rows == [(i, f"text {max(n for n in range(25) if n % 7 == i)}") for i in range(7)]


async def test_upserts_and_deletes_of_a_batch_in_order(
    make_sink: MakeSink, postgres_server: LocalPostgres
) -> None:
    table = await documents_table(postgres_server)
    sink = await make_sink(
        **{"table-name": table, "batch-size": 10, "flush-interval": 50},
        fields=[
            {"name": "filename", "expression": "key.filename", "primary-key": True},
            {"name": "chunk_id", "expression": "key.chunk_id", "primary-key": True},
            {"name": "text", "expression": "value.text"},
        ],
    )

    def record(chunk_id: int, text: str | None) -> Record:
        key = json.dumps({"filename": "a.txt", "chunk_id": chunk_id})
        return Record(None if text is None else json.dumps({"text": text}), key=key)

    await asyncio.gather(
        *(
            sink.write(r)
            for r in (
                record(1, "one"),
                record(2, "two"),
                record(1, None),  # deleted
                record(2, None),
                record(2, "two again"),  # written again after its delete
                record(3, "three"),
            )
        )
    )
    assert isinstance(sink.target, TableSink)
    assert sum(lane.calls_made for lane in sink.target.lanes) <= LANES
    rows = await sql(postgres_server, f"SELECT chunk_id, text FROM {table} ORDER BY 1")
    assert rows == [(2, "two again"), (3, "three")]


@pytest.mark.parametrize("primary_key", [True, False], ids=["on-conflict", "update-then-insert"])
async def test_a_bad_row_fails_its_record_alone(
    make_sink: MakeSink, postgres_server: LocalPostgres, primary_key: bool
) -> None:
    """The batch is written again row by row: its neighbours are written."""
    table = await documents_table(postgres_server, primary_key=primary_key)
    sink = await make_sink(**{"table-name": table, "batch-size": 5, "flush-interval": 50})
    records = [chunk(str(i), f"t{i}", [1, 0, 0]) for i in range(5)]
    records[2] = chunk("2", "wrong dimension", [1, 0])
    outcomes = await asyncio.gather(
        *(sink.write(record) for record in records), return_exceptions=True
    )
    assert [type(o).__name__ for o in outcomes] == [
        "NoneType",
        "NoneType",
        "DataSourceError",
        "NoneType",
        "NoneType",
    ]
    assert "expected 3 dimensions, not 2" in str(outcomes[2])
    rows = await sql(postgres_server, f"SELECT chunk_id FROM {table} ORDER BY 1")
    assert rows == [(0,), (1,), (3,), (4,)]


async def test_a_batch_on_a_missing_table_fails_every_record(make_sink: MakeSink) -> None:
    sink = await make_sink(**{"table-name": "no_such_table", "batch-size": 3})
    outcomes = await asyncio.gather(
        *(sink.write(chunk(str(i), "x", [1, 0, 0])) for i in range(3)), return_exceptions=True
    )
    assert all(
        isinstance(o, DataSourceError) and 'table "no_such_table" does not exist' in str(o)
        for o in outcomes
    )
