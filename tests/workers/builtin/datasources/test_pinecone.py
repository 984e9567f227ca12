"""``query-vector-db`` and ``vector-db-sink`` on a ``pinecone`` vector database, against a local
server speaking Pinecone's data plane REST API (tests/fakes/pinecone_server.py): the query JSON
as LangStream passes it, the rows, upserts by id, deletes, refused keys, retries and timeouts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from sluice.record import Record
from tests.fakes.json_server import Fault
from tests.fakes.pinecone_server import FakePinecone
from workers.builtin.datasources import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.pinecone import pinecone_settings, query_request
from workers.builtin.query import QueryVectorDB
from workers.builtin.vector_sink import VectorDBSink

KEY = "pc-secret-4242"


@pytest.fixture
def pinecone() -> Iterator[FakePinecone]:
    with FakePinecone(api_key=KEY) as fake:
        yield fake


def resource(fake: FakePinecone, **extra: Any) -> dict[str, Any]:
    return {
        "service": "pinecone",
        "api-key": KEY,
        "environment": "gcp-starter",
        "project-name": "proj",
        "index-name": "docs",
        "endpoint": fake.url,
        **extra,
    }


def agent(
    fake: FakePinecone, resource_extra: dict[str, Any] | None = None, /, **config: Any
) -> dict[str, Any]:
    return {
        "datasource": "Pine",
        "resources": {"Pine": resource(fake, **(resource_extra or {}))},
        "resource-types": {"Pine": "vector-database"},
        **config,
    }


Make = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make_query(pinecone: FakePinecone) -> AsyncIterator[Make]:
    made: list[QueryVectorDB] = []

    async def make(resource_extra: dict[str, Any] | None = None, /, **config: Any) -> QueryVectorDB:
        step = QueryVectorDB()
        await step.init(agent(pinecone, resource_extra, **config))
        made.append(step)
        await step.start()
        return step

    yield make
    for step in made:
        await step.close()


@pytest.fixture
async def make_sink(pinecone: FakePinecone) -> AsyncIterator[Make]:
    made: list[VectorDBSink] = []

    async def make(resource_extra: dict[str, Any] | None = None, /, **config: Any) -> VectorDBSink:
        sink = VectorDBSink()
        await sink.init(agent(pinecone, resource_extra, **config))
        made.append(sink)
        await sink.start()
        return sink

    yield make
    for sink in made:
        await sink.close()


SINK = {
    "vector.id": "value.id",
    "vector.vector": "value.embeddings",
    "vector.namespace": "",
    "vector.metadata.genre": "value.genre",
    "vector.metadata.text": "value.text",
}


def record(**value: Any) -> Record:
    return Record(json.dumps(value), key=str(value.get("id")))


async def test_sink_upserts_by_id_and_query_finds_nearest(
    pinecone: FakePinecone, make_sink: Make, make_query: Make
) -> None:
    sink = await make_sink(**SINK)
    await sink.write(record(id="a", embeddings=[1, 0, 0], genre="docs", text="first"))
    await sink.write(record(id="b", embeddings=["0", "1", "0"], genre="news", text="second"))
    await sink.write(record(id="a", embeddings=[1, 0.1, 0], genre="docs", text="first again"))
    assert sorted(pinecone.vectors()) == ["a", "b"]
    assert pinecone.vectors()["a"]["metadata"] == {"genre": "docs", "text": "first again"}
    upsert = next(r for r in pinecone.requests if r.path == "/vectors/upsert")
    assert upsert.body == {
        "vectors": [
            {"id": "a", "values": [1.0, 0.0, 0.0], "metadata": {"genre": "docs", "text": "first"}}
        ]
    }
    assert upsert.headers["api-key"] == KEY

    step = await make_query(
        query='{"vector": ?, "topK": 2, "includeMetadata": true}',
        fields=["value.question"],
        **{"output-field": "value.related"},
    )
    [out] = await step.process(record(question=[0, 1, 0.05]))
    related = json.loads(out.value)["related"]
    assert related == [
        {"genre": "news", "text": "second", "id": "b"},
        {"genre": "docs", "text": "first again", "id": "a"},
    ]
    query = next(r for r in pinecone.requests if r.path == "/query")
    assert query.body == {
        "topK": 2,
        "includeMetadata": True,
        "includeValues": False,
        "vector": [0.0, 1.0, 0.05],
    }


async def test_query_filter_namespace_and_metadata_as_text(
    pinecone: FakePinecone, make_sink: Make, make_query: Make
) -> None:
    sink = await make_sink(
        **{**SINK, "vector.namespace": "value.ns", "vector.metadata.n": "value.n"}
    )
    await sink.write(record(id="x", ns="ns1", embeddings=[1, 0, 0], genre="docs", text="t", n=3))
    await sink.write(record(id="y", ns="ns1", embeddings=[1, 0, 0], genre="news", text="u", n=4))
    await sink.write(record(id="z", ns="ns2", embeddings=[1, 0, 0], genre="docs", text="v", n=5))
    step = await make_query(
        query='{"vector": ?, "topK": 5, "namespace": ?, "filter": {"genre": {"$eq": ?}}}',
        fields=["value.q", "value.ns", "value.genre"],
        **{"output-field": "value.hits", "only-first": True},
    )
    [out] = await step.process(record(q=[1, 0, 0], ns="ns1", genre="docs"))
    # LangStream's rows: metadata values as text (numbers are doubles), then the id.
    assert json.loads(out.value)["hits"] == {"genre": "docs", "text": "t", "n": "3.0", "id": "x"}
    [out] = await step.process(record(q=[1, 0, 0], ns="ns1", genre="none"))
    assert json.loads(out.value)["hits"] == {}


async def test_a_null_value_deletes_the_vector(pinecone: FakePinecone, make_sink: Make) -> None:
    sink = await make_sink(**{**SINK, "vector.id": "key"})
    await sink.write(record(id="a", embeddings=[1, 0, 0], genre="g", text="t"))
    await sink.write(record(id="b", embeddings=[1, 0, 0], genre="g", text="t"))
    await sink.write(Record(None, key="b"))
    assert sorted(pinecone.vectors()) == ["a"]
    assert [r.body for r in pinecone.requests if r.path == "/vectors/delete"] == [{"ids": ["b"]}]


def test_query_request_mapping() -> None:
    parsed = {
        "vector": [1, 2],
        "topK": 3,
        "filter": {},
        "sparseVector": {"indices": [], "values": []},
        "includeValues": True,
    }
    assert query_request(parsed) == {
        "topK": 3,
        "includeMetadata": True,
        "includeValues": True,
        "vector": [1.0, 2.0],
    }
    sparse = query_request({"sparseVector": {"indices": [1], "values": [0.5]}})
    assert sparse["sparseVector"] == {"indices": [1], "values": [0.5]} and sparse["topK"] == 1


def test_settings_default_host_and_required_keys() -> None:
    settings = pinecone_settings(
        "Pine",
        {"api-key": KEY, "environment": "us-east1-gcp", "project-name": "p1", "index-name": "idx"},
    )
    assert settings.base_url == "https://idx-p1.svc.us-east1-gcp.pinecone.io"
    assert settings.timeout == 10
    assert KEY not in repr(settings)
    with pytest.raises(DataSourceResourceError, match='datasource "Pine": index-name is required'):
        pinecone_settings("Pine", {"api-key": KEY, "environment": "e", "project-name": "p"})


async def test_a_wrong_key_stops_the_agent_at_start(pinecone: FakePinecone) -> None:
    step = QueryVectorDB()
    config = agent(pinecone, query="{}", **{"output-field": "value.x"})
    config["resources"]["Pine"]["api-key"] = "wrong-key-777"
    await step.init(config)
    with pytest.raises(DataSourceResourceError) as caught:
        await step.start()
    await step.close()
    message = str(caught.value)
    assert 'datasource "Pine" (pinecone index "docs" at http://127.0.0.1:' in message
    assert "refused the credentials" in message and "HTTP 401" in message
    assert "wrong-key-777" not in message and KEY not in message


async def test_429_and_5xx_are_retried(pinecone: FakePinecone, make_query: Make) -> None:
    step = await make_query(
        {"max-retries": 2},
        query='{"vector": ?, "topK": 1}',
        fields=["value.q"],
        **{"output-field": "value.x"},
    )
    pinecone.faults.extend([Fault(429, retry_after="0"), Fault(503)])
    [out] = await step.process(record(q=[1, 0, 0]))
    assert json.loads(out.value)["x"] == []
    pinecone.faults.extend([Fault(503), Fault(502), Fault(500)])
    with pytest.raises(DataSourceError, match=r"answered HTTP 500 \(3 tries\)"):
        await step.process(record(q=[1, 0, 0]))
    pinecone.faults.append(Fault(400))
    with pytest.raises(DataSourceError, match="answered HTTP 400: "):
        await step.process(record(q=[1, 0, 0]))


async def test_a_slow_answer_times_out(pinecone: FakePinecone, make_query: Make) -> None:
    step = await make_query(
        {"server-side-timeout-sec": 0.3, "max-retries": 1},
        query='{"vector": ?}',
        fields=["value.q"],
        **{"output-field": "value.x"},
    )
    pinecone.faults.extend([Fault(0, delay=1), Fault(0, delay=1)])
    with pytest.raises(DataSourceError, match=r"no answer within 0.3 s \(2 tries\)"):
        await step.process(record(q=[1, 0, 0]))


async def test_write_errors(pinecone: FakePinecone, make_sink: Make, make_query: Make) -> None:
    sink = await make_sink(**SINK)
    with pytest.raises(DataSourceError, match="does not match the dimension"):
        await sink.write(record(id="a", embeddings=[1, 0], genre="g", text="t"))
    with pytest.raises(DataSourceError, match=r"vector\.vector must give a list of numbers"):
        await sink.write(record(id="a", genre="g", text="t"))
    with pytest.raises(DataSourceError, match=r"vector\.id gave no id"):
        await sink.write(record(embeddings=[1, 0, 0]))
    with pytest.raises(DataSourceResourceError, match=r"vector\.id is required"):
        await VectorDBSink().init(agent(pinecone, **{"vector.vector": "value.e"}))
    step = await make_query(query="{}", mode="execute", **{"output-field": "value.x"})
    with pytest.raises(DataSourceError, match="mode execute is not supported on pinecone"):
        await step.process(record(q=1))
    step = await make_query(query='{"vector": ?', fields=["value.q"], **{"output-field": "value.x"})
    with pytest.raises(DataSourceError, match="the query is not JSON once its"):
        await step.process(record(q=[1]))
