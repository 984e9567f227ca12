"""``query-vector-db`` and ``vector-db-sink`` on an ``astra-vector-db`` datasource, against a
local server speaking Astra DB's Data API (tests/fakes/astra_server.py): LangStream's query
object as a ``find`` command, the rows, execute actions, documents inserted then replaced by id,
deletes, command errors and a refused token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from sluice.record import Record
from tests.fakes.astra_server import FakeAstra
from tests.fakes.json_server import Fault
from workers.builtin.datasources import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.astra_vector import document_of, find_command
from workers.builtin.query import QueryVectorDB
from workers.builtin.vector_sink import VectorDBSink

TOKEN = "AstraCS:secret-token-1234"
FIELDS = [
    {"name": "id", "expression": "key"},
    {"name": "vector", "expression": "value.embeddings"},
    {"name": "text", "expression": "value.text"},
]
QUERY = '{"collection-name": "docs", "vector": ?, "limit": 2, "select": ["text"]}'


@pytest.fixture
def astra() -> Iterator[FakeAstra]:
    with FakeAstra(token=TOKEN) as fake:
        fake.create("docs", dimension=3)
        yield fake


def agent(fake: FakeAstra, token: str = TOKEN, /, **config: Any) -> dict[str, Any]:
    resource = {"service": "astra-vector-db", "token": token, "endpoint": fake.url}
    return {
        "datasource": "Astra",
        "resources": {"Astra": resource},
        "resource-types": {"Astra": "vector-database"},
        **config,
    }


Make = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make(astra: FakeAstra) -> AsyncIterator[Make]:
    made: list[Any] = []

    async def make(kind: str, /, **config: Any) -> Any:
        step = QueryVectorDB() if kind == "query" else VectorDBSink()
        await step.init(agent(astra, **config))
        made.append(step)
        await step.start()
        return step

    yield make
    for step in made:
        await step.close()


def record(key: str | None, **value: Any) -> Record:
    return Record(json.dumps(value), key=key)


async def test_inserted_then_replaced_by_id_and_found_by_vector(
    astra: FakeAstra, make: Make
) -> None:
    sink = await make("sink", fields=FIELDS, **{"collection-name": "docs"})
    await sink.write(record("a", text="first", embeddings=[1, 0, 0]))
    await sink.write(record("b", text="second", embeddings=[0, 1, 0]))
    await sink.write(record("a", text="first again", embeddings=[1, 0.1, 0]))
    assert astra.documents("docs") == {
        "a": {"_id": "a", "$vector": [1.0, 0.1, 0.0], "text": "first again"},
        "b": {"_id": "b", "$vector": [0.0, 1.0, 0.0], "text": "second"},
    }
    commands = [next(iter(r.body)) for r in astra.requests if r.path.endswith("/docs")]
    assert commands == ["insertOne", "insertOne", "insertOne", "findOneAndReplace"]
    assert astra.requests[-1].headers["token"] == TOKEN

    step = await make("query", query=QUERY, fields=["value.q"], **{"output-field": "value.hits"})
    [out] = await step.process(record("q", q=[0.1, 1, 0]))
    hits = json.loads(out.value)["hits"]
    assert [(h["id"], h["text"]) for h in hits] == [("b", "second"), ("a", "first again")]
    assert hits[0]["similarity"] > hits[1]["similarity"]
    assert astra.requests[-1].body == {
        "find": {
            "sort": {"$vector": [0.1, 1.0, 0.0]},
            "projection": {"text": 1},
            "options": {"includeSimilarity": True, "limit": 2},
        }
    }
    step = await make(
        "query",
        query='{"collection-name": "docs", "filter": {"text": ?}}',
        fields=["value.t"],
        **{"output-field": "value.hit", "only-first": True},
    )
    [out] = await step.process(record("q", t="second"))
    assert json.loads(out.value)["hit"] == {"text": "second", "id": "b"}


async def test_execute_actions(astra: FakeAstra, make: Make) -> None:
    insert = await make(
        "query",
        query='{"collection-name": "docs", "action": "insertOne", "document": {"id": ?, "vector": ?, "text": ?}}',
        fields=["value.id", "value.v", "value.text"],
        mode="execute",
        **{"output-field": "value.result"},
    )
    [out] = await insert.process(record("k", id="x", v=[1, 0, 0], text="hello"))
    assert json.loads(out.value)["result"] == {"id": "x"}
    update = await make(
        "query",
        query='{"collection-name": "docs", "filter": {"_id": ?}, "update": {"$set": {"text": ?}}}',
        fields=["value.id", "value.text"],
        mode="execute",
        **{"output-field": "value.result"},
    )
    [out] = await update.process(record("k", id="x", text="changed"))
    assert json.loads(out.value)["result"] == {"count": 1}
    assert astra.documents("docs")["x"]["text"] == "changed"
    delete = await make(
        "query",
        query='{"collection-name": "docs", "action": "deleteMany", "filter": {"text": ?}}',
        fields=["value.text"],
        mode="execute",
        **{"output-field": "value.result"},
    )
    [out] = await delete.process(record("k", text="changed"))
    assert json.loads(out.value)["result"] == {"count": 1}
    assert astra.documents("docs") == {}


async def test_deletes_errors_and_refused_token(astra: FakeAstra, make: Make) -> None:
    sink = await make("sink", fields=FIELDS, **{"collection-name": "docs"})
    await sink.write(record("a", text="t", embeddings=[1, 0, 0]))
    await sink.write(Record(None, key="a"))
    assert astra.documents("docs") == {}
    with pytest.raises(
        DataSourceError, match='insertOne on collection "docs" failed: VECTOR_SIZE_MISMATCH'
    ):
        await sink.write(record("a", text="t", embeddings=[1, 0]))
    other = await make("sink", fields=FIELDS, **{"collection-name": "nothere"})
    with pytest.raises(DataSourceError, match="COLLECTION_NOT_EXIST"):
        await other.write(record("a", text="t", embeddings=[1, 0, 0]))
    with pytest.raises(DataSourceResourceError, match="collection-name is required"):
        await VectorDBSink().init(agent(astra, fields=FIELDS))
    astra.faults.extend([Fault(429, retry_after="0"), Fault(500)])
    await sink.write(record("c", text="t", embeddings=[1, 0, 0]))
    assert list(astra.documents("docs")) == ["c"]

    step = QueryVectorDB()
    await step.init(agent(astra, "AstraCS:wrong-999", query=QUERY, **{"output-field": "value.x"}))
    with pytest.raises(DataSourceResourceError) as caught:
        await step.start()
    await step.close()
    message = str(caught.value)
    assert message.startswith(
        f'datasource "Astra" (astra data API, keyspace "default_keyspace" at {astra.url})'
    )
    assert "refused the credentials" in message and "HTTP 401" in message
    assert "wrong-999" not in message and TOKEN not in message


def test_mappings() -> None:
    assert document_of({"id": 7, "vector": ["1", 2], "data": {"a": 1}, "b": None, "c": "x"}) == {
        "_id": "7",
        "$vector": [1.0, 2.0],
        "a": 1,
        "c": "x",
    }
    assert find_command({"collection-name": "c", "include-similarity": False, "vector": [1]}) == (
        "c",
        {"sort": {"$vector": [1.0]}},
    )
    assert find_command({"collection-name": "c", "filter": {"a": 1}}) == ("c", {"filter": {"a": 1}})
