"""The vector databases reached over HTTP in real worker processes on the real broker, each
against a local server speaking its API (tests/fakes/): ``vector-db-sink`` writes every record
(one document per id, however often it is sent), ``query-vector-db`` answers from what was
written, and a refused key stops the worker naming the datasource, never the key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sluice.kafka import Producer
from sluice.record import Record
from tests.fakes.astra_server import FakeAstra
from tests.fakes.json_server import JsonServer
from tests.fakes.opensearch_server import FakeOpenSearch
from tests.fakes.pinecone_server import FakePinecone
from tests.fakes.solr_server import FakeSolr
from tests.workers.conftest import StartApp, read_all, send

pytestmark = pytest.mark.kafka

SECRET = "key-never-shown-5150"


@dataclass(frozen=True)
class Kind:
    """One vector database: its fake, resource, sink and query configuration (YAML)."""

    name: str
    fake: Callable[[], JsonServer]
    resource: Callable[[JsonServer, str], str]
    sink: str
    query: str
    stored: Callable[[JsonServer], dict[str, Any]]
    """id -> text of what the fake holds."""
    expected_rows: list[dict[str, Any]]


def _pinecone_resource(fake: JsonServer, key: str) -> str:
    return f"""
    - type: "vector-database"
      name: "VDB"
      configuration:
        service: "pinecone"
        api-key: "{key}"
        environment: "local"
        project-name: "proj"
        index-name: "docs"
        endpoint: "{fake.url}"
"""


def _pinecone_stored(fake: JsonServer) -> dict[str, Any]:
    assert isinstance(fake, FakePinecone)
    return {ident: item["metadata"]["text"] for ident, item in fake.vectors().items()}


def _opensearch_resource(fake: JsonServer, key: str) -> str:
    return f"""
    - type: "vector-database"
      name: "VDB"
      configuration:
        service: "opensearch"
        host: "127.0.0.1"
        port: {fake.port}
        https: false
        username: "admin"
        password: "{key}"
        index-name: "docs"
"""


def _opensearch_stored(fake: JsonServer) -> dict[str, Any]:
    assert isinstance(fake, FakeOpenSearch)
    return {ident: doc["content"] for ident, doc in fake.documents("docs").items()}


def _solr_fake() -> JsonServer:
    fake = FakeSolr(user="solr", password=SECRET)
    fake.create("documents")
    return fake


def _solr_resource(fake: JsonServer, key: str) -> str:
    return f"""
    - type: "vector-database"
      name: "VDB"
      configuration:
        service: "solr"
        host: "127.0.0.1"
        port: {fake.port}
        user: "solr"
        password: "{key}"
        collection-name: "documents"
"""


def _solr_stored(fake: JsonServer) -> dict[str, Any]:
    assert isinstance(fake, FakeSolr)
    return {ident: doc["text"] for ident, doc in fake.collections["documents"].items()}


def _astra_fake() -> JsonServer:
    fake = FakeAstra(token=SECRET)
    fake.create("docs", dimension=3)
    return fake


def _astra_resource(fake: JsonServer, key: str) -> str:
    return f"""
    - type: "vector-database"
      name: "VDB"
      configuration:
        service: "astra-vector-db"
        token: "{key}"
        endpoint: "{fake.url}"
"""


def _astra_stored(fake: JsonServer) -> dict[str, Any]:
    assert isinstance(fake, FakeAstra)
    return {ident: doc["text"] for ident, doc in fake.documents("docs").items()}


KINDS = [
    Kind(
        name="pinecone",
        fake=lambda: FakePinecone(api_key=SECRET),
        resource=_pinecone_resource,
        sink="""
      vector.id: "value.id"
      vector.vector: "value.embeddings"
      vector.metadata.text: "value.text"
""",
        query="""
      query: '{"vector": ?, "topK": 2, "includeMetadata": true}'
      fields: ["value.embeddings"]
""",
        stored=_pinecone_stored,
        expected_rows=[{"text": "doc 1", "id": "d1"}, {"text": "doc 2", "id": "d2"}],
    ),
    Kind(
        name="opensearch",
        fake=lambda: FakeOpenSearch(password=SECRET),
        resource=_opensearch_resource,
        sink="""
      id: "value.id"
      bulk-parameters: {refresh: "wait_for"}
      fields:
        - {name: "content", expression: "value.text"}
        - {name: "embeddings", expression: "value.embeddings"}
""",
        query="""
      query: '{"size": 2, "query": {"knn": {"embeddings": {"vector": ?, "k": 2}}}}'
      fields: ["value.embeddings"]
""",
        stored=_opensearch_stored,
        expected_rows=[
            {"id": "d1", "index": "docs", "document": {"content": "doc 1"}},
            {"id": "d2", "index": "docs", "document": {"content": "doc 2"}},
        ],
    ),
    Kind(
        name="solr",
        fake=_solr_fake,
        resource=_solr_resource,
        sink="""
      commit-within: 0
      fields:
        - {name: "id", expression: "value.id"}
        - {name: "text", expression: "value.text"}
        - {name: "embeddings", expression: "value.embeddings"}
""",
        query="""
      query: '{"q": "{!knn f=embeddings topK=2}?", "fl": "id,text"}'
      fields: ["value.embeddings"]
""",
        stored=_solr_stored,
        expected_rows=[{"id": "d1", "text": "doc 1"}, {"id": "d2", "text": "doc 2"}],
    ),
    Kind(
        name="astra-vector-db",
        fake=_astra_fake,
        resource=_astra_resource,
        sink="""
      collection-name: "docs"
      fields:
        - {name: "id", expression: "value.id"}
        - {name: "vector", expression: "value.embeddings"}
        - {name: "text", expression: "value.text"}
