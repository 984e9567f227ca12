"""The jdbc datasource on the real PostgreSQL: rows as JSON values, vector search, statements
with their counts and generated keys, clear errors without the password, a restart survived."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.net import free_port
from sluice.postgres import LocalPostgres, LocalPostgresSettings
from tests.postgres import PASSWORD, passable_directory, table_name
from workers.builtin.datasources import (
    DataSourceError,
    DataSourceResourceError,
    PostgresDataSource,
    open_datasource,
)


def resource(server: LocalPostgres, **extra: Any) -> dict[str, Any]:
    return {
        "service": "jdbc",
        "driverClass": "org.postgresql.Driver",
        "url": server.jdbc_url,
        "user": "postgres",
        "password": PASSWORD,
        **extra,
    }


def config(server: LocalPostgres, **extra: Any) -> dict[str, Any]:
    return {
        "datasource": "db",
        "resources": {"db": resource(server, **extra)},
        "resource-types": {"db": "datasource"},
    }


@pytest.fixture
async def datasource(postgres_server: LocalPostgres) -> AsyncIterator[PostgresDataSource]:
    source = open_datasource("query", config(postgres_server))
    await source.start()
    yield source
    await source.close()


async def test_rows_as_json_values(datasource: PostgresDataSource) -> None:
    table = table_name()
    await datasource.execute(
        f"CREATE TABLE {table} (id int PRIMARY KEY, price numeric, seen timestamptz, "
        "ident uuid, data jsonb, raw bytea, tags text[], v vector(3))",
        [],
    )
    result = await datasource.execute(
        f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            1,
            "2.50",
            "2026-01-02T03:04:05Z",
            "00000000-0000-0000-0000-000000000001",
            {"a": [1, 2]},
            None,
            ["x", "y"],
            [1, 0, 0.5],
        ],
    )
    assert result == {"count": 1}
    rows = await datasource.fetch(f"SELECT * FROM {table} WHERE id = ?", ["1"])
    assert rows == [
        {
            "id": 1,
            "price": 2.5,
            "seen": "2026-01-02T03:04:05+00:00",
            "ident": "00000000-0000-0000-0000-000000000001",
            "data": {"a": [1, 2]},
            "raw": None,
            "tags": ["x", "y"],
            "v": [1.0, 0.0, 0.5],
        }
    ]


async def test_vector_similarity(datasource: PostgresDataSource) -> None:
    table = table_name()
    await datasource.execute(f"CREATE TABLE {table} (name text, embedding vector(3))", [])
    for name, vector in [("x", [1, 0, 0]), ("y", [0, 1, 0]), ("near-x", [0.9, 0.2, 0])]:
        await datasource.execute(f"INSERT INTO {table} VALUES (?, ?)", [name, vector])
    rows = await datasource.fetch(
        f"SELECT name, 1 - (embedding <=> ?::vector) AS similarity FROM {table} "
        "ORDER BY embedding <=> ?::vector LIMIT 2",
        [[1, 0, 0], [1, 0, 0]],
    )
    assert [row["name"] for row in rows] == ["x", "near-x"]
    assert rows[0]["similarity"] == pytest.approx(1.0)


async def test_execute_counts_and_generated_keys(datasource: PostgresDataSource) -> None:
    table = table_name()
    await datasource.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, q text)", [])
    first = await datasource.execute(f"INSERT INTO {table} (q) VALUES (?)", ["a"], ["id"])
    assert first == {"count": 1, "generatedKeys": {"id": 1}}
    both = await datasource.execute(
        f"INSERT INTO {table} (q) VALUES (?), (?);", ["b", "c"], ["id", "q"]
    )
    assert both == {"count": 2, "generatedKeys": {"id": 3, "q": "c"}}  # the last row's
    assert await datasource.execute(f"DELETE FROM {table} WHERE id > ?", [1]) == {"count": 2}
    assert await datasource.fetch(f"UPDATE {table} SET q = ? WHERE id = 1", ["z"]) == []


async def test_statement_errors_name_the_datasource(datasource: PostgresDataSource) -> None:
    with pytest.raises(DataSourceError, match=r'datasource "db" \(postgresql://.*"nope" does not'):
        await datasource.fetch("SELECT * FROM nope WHERE a = ?", [1])
    with pytest.raises(DataSourceError, match=r"has 2 \? parameters and 1 value were given"):
        await datasource.fetch("SELECT ?, ?", [1])
    with pytest.raises(DataSourceError, match="syntax error") as caught:
        await datasource.execute("SELEC 1", [])
    assert PASSWORD not in str(caught.value)


async def test_a_wrong_password_stops_the_start(postgres_server: LocalPostgres) -> None:
    source = open_datasource(
        "query",
        config(postgres_server, password="wrong-secret", **{"connection-timeout-seconds": 1}),
    )
    with pytest.raises(DataSourceResourceError, match="password authentication failed") as caught:
        await source.start()
    assert "wrong-secret" not in str(caught.value)


async def test_no_database_there() -> None:
    port = free_port()
    source = open_datasource(
        "query",
        {
            "datasource": "db",
            "resources": {
                "db": {
                    "service": "jdbc",
                    "url": f"jdbc:postgresql://127.0.0.1:{port}/x",
                    "password": "s3cret-value",
                    "connection-timeout-seconds": 1,
                }
            },
        },
    )
    with pytest.raises(
        DataSourceResourceError, match=f"cannot connect within 1 s.*{port}"
    ) as caught:
        await source.start()
    assert "s3cret-value" not in str(caught.value)


def test_resources_that_are_not_jdbc_datasources() -> None:
    base = {"resources": {"ai": {"access-key": "k"}, "pc": {"service": "pinecone"}}}
    with pytest.raises(DataSourceResourceError, match=r'datasource "x" is not a resource.*ai, pc'):
        open_datasource("query", {**base, "datasource": "x"})
    with pytest.raises(
        DataSourceResourceError, match="is a open-ai-configuration, not a datasource"
    ):
        open_datasource(
            "query", {**base, "datasource": "ai", "resource-types": {"ai": "open-ai-configuration"}}
        )
    with pytest.raises(DataSourceResourceError, match=r"service 'pinecone'.*not support yet"):
        open_datasource("query", {**base, "datasource": "pc"})


@pytest.fixture
def restartable() -> Iterator[Path]:
    path = passable_directory()
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_statements_work_again_after_the_database_restarts(restartable: Path) -> None:
    settings = LocalPostgresSettings(data_dir=restartable / "pg", port=free_port())
    server = LocalPostgres(settings)
    await server.start()
    source = open_datasource(
        "query",
        {
            "datasource": "db",
            "resources": {
                "db": {
                    "service": "jdbc",
                    "url": server.jdbc_url,
                    "user": "postgres",
                    "connection-timeout-seconds": 6,
                }
            },
        },
    )
    try:
        await source.start()
        await source.execute("CREATE TABLE kept (n int)", [])
        await source.execute("INSERT INTO kept VALUES (?)", [1])
        await server.stop()
        with pytest.raises(DataSourceError):
            await source.fetch("SELECT n FROM kept", [])
        restart = asyncio.create_task(server.start())
        # Waits for a connection while the server comes back.
        assert await source.fetch("SELECT n FROM kept", []) == [{"n": 1}]
        await restart
    finally:
        await source.close()
        await server.stop()
