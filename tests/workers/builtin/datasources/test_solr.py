"""``query-vector-db`` and ``vector-db-sink`` on a ``solr`` vector database, against a local
server speaking Solr's HTTP APIs (tests/fakes/solr_server.py): LangStream's query object as
``params`` of the JSON Request API, k-NN with the vector inside the query string, documents
replaced by id, deletes, commits, refused credentials and retries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from sluice.application.builtin_config import BadConfiguration
from sluice.record import Record
from tests.fakes.json_server import Fault
from tests.fakes.solr_server import FakeSolr
from workers.builtin.datasources import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.solr import query_params, solr_settings
from workers.builtin.query import QueryVectorDB
from workers.builtin.vector_sink import VectorDBSink

PASSWORD = "solr-secret-777"
KNN = '{"q": "{!knn f=embeddings topK=2}?", "fl": "id,text,score"}'
FIELDS = [
    {"name": "id", "expression": "key"},
    {"name": "text", "expression": "value.text"},
    {"name": "embeddings", "expression": "value.embeddings"},
]


@pytest.fixture
def solr() -> Iterator[FakeSolr]:
    with FakeSolr(user="solr", password=PASSWORD) as fake:
        fake.create("documents")
        yield fake


def agent(
    fake: FakeSolr, resource_extra: dict[str, Any] | None = None, /, **config: Any
) -> dict[str, Any]:
    resource = {
        "service": "solr",
        "host": "127.0.0.1",
        "port": fake.port,
        "user": "solr",
        "password": PASSWORD,
        **(resource_extra or {}),
    }
    return {
        "datasource": "Solr",
        "resources": {"Solr": resource},
        "resource-types": {"Solr": "vector-database"},
        **config,
    }


Make = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make(solr: FakeSolr) -> AsyncIterator[Make]:
    made: list[Any] = []

    async def make(
        kind: str, resource_extra: dict[str, Any] | None = None, /, **config: Any
    ) -> Any:
        step = QueryVectorDB() if kind == "query" else VectorDBSink()
        await step.init(agent(solr, resource_extra, **config))
        made.append(step)
        await step.start()
        return step

    yield make
    for step in made:
        await step.close()


def record(key: str | None, **value: Any) -> Record:
    return Record(json.dumps(value), key=key)


async def test_documents_replaced_by_id_then_found_by_knn(solr: FakeSolr, make: Make) -> None:
    sink = await make("sink", fields=FIELDS)
    await sink.write(record("a", text="first", embeddings=[1, 0, 0]))
    await sink.write(record("b", text="second", embeddings=[0, 1, 0]))
    await sink.write(record("a", text="first again", embeddings=[1, 0.1, 0]))
    assert solr.collections["documents"] == {
        "a": {"id": "a", "text": "first again", "embeddings": [1, 0.1, 0]},
        "b": {"id": "b", "text": "second", "embeddings": [0, 1, 0]},
    }
    update = next(r for r in solr.requests if r.path == "/solr/documents/update")
    assert update.body == [{"id": "a", "text": "first", "embeddings": [1, 0, 0]}]
    assert update.query == {"commitWithin": "1000"}

    step = await make("query", query=KNN, fields=["value.q"], **{"output-field": "value.hits"})
    [out] = await step.process(record("q", q=[0.1, 1, 0]))
    hits = json.loads(out.value)["hits"]
    assert [(h["id"], h["text"]) for h in hits] == [("b", "second"), ("a", "first again")]
    assert hits[0]["score"] > hits[1]["score"]
    select = next(r for r in solr.requests if r.path == "/solr/documents/select")
    assert select.body == {
        "params": {"q": "{!knn f=embeddings topK=2}[0.1, 1, 0]", "fl": "id,text,score"}
    }
    step = await make(
        "query",
        query='{"q": ?, "fl": "text", "rows": 1}',
        fields=["value.q"],
        **{"output-field": "value.hit", "only-first": True},
    )
    [out] = await step.process(record("q", q="id:b"))
    assert json.loads(out.value)["hit"] == {"text": "second"}
    assert solr.requests[-1].body == {"params": {"q": "id:b", "fl": "text", "rows": "1"}}


async def test_null_value_deletes_and_commit_within(solr: FakeSolr, make: Make) -> None:
    sink = await make("sink", fields=FIELDS, **{"commit-within": 0})
    await sink.write(record("a", text="t", embeddings=[1, 0, 0]))
    await sink.write(Record(None, key="a"))
    assert solr.collections["documents"] == {}
    delete = solr.requests[-1]
    assert (delete.body, delete.query) == ({"delete": {"id": "a"}}, {"commit": "true"})
    nameless = await make("sink", fields=FIELDS[1:])
    with pytest.raises(DataSourceError, match="give a field named id"):
        await nameless.write(Record(None, key="a"))
    with pytest.raises(DataSourceError, match=r"answered HTTP 400: .*uniqueKey field: id"):
        await nameless.write(record("a", text="t"))


async def test_refused_credentials_missing_collection_and_retries(
    solr: FakeSolr, make: Make
) -> None:
    step = QueryVectorDB()
    await step.init(
        agent(solr, {"password": "bad-pass-1"}, query=KNN, **{"output-field": "value.x"})
    )
    with pytest.raises(DataSourceResourceError) as caught:
        await step.start()
    await step.close()
    message = str(caught.value)
    assert message.startswith(
        f'datasource "Solr" (solr collection "documents" at http://127.0.0.1:{solr.port})'
    )
    assert "refused the credentials" in message and "HTTP 401" in message
    assert "bad-pass-1" not in message and PASSWORD not in message

    other = await make(
        "query",
        {"collection-name": "nothere"},
        query=KNN,
        fields=["value.q"],
        **{"output-field": "value.x"},
    )
    with pytest.raises(
        DataSourceError, match=r"answered HTTP 404: .*Could not find collection : nothere"
    ):
        await other.process(record("q", q=[1, 0, 0]))
    solr.faults.extend([Fault(503), Fault(502)])
    sink = await make("sink", fields=FIELDS)
    await sink.write(record("z", text="t", embeddings=[1, 0, 0]))
    assert "z" in solr.collections["documents"]


async def test_a_commit_within_that_is_not_a_number(solr: FakeSolr) -> None:
    with pytest.raises(BadConfiguration, match="commit-within: must be a whole number"):
        await VectorDBSink().init(agent(solr, fields=FIELDS, **{"commit-within": "soon"}))
    sink = VectorDBSink()
    await sink.init(agent(solr, fields=FIELDS, **{"commit-within": -5}))
    await sink.start()
    await sink.write(record("a", text="t"))
    await sink.close()
    assert solr.requests[-1].query == {"commit": "true"}


def test_settings_and_params() -> None:
    settings, collection = solr_settings("Solr", {})
    assert (settings.base_url, collection, settings.auth) == (
        "http://localhost:8983",
        "documents",
        None,
    )
    settings, _ = solr_settings(
        "Solr", {"protocol": "https", "host": "s", "port": "9000", "user": "u", "password": "p"}
    )
    assert (settings.base_url, settings.auth) == ("https://s:9000", ("u", "p"))
    with pytest.raises(DataSourceResourceError, match="protocol must be http or https"):
        solr_settings("Solr", {"protocol": "ftp"})
    assert query_params({"q": "x", "rows": 3, "fq": ["a", "b"], "none": None}) == {
        "q": "x",
        "rows": "3",
        "fq": '["a", "b"]',
    }
