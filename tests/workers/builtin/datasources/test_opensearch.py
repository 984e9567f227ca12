"""``query-vector-db`` and ``vector-db-sink`` on an ``opensearch`` datasource, against a local
server speaking OpenSearch's REST API (tests/fakes/opensearch_server.py): the ``_search`` body
as LangStream passes it, the rows, documents indexed by id, deletes, bulk parameters, refused
credentials and the resource's keys."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from sluice.record import Record
from tests.fakes.json_server import Fault
from tests.fakes.opensearch_server import FakeOpenSearch
from workers.builtin.datasources import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.opensearch import opensearch_settings
from workers.builtin.query import QueryVectorDB
from workers.builtin.vector_sink import VectorDBSink

PASSWORD = "os-secret-9001"
KNN = '{"size": 2, "query": {"knn": {"embeddings": {"vector": ?, "k": 2}}}}'


@pytest.fixture
def opensearch() -> Iterator[FakeOpenSearch]:
    with FakeOpenSearch(username="admin", password=PASSWORD) as fake:
        yield fake


def agent(
    fake: FakeOpenSearch, resource_extra: dict[str, Any] | None = None, /, **config: Any
) -> dict[str, Any]:
    resource = {
        "service": "opensearch",
        "host": "127.0.0.1",
        "port": str(fake.port),
        "https": "false",
        "username": "admin",
        "password": PASSWORD,
        "index-name": "docs",
        **(resource_extra or {}),
    }
    return {
        "datasource": "OS",
        "resources": {"OS": resource},
        "resource-types": {"OS": "vector-database"},
        **config,
    }


Make = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make(opensearch: FakeOpenSearch) -> AsyncIterator[Make]:
    made: list[Any] = []

    async def make(
        kind: str, resource_extra: dict[str, Any] | None = None, /, **config: Any
    ) -> Any:
        step = QueryVectorDB() if kind == "query" else VectorDBSink()
        await step.init(agent(opensearch, resource_extra, **config))
        made.append(step)
        await step.start()
        return step

    yield make
    for step in made:
        await step.close()


FIELDS = [
    {"name": "content", "expression": "value.text"},
    {"name": "embeddings", "expression": "value.embeddings"},
]


def record(**value: Any) -> Record:
    return Record(json.dumps(value), key=str(value.get("id")))


async def test_documents_indexed_by_id_then_found_by_knn(
    opensearch: FakeOpenSearch, make: Make
) -> None:
    sink = await make(
        "sink", fields=FIELDS, id="value.id", **{"bulk-parameters": {"refresh": "wait_for"}}
    )
    await sink.write(record(id="a", text="first", embeddings=[1, 0, 0]))
    await sink.write(record(id="b", text="second", embeddings=[0, 1, 0]))
    await sink.write(record(id="a", text="first again", embeddings=[1, 0.1, 0]))
    assert opensearch.documents("docs") == {
        "a": {"content": "first again", "embeddings": [1, 0.1, 0]},
        "b": {"content": "second", "embeddings": [0, 1, 0]},
    }
    put = next(r for r in opensearch.requests if r.method == "PUT")
    assert (put.path, put.query) == ("/docs/_doc/a", {"refresh": "wait_for"})

    step = await make("query", query=KNN, fields=["value.q"], **{"output-field": "value.hits"})
    [out] = await step.process(record(q=[0.1, 1, 0]))
    hits = json.loads(out.value)["hits"]
    assert [(h["id"], h["index"], h["document"]["content"]) for h in hits] == [
        ("b", "docs", "second"),
        ("a", "docs", "first again"),
    ]
    assert hits[0]["score"] > hits[1]["score"]
    search = next(r for r in opensearch.requests if r.path == "/docs/_search")
    assert search.body == {
        "size": 2,
        "query": {"knn": {"embeddings": {"vector": [0.1, 1, 0], "k": 2}}},
    }
    step = await make(
        "query",
        query='{"query": {"term": {"content": ?}}}',
        fields=["value.t"],
        **{"output-field": "value.hit", "only-first": True},
    )
    [out] = await step.process(record(t="second"))
    assert json.loads(out.value)["hit"]["document"] == {
        "content": "second",
        "embeddings": [0, 1, 0],
    }


async def test_null_value_deletes_and_no_id_gets_one(
    opensearch: FakeOpenSearch, make: Make
) -> None:
    sink = await make("sink", fields=FIELDS, id="key")
    await sink.write(record(id="a", text="t", embeddings=[1, 0, 0]))
    await sink.write(Record(None, key="a"))
    await sink.write(Record(None, key="never-written"))  # 404: nothing to delete, no error
    assert opensearch.documents("docs") == {}
    auto = await make("sink", fields=FIELDS)
    await auto.write(record(text="t", embeddings=[1, 0, 0]))
    assert list(opensearch.documents("docs")) == ["auto-1"]
    with pytest.raises(DataSourceError, match="a null value deletes by id; id gave none"):
        await auto.write(Record(None, key="x"))


async def test_refused_credentials_and_missing_index(
    opensearch: FakeOpenSearch, make: Make
) -> None:
    step = QueryVectorDB()
    await step.init(
        agent(opensearch, {"password": "not-it-12"}, query=KNN, **{"output-field": "value.x"})
    )
    with pytest.raises(DataSourceResourceError) as caught:
        await step.start()
    await step.close()
    message = str(caught.value)
    assert message.startswith(
        f'datasource "OS" (opensearch index "docs" at http://127.0.0.1:{opensearch.port})'
    )
    assert "refused the credentials" in message and "HTTP 401" in message
    assert "not-it-12" not in message and PASSWORD not in message

    query = await make(
        "query",
        {"index-name": "nothere"},
        query=KNN,
        fields=["value.q"],
        **{"output-field": "value.x"},
    )
    with pytest.raises(DataSourceError, match=r"answered HTTP 404: .*index_not_found_exception"):
        await query.process(record(q=[1, 0, 0]))
    opensearch.faults.extend([Fault(503), Fault(429, retry_after="0")])
    sink = await make("sink", fields=FIELDS, id="value.id")
    await sink.write(record(id="z", text="t", embeddings=[1, 0, 0]))
    assert "z" in opensearch.documents("docs")


def test_settings() -> None:
    settings, index = opensearch_settings(
        "OS", {"host": "search.example.com", "index-name": "i", "username": "u", "password": "p"}
    )
    assert (settings.base_url, index, settings.auth) == (
        "https://search.example.com:9200",
        "i",
        ("u", "p"),
    )
    settings, _ = opensearch_settings("OS", {"host": "http://h:9300/", "index-name": "i"})
    assert (settings.base_url, settings.auth) == ("http://h:9300", None)
    with pytest.raises(DataSourceResourceError, match="AWS SigV4"):
        opensearch_settings("OS", {"host": "x.us-east-1.aoss.amazonaws.com", "index-name": "i"})
    with pytest.raises(DataSourceResourceError, match="https must be true or false"):
        opensearch_settings("OS", {"host": "h", "index-name": "i", "https": "maybe"})
    with pytest.raises(DataSourceResourceError, match='datasource "OS": host is required'):
        opensearch_settings("OS", {"index-name": "i"})


async def test_unknown_bulk_parameters(opensearch: FakeOpenSearch) -> None:
    with pytest.raises(DataSourceResourceError, match="unknown bulk-parameters refrsh"):
        await VectorDBSink().init(
            agent(opensearch, fields=FIELDS, **{"bulk-parameters": {"refrsh": "true"}})
        )
