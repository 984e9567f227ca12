"""``query-vector-db`` and ``vector-db-sink`` on an ``opensearch`` datasource, against a local
server speaking OpenSearch's REST API (tests/fakes/opensearch_server.py): the ``_search`` body
as LangStream passes it, the rows, documents indexed by id through ``_bulk`` in batches of
``batch-size``, deletes, bulk parameters, an item's error failing its record only, refused
credentials and the resource's keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from httpx_auth import AWS4Auth

from sluice.record import Record
from tests.fakes.json_server import Fault
from tests.fakes.opensearch_server import FakeOpenSearch
from workers.builtin.datasources import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.opensearch import aws_service, opensearch_settings
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
        "sink",
        fields=FIELDS,
        id="value.id",
        **{"bulk-parameters": {"refresh": "wait_for"}, "flush-interval": 0},
    )
    await sink.write(record(id="a", text="first", embeddings=[1, 0, 0]))
    await sink.write(record(id="b", text="second", embeddings=[0, 1, 0]))
    await sink.write(record(id="a", text="first again", embeddings=[1, 0.1, 0]))
    assert opensearch.documents("docs") == {
        "a": {"content": "first again", "embeddings": [1, 0.1, 0]},
        "b": {"content": "second", "embeddings": [0, 1, 0]},
    }
    bulk = next(r for r in opensearch.requests if r.method == "POST")
    assert (bulk.path, bulk.query) == ("/docs/_bulk", {"refresh": "wait_for"})
    assert bulk.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line) for line in bulk.raw.decode().splitlines()] == [
        {"index": {"_index": "docs", "_id": "a"}},
        {"content": "first", "embeddings": [1, 0, 0]},
    ]
    assert bulk.raw.endswith(b"\n")

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
    sink = await make("sink", fields=FIELDS, id="key", **{"flush-interval": 0})
    await sink.write(record(id="a", text="t", embeddings=[1, 0, 0]))
    await sink.write(Record(None, key="a"))
    await sink.write(Record(None, key="never-written"))  # 404: nothing to delete, no error
    assert opensearch.documents("docs") == {}
    auto = await make("sink", fields=FIELDS, **{"flush-interval": 0})
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
    sink = await make("sink", fields=FIELDS, id="value.id", **{"flush-interval": 0})
    await sink.write(record(id="z", text="t", embeddings=[1, 0, 0]))
    assert "z" in opensearch.documents("docs")


async def test_batches_of_batch_size_in_order(opensearch: FakeOpenSearch, make: Make) -> None:
    sink = await make("sink", fields=FIELDS, id="value.id", **{"batch-size": 3})
    assert sink.records_in_flight == 6
    records = [record(id=f"d{i % 5}", text=f"t{i}", embeddings=[i, 0, 0]) for i in range(7)]
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(sink.write(r) for r in records))
    # two full batches at once, the last partial one after flush-interval (LangStream's 1 s)
    assert asyncio.get_running_loop().time() - started >= 0.9
    assert opensearch.bulk_sizes == [3, 3, 1]
    # the later write of an id wins: d0 and d1 were written twice
    assert {k: v["content"] for k, v in opensearch.documents("docs").items()} == {
        "d0": "t5",
        "d1": "t6",
        "d2": "t2",
        "d3": "t3",
        "d4": "t4",
    }
    await asyncio.gather(*(sink.write(r) for r in records))  # redelivered: nothing added
    assert len(opensearch.documents("docs")) == 5


async def test_a_failed_item_fails_its_record_only(opensearch: FakeOpenSearch, make: Make) -> None:
    mapping = {"properties": {"embeddings": {"type": "knn_vector", "dimension": 3}}}
    opensearch.indexes["docs"] = {"settings": {}, "mappings": mapping, "docs": {}}
    sink = await make("sink", fields=FIELDS, id="value.id", **{"batch-size": 3})
    results = await asyncio.gather(
        sink.write(record(id="a", text="a", embeddings=[1, 0, 0])),
        sink.write(record(id="b", text="b", embeddings=[1, 0])),
        sink.write(record(id="c", text="c", embeddings=[0, 0, 1])),
        return_exceptions=True,
    )
    assert opensearch.bulk_sizes == [3]
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], DataSourceError)
    assert str(results[1]).startswith('vector-db-sink (datasource "OS" (opensearch index')
    assert (
        "index of document b failed: mapper_parsing_exception - failed to parse field "
        "[embeddings] of type [knn_vector]: Vector dimension mismatch. Expected: 3, Given: 2"
    ) in str(results[1])
    assert sorted(opensearch.documents("docs")) == ["a", "c"]


async def test_a_failed_request_fails_the_whole_batch(
    opensearch: FakeOpenSearch, make: Make
) -> None:
    sink = await make("sink", {"max-retries": 0}, fields=FIELDS, id="value.id", **{"batch-size": 2})
    opensearch.faults.append(Fault(503))
    results = await asyncio.gather(
        sink.write(record(id="a", text="a", embeddings=[1, 0, 0])),
        sink.write(record(id="b", text="b", embeddings=[0, 1, 0])),
        return_exceptions=True,
    )
    assert all(isinstance(r, DataSourceError) and "HTTP 503" in str(r) for r in results)
    assert opensearch.documents("docs") == {}


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
    aws = {"index-name": "i", "region": "us-east-1", "username": "AK", "password": "SK"}
    settings, _ = opensearch_settings("OS", {"host": "x.us-east-1.aoss.amazonaws.com", **aws})
    assert settings.base_url == "https://x.us-east-1.aoss.amazonaws.com"
    assert isinstance(settings.auth, AWS4Auth) and settings.auth.service == "aoss"
    assert settings.auth.region == "us-east-1" and settings.secrets == ("SK",)
    settings, _ = opensearch_settings(
        "OS", {"host": "https://search-d.eu-west-1.es.amazonaws.com", "port": "1", **aws}
    )
    assert settings.base_url == "https://search-d.eu-west-1.es.amazonaws.com"
    assert isinstance(settings.auth, AWS4Auth) and settings.auth.service == "es"
    assert [
        aws_service(h) for h in ("h", "x.aoss.amazonaws.com", "https://y.es.amazonaws.com")
    ] == [
        None,
        "aoss",
        "es",
    ]
    with pytest.raises(DataSourceResourceError, match='datasource "OS": region is required'):
        opensearch_settings("OS", {"host": "x.aoss.amazonaws.com", **aws, "region": ""})
    with pytest.raises(DataSourceResourceError, match=r"needs username \(the access key\)"):
        opensearch_settings("OS", {"host": "x.aoss.amazonaws.com", **aws, "password": ""})
    with pytest.raises(DataSourceResourceError, match="https must be true or false"):
        opensearch_settings("OS", {"host": "h", "index-name": "i", "https": "maybe"})
    with pytest.raises(DataSourceResourceError, match='datasource "OS": host is required'):
        opensearch_settings("OS", {"index-name": "i"})


async def test_unknown_bulk_parameters(opensearch: FakeOpenSearch) -> None:
    with pytest.raises(DataSourceResourceError, match="unknown bulk-parameters refrsh"):
        await VectorDBSink().init(
            agent(opensearch, fields=FIELDS, **{"bulk-parameters": {"refrsh": "true"}})
        )
    with pytest.raises(DataSourceResourceError, match="refresh must be one of true, false"):
        await VectorDBSink().init(
            agent(opensearch, fields=FIELDS, **{"bulk-parameters": {"refresh": "now"}})
        )


AWS_SECRET = "aws-secret-key-6502"


async def test_aws_host_requests_signed_with_sigv4() -> None:
    """A host on AWS: every request signed for its region and service (the fake recomputes the
    signature), the bulk parameters in the signed query string; a wrong secret or another
    service's signature is refused, naming the datasource, never the secret."""
    with FakeOpenSearch(aws_keys={"AKIAOS": AWS_SECRET}, region="eu-west-1") as fake:
        resource = {
            "service": "opensearch",
            "host": "abc123.eu-west-1.aoss.amazonaws.com",
            "region": "eu-west-1",
            "username": "AKIAOS",
            "password": AWS_SECRET,
            "index-name": "docs",
            "endpoint-override": fake.url,
        }

        def config(**extra: Any) -> dict[str, Any]:
            return {
                "datasource": "OS",
                "resources": {"OS": {**resource, **extra}},
                "resource-types": {"OS": "vector-database"},
            }

        sink = VectorDBSink()
        await sink.init(
            {
                **config(),
                "fields": FIELDS,
                "id": "value.id",
                "bulk-parameters": {"refresh": "wait_for", "routing": "r 1"},
                "flush-interval": 0,
            }
        )
        await sink.start()
        await sink.write(record(id="a", text="signed", embeddings=[1, 0, 0]))
        await sink.close()
        assert fake.documents("docs") == {"a": {"content": "signed", "embeddings": [1, 0, 0]}}
        bulk = next(r for r in fake.requests if r.path == "/docs/_bulk")
        assert bulk.query == {"refresh": "wait_for", "routing": "r 1"}
        assert "/eu-west-1/aoss/aws4_request" in bulk.headers["authorization"]
        assert bulk.headers["x-amz-content-sha256"]
        assert (fake.requests[0].method, fake.requests[0].path) == ("GET", "/docs")

        query = QueryVectorDB()
        await query.init(
            {**config(), "query": KNN, "fields": ["value.q"], "output-field": "value.x"}
        )
        await query.start()
        [out] = await query.process(record(q=[1, 0, 0]))
        await query.close()
        assert json.loads(out.value)["x"][0]["document"]["content"] == "signed"

        for extra, reason in (
            ({"password": "not-the-secret-1"}, "signature we calculated does not match"),
            ({"username": "AKIAOTHER"}, "security token included in the request is invalid"),
            ({"host": "search-d.eu-west-1.es.amazonaws.com"}, "credential scope eu-west-1/es"),
        ):
            step = QueryVectorDB()
            await step.init({**config(**extra), "query": KNN, "output-field": "value.x"})
            with pytest.raises(DataSourceResourceError) as caught:
                await step.start()
            await step.close()
            message = str(caught.value)
            assert message.startswith('datasource "OS" (opensearch index "docs" at http://127')
            assert "refused the credentials" in message and "HTTP 403" in message, message
            assert reason in message, message
            assert AWS_SECRET not in message and "not-the-secret-1" not in message