""",
        query="""
      query: '{"collection-name": "docs", "vector": ?, "limit": 2, "select": ["text"]}'
      fields: ["value.embeddings"]
""",
        stored=_astra_stored,
        expected_rows=[{"text": "doc 1", "id": "d1"}, {"text": "doc 2", "id": "d2"}],
    ),
]


@pytest.fixture(params=KINDS, ids=[kind.name for kind in KINDS])
def kind(request: pytest.FixtureRequest) -> Kind:
    value: Kind = request.param
    return value


@pytest.fixture
def fake(kind: Kind) -> Iterator[JsonServer]:
    with kind.fake() as server:
        yield server


def app(
    kind: Kind, fake: JsonServer, topics: dict[str, str], agent: str, key: str = SECRET
) -> dict[str, str]:
    if agent == "sink":
        body = f"""
    type: vector-db-sink
    errors: {{on-failure: fail}}
    configuration:
      datasource: "VDB"{kind.sink}"""
        output = ""
    else:
        body = f"""
    type: query-vector-db
    configuration:
      datasource: "VDB"
      output-field: "value.related"{kind.query}"""
        output = f"\n    output: {topics['out']}"
    pipeline = f"""
topics:
  - {{name: {topics["inp"]}, creation-mode: create-if-not-exists}}
  - {{name: {topics["out"]}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    input: {topics["inp"]}{output}{body}
"""
    configuration = "configuration:\n  resources:" + kind.resource(fake, key)
    return {"pipeline.yaml": pipeline, "configuration.yaml": configuration}


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row without what depends on the distance (scores) or repeats the input (vectors)."""
    row = {k: v for k, v in row.items() if k not in ("score", "similarity", "$similarity")}
    if isinstance(row.get("document"), dict):
        row["document"] = {k: v for k, v in row["document"].items() if k != "embeddings"}
    return row


def document(index: int) -> Record:
    value = {"id": f"d{index}", "text": f"doc {index}", "embeddings": [1.0, index / 10, 0.0]}
    return Record(json.dumps(value), key=f"d{index}")


async def wait_for(check: Callable[[], bool], within: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not in time")
        await asyncio.sleep(0.1)


async def test_sink_then_query_in_workers(
    kind: Kind,
    fake: JsonServer,
    start_app: StartApp,
    topics: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    sink = await start_app(app(kind, fake, topics, "sink"))
    await send(producer, topics["inp"], *(document(i) for i in (1, 2, 3)))
    await send(producer, topics["inp"], document(2))  # again: still one document
    expected = {"d1": "doc 1", "d2": "doc 2", "d3": "doc 3"}
    await wait_for(lambda: kind.stored(fake) == expected)
    await asyncio.sleep(0.5)
    assert await sink.stop() == 0, "\n".join(sink.output)
    assert kind.stored(fake) == expected
    assert SECRET not in "\n".join(sink.output)

    second = {k: f"{v}-q" for k, v in topics.items()}
    query = await start_app(app(kind, fake, second, "query"))
    question = {"embeddings": [1.0, 0.12, 0.0]}
    await send(producer, second["inp"], Record(json.dumps(question), key="q"))
    [out] = await read_all(kafka_bootstrap, second["out"], 1)
    assert await query.stop() == 0, "\n".join(query.output)
    assert [shown(row) for row in json.loads(out.record.value)["related"]] == kind.expected_rows


async def test_a_refused_key_stops_the_worker(
    kind: Kind, fake: JsonServer, start_app: StartApp, topics: dict[str, str]
) -> None:
    worker = await start_app(app(kind, fake, topics, "query", key="wrong-key-31337"), ready=False)
    code = await worker.exited(within=60)
    output = "\n".join(worker.output)
    assert code != 0, output
    assert 'datasource "VDB"' in output and "refused the credentials" in output, output
    assert "wrong-key-31337" not in output and SECRET not in output


async def test_opensearch_a_failed_bulk_item_goes_to_its_records_policy(
    start_app: StartApp, topics: dict[str, str], producer: Producer, kafka_bootstrap: str
) -> None:
    """One document of a ``_bulk`` batch does not fit the index's mapping: that record alone
    goes to the dead-letter topic, the others of its batch are indexed."""
    [opensearch] = [kind for kind in KINDS if kind.name == "opensearch"]
    with FakeOpenSearch(password=SECRET) as fake:
        mapping = {"properties": {"embeddings": {"type": "knn_vector", "dimension": 3}}}
        fake.indexes["docs"] = {"settings": {}, "mappings": mapping, "docs": {}}
        files = app(opensearch, fake, topics, "sink")
        files["pipeline.yaml"] = files["pipeline.yaml"].replace(
            "on-failure: fail", "on-failure: dead-letter"
        )
        sink = await start_app(files)
        bad = Record(json.dumps({"id": "d3", "text": "doc 3", "embeddings": [1.0]}), key="d3")
        await send(producer, topics["inp"], document(1), document(2), bad, document(4))
        [dead] = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 1, settle=1.5)
        assert dead.record.key == "d3"
        await wait_for(lambda: len(fake.documents("docs")) == 3)
        assert await sink.stop() == 0, "\n".join(sink.output)
        assert sorted(fake.documents("docs")) == ["d1", "d2", "d4"]
        assert fake.bulk_sizes == [4]
        output = "\n".join(sink.output)
        assert "mapper_parsing_exception" in output and SECRET not in output
