"""``query`` and ``query-vector-db`` on the real PostgreSQL: LangStream's result shapes
(QueryStepTest: rows, only-first, loop-over concatenating, execute with generated keys),
vector search, and the errors of configuration and statements."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from sluice.application.builtin_config import problems_of
from sluice.postgres import LocalPostgres
from sluice.record import Record
from tests.postgres import PASSWORD, jdbc_resource, table_name
from workers.builtin.datasources import DataSourceError, DataSourceResourceError
from workers.builtin.query import Query, QueryVectorDB

MakeQuery = Callable[..., Awaitable[Query]]


@pytest.fixture
async def documents(postgres_server: LocalPostgres) -> str:
    """A table of documents with 3-dimension vectors."""
    table = table_name("docs")
    async with await psycopg.AsyncConnection.connect(
        **postgres_server.connection_arguments(), autocommit=True
    ) as connection:
        await connection.execute(
            f"CREATE TABLE {table} (id int PRIMARY KEY, topic text, text text, embedding vector(3))"
        )
        await connection.execute(
            f"INSERT INTO {table} VALUES (1, 'a', 'one', '[1,0,0]'), (2, 'a', 'two', '[0,1,0]'),"
            " (3, 'b', 'three', '[0.9,0.1,0]')"
        )
    return table


@pytest.fixture
async def make_query(postgres_server: LocalPostgres) -> AsyncIterator[MakeQuery]:
    agents: list[Query] = []

    async def make(
        kind: type[Query] = Query, resource_type: str = "datasource", **config: Any
    ) -> Query:
        agent = kind()
        await agent.init(
            {
                "datasource": "JdbcDatasource",
                **config,
                "resources": {"JdbcDatasource": jdbc_resource(postgres_server)},
                "resource-types": {"JdbcDatasource": resource_type},
            }
        )
        await agent.start()
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        await agent.close()


async def run(agent: Query, value: Any, **headers: str) -> Any:
    [out] = await agent.process(Record(json.dumps(value), key="k", headers=headers))
    assert out.key == "k"
    return json.loads(out.value)


async def test_rows_into_the_output_field(make_query: MakeQuery, documents: str) -> None:
    agent = await make_query(
        query=f"SELECT id, text FROM {documents} WHERE topic = ? ORDER BY id",
        fields=["value.topic"],
        **{"output-field": "value.rows"},
    )
    assert await run(agent, {"topic": "a"}) == {
        "topic": "a",
        "rows": [{"id": 1, "text": "one"}, {"id": 2, "text": "two"}],
    }
    assert await run(agent, {"topic": "z"}) == {"topic": "z", "rows": []}


async def test_only_first_and_properties(make_query: MakeQuery, documents: str) -> None:
    agent = await make_query(
        query=f"SELECT text FROM {documents} WHERE topic = ? ORDER BY id",
        fields=["properties.topic"],
        **{"output-field": "value.first", "only-first": True},
    )
    assert (await run(agent, {}, topic="b"))["first"] == {"text": "three"}
    assert (await run(agent, {}, topic="none"))["first"] == {}


async def test_loop_over_concatenates_the_rows(make_query: MakeQuery, documents: str) -> None:
    agent = await make_query(
        query=f"SELECT text FROM {documents} WHERE topic = ? ORDER BY id",
        fields=["record.topic"],
        **{"loop-over": "value.items", "output-field": "value.found"},
    )
    value = await run(agent, {"items": [{"topic": "a"}, {"topic": "b"}]})
    assert value["found"] == [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    assert (await run(agent, {"other": 1}))["found"] == []


async def test_vector_search(make_query: MakeQuery, documents: str) -> None:
    agent = await make_query(
        QueryVectorDB,
        query=f"SELECT text, 1 - (embedding <=> ?::vector) AS similarity FROM {documents} "
        "ORDER BY embedding <=> ?::vector LIMIT 2",
        fields=["value.embeddings", "value.embeddings"],
        **{"output-field": "value.related_documents"},
    )
    related = (await run(agent, {"embeddings": [1, 0, 0]}))["related_documents"]
    assert [d["text"] for d in related] == ["one", "three"]
    assert related[0]["similarity"] == pytest.approx(1.0)
    assert 0.9 < related[1]["similarity"] < 1.0


async def test_execute_with_generated_keys(
    make_query: MakeQuery, postgres_server: LocalPostgres
) -> None:
    table = table_name("history")
    creator = await make_query(
        query=f"CREATE TABLE {table} (id serial PRIMARY KEY, session text, question text)",
        mode="execute",
        **{"output-field": "value.created"},
    )
    assert (await run(creator, {}))["created"] == {"count": 0}
    insert = await make_query(
        query=f"INSERT INTO {table} (session, question) VALUES (?, ?)",
        fields=["properties.session", "value.question"],
        mode="execute",
        **{"output-field": "value.command_result", "generated-keys": ["id"]},
    )
    first = await run(insert, {"question": "q1"}, session="s")
    assert first["command_result"] == {"count": 1, "generatedKeys": {"id": 1}}
    looped = await make_query(
        query=f"DELETE FROM {table} WHERE question = ?",
        fields=["record.q"],
        mode="execute",
        **{"loop-over": "value.items", "output-field": "value.deleted"},
    )
    assert (await run(looped, {"items": [{"q": "q1"}, {"q": "none"}]}))["deleted"] == [
        {"count": 1},
        {"count": 0},
    ]


async def test_when_false_passes_the_record_unchanged(
    make_query: MakeQuery, documents: str
) -> None:
    agent = await make_query(
        query=f"SELECT * FROM {documents}",
        when="value.go == true",
        **{"output-field": "value.rows"},
    )
    assert await run(agent, {"go": False}) == {"go": False}


async def test_a_failing_statement_fails_the_record(make_query: MakeQuery) -> None:
    agent = await make_query(
        query="SELECT * FROM missing_table WHERE a = ?",
        fields=["value.a"],
        **{"output-field": "value.rows"},
    )
    with pytest.raises(DataSourceError, match='"missing_table" does not exist') as caught:
        await run(agent, {"a": 1})
    assert PASSWORD not in str(caught.value)


async def test_init_errors(make_query: MakeQuery) -> None:
    with pytest.raises(DataSourceError, match=r"2 \? parameters and fields gives 1 expression"):
        await make_query(query="SELECT ?, ?", fields=["value.a"], **{"output-field": "value.x"})
    with pytest.raises(DataSourceResourceError, match="is a vector-database, not a datasource"):
        await make_query(
            resource_type="vector-database", query="SELECT 1", **{"output-field": "value.x"}
        )
    agent = await make_query(
        QueryVectorDB,
        resource_type="vector-database",
        query="SELECT 1 AS one",
        **{"output-field": "value.x"},
    )
    assert (await run(agent, {}))["x"] == [{"one": 1}]


def test_configuration_problems() -> None:
    problems = problems_of(
        "query",
        {
            "datasource": "d",
            "query": "SELECT ?, ?",
            "fields": ["question", "value.q +"],
            "output-field": "answer",
        },
    )
    messages = {".".join(map(str, path)): message for path, message, _ in problems}
    assert "invalid field 'question'" in messages["fields.0"]
    assert "fields.1" in messages
    assert "invalid field name 'answer'" in messages["output-field"]
    looped = problems_of(
        "query",
        {
            "datasource": "d",
            "query": "SELECT ?",
            "fields": ["value.q"],
            "loop-over": "value.items",
            "output-field": "value.x",
        },
    )
    assert "record.<name>" in looped[0][1]
    assert problems_of("query", {"datasource": "d", "query": "x"})[0][1] == "is required by query"
