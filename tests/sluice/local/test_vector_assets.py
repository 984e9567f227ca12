"""opensearch-index, solr-collection and astra-collection assets against local servers speaking
those services' APIs (tests/fakes/): created when missing (once), deleted when asked, failures
naming the asset and never the credential; and the loader's checks of their keys."""

from __future__ import annotations

import asyncio
import json
import textwrap
import uuid
from pathlib import Path

import pytest

from sluice.application import load_application
from sluice.errors import InvalidApplication
from sluice.kafka import KafkaSettings, Producer
from sluice.local.assets import AssetError, create_assets, delete_assets
from sluice.local.runner import RunSettings, run_application
from sluice.net import free_port
from sluice.record import Record
from tests.fakes.astra_server import FakeAstra
from tests.fakes.opensearch_server import FakeOpenSearch
from tests.fakes.solr_server import FakeSolr
from tests.workers.conftest import read_all

SECRET = "asset-secret-4711"


def write(tmp_path: Path, configuration: str, assets: str) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "configuration.yaml").write_text(textwrap.dedent(configuration), encoding="utf-8")
    pipeline = "topics:\n  - name: in\nassets:\n" + textwrap.indent(textwrap.dedent(assets), "  ")
    pipeline += "pipeline:\n  - name: x\n    type: identity\n    input: in\n"
    (root / "pipeline.yaml").write_text(pipeline, encoding="utf-8")
    return root


async def test_opensearch_index(tmp_path: Path) -> None:
    with FakeOpenSearch(password=SECRET) as fake:
        root = write(
            tmp_path,
            f"""
            configuration:
              resources:
                - type: vector-database
                  name: OS
                  configuration: {{service: opensearch, host: 127.0.0.1, port: {fake.port},
                    https: false, username: admin, password: "{SECRET}", index-name: docs}}
            """,
            """
            - name: os-index
              asset-type: opensearch-index
              creation-mode: create-if-not-exists
              deletion-mode: delete
              config:
                datasource: OS
                settings: '{"index": {"knn": true}}'
                mappings: |
                  {"properties": {"embeddings": {"type": "knn_vector", "dimension": 3}}}
            """,
        )
        app = load_application(root)
        assert await create_assets(app) == ["os-index: index docs created"]
        assert fake.indexes["docs"]["settings"] == {"index": {"knn": True}}
        assert fake.indexes["docs"]["mappings"]["properties"]["embeddings"]["dimension"] == 3
        assert await create_assets(app) == ["os-index: index docs is there"]
        assert await delete_assets(app) == ["os-index: index docs deleted"]
        assert "docs" not in fake.indexes
        assert await delete_assets(app) == ["os-index: index docs is not there"]
        fake.credentials = "nobody"
        with pytest.raises(AssetError) as caught:
            await create_assets(app)
        message = str(caught.value)
        assert message.startswith('asset "os-index" (pipeline.yaml): datasource "OS"')
        assert "refused the credentials" in message and SECRET not in message


async def test_solr_collection(tmp_path: Path) -> None:
    with FakeSolr(user="solr", password=SECRET) as fake:
        root = write(
            tmp_path,
            f"""
            configuration:
              resources:
                - type: vector-database
                  name: Solr
                  configuration: {{service: solr, host: 127.0.0.1, port: {fake.port}, user: solr,
                    password: "{SECRET}", collection-name: documents}}
            """,
            """
            - name: solr-collection
              asset-type: solr-collection
              creation-mode: create-if-not-exists
              deletion-mode: delete
              config:
                datasource: Solr
                create-statements:
                  - api: /api/collections
                    method: POST
                    body: '{"name": "documents", "numShards": 1, "replicationFactor": 1}'
                  - api: /schema
                    body: '"add-field-type": {"name": "vec", "class": "solr.DenseVectorField", "vectorDimension": 3}'
            """,
        )
        app = load_application(root)
        assert await create_assets(app) == ["solr-collection: collection documents created"]
        assert fake.schemas["documents"] == [
            {
                "add-field-type": {
                    "name": "vec",
                    "class": "solr.DenseVectorField",
                    "vectorDimension": 3,
                }
            }
        ]
        assert await create_assets(app) == ["solr-collection: collection documents is there"]
        assert await delete_assets(app) == ["solr-collection: collection documents deleted"]
        assert "documents" not in fake.collections
        assert await delete_assets(app) == ["solr-collection: collection documents is not there"]


async def test_astra_collection(tmp_path: Path) -> None:
    with FakeAstra(token=SECRET) as fake:
        root = write(
            tmp_path,
            f"""
            configuration:
              resources:
                - type: vector-database
                  name: Astra
                  configuration: {{service: astra-vector-db, token: "{SECRET}", endpoint: "{fake.url}"}}
            """,
            """
            - name: astra-collection
              asset-type: astra-collection
              creation-mode: create-if-not-exists
              deletion-mode: delete
              config:
                datasource: Astra
                collection-name: documents
                vector-dimension: 3
            """,
        )
        app = load_application(root)
        assert await create_assets(app) == ["astra-collection: collection documents created"]
        assert fake.keyspaces["default_keyspace"]["documents"]["dimension"] == 3
        assert await create_assets(app) == ["astra-collection: collection documents is there"]
        assert await delete_assets(app) == ["astra-collection: collection documents deleted"]
        assert await delete_assets(app) == ["astra-collection: collection documents is not there"]


def test_loader_checks(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        """
        configuration:
          resources:
            - type: vector-database
              name: Astra
              configuration: {service: astra-vector-db, token: t, endpoint: "http://h"}
        """,
        """
        - name: a
          asset-type: astra-collection
          creation-mode: create-if-not-exists
          config:
            datasource: Astra
        - name: s
          asset-type: solr-collection
          config:
            datasource: Astra
            create-statements: ["not a mapping"]
        """,
    )
    with pytest.raises(InvalidApplication) as caught:
        load_application(root)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "collection-name: is required" in text
    assert "must be a mapping with api" in text


CONFIGURATION = """
configuration:
  resources:
    - type: "vector-database"
      name: "opensearch-datasource"
      configuration:
        service: "opensearch"
        username: "${secrets.opensearch.username}"
        password: "${secrets.opensearch.password}"
        host: "${secrets.opensearch.host}"
        port: "${secrets.opensearch.port}"
        https: "${secrets.opensearch.https}"
        region: "${secrets.opensearch.region}"
        index-name: "langstream-index"
"""

WRITE = """
topics:
  - name: "{vectors}"
    creation-mode: create-if-not-exists
assets:
  - name: "os-index"
    asset-type: "opensearch-index"
    creation-mode: create-if-not-exists
    config:
      datasource: "opensearch-datasource"
      settings: |
        {{"index": {{"knn": true, "knn.algo_param.ef_search": 100}}}}
      mappings: |
        {{"properties": {{"content": {{"type": "text"}}, "embeddings": {{"type": "knn_vector", "dimension": 3}}}}}}
pipeline:
  - name: "Write to vector db"
    type: "vector-db-sink"
    input: "{vectors}"
    configuration:
      datasource: "opensearch-datasource"
      id: "key"
      bulk-parameters:
        refresh: "wait_for"
      fields:
        - name: "embeddings"
          expression: "value.embeddings"
        - name: "content"
          expression: "value.document"
"""

QUERY = """
topics:
  - name: "{questions}"
    creation-mode: create-if-not-exists
  - name: "{answers}"
    creation-mode: create-if-not-exists
pipeline:
  - name: "Execute Query"
    type: "query-vector-db"
    input: "{questions}"
    configuration:
      datasource: "opensearch-datasource"
      query: |
        {{"size": 1, "query": {{"knn": {{"embeddings": {{"vector": ?, "k": 1}}}}}}}}
      fields:
        - "value.embeddings"
      output-field: "value.query_result"
      only-first: true
  - name: "Format response"
    type: compute
    output: "{answers}"
    configuration:
      fields:
        - name: "value"
          type: STRING
          expression: "value.query_result.document.content"
"""


@pytest.mark.kafka
async def test_the_query_opensearch_shape_under_sluice_run(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """LangStream's query-opensearch shape (an opensearch-index asset, vector-db-sink with
    bulk-parameters, query-vector-db with the knn body, compute reading the document) pointed
    at the local OpenSearch-speaking server through secrets: sluice run creates the index, the
    sink indexes each document, the query answers with the nearest one's content."""
    suffix = uuid.uuid4().hex[:8]
    names = {k: f"{k}-{suffix}" for k in ("vectors", "questions", "answers")}
    with FakeOpenSearch(password=SECRET) as fake:
        instance = tmp_path / "instance.yaml"
        instance.write_text(
            "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
            f"      admin: {{bootstrap.servers: '{kafka_bootstrap}'}}\n"
        )
        secrets = tmp_path / "secrets.yaml"
        secrets.write_text(
            "secrets:\n  - id: opensearch\n    data:\n      username: admin\n"
            f"      password: {SECRET}\n      host: 127.0.0.1\n      port: '{fake.port}'\n"
            "      https: 'false'\n      region: ''\n"
        )
        root = tmp_path / "app"
        root.mkdir()
        (root / "configuration.yaml").write_text(CONFIGURATION)
        (root / "write.yaml").write_text(WRITE.format(**names))
        (root / "query.yaml").write_text(QUERY.format(**names))
        app = load_application(root, instance=instance, secrets=secrets)
        settings = RunSettings(
            app_dir=root,
            instance=instance,
            secrets=secrets,
            gateway_port=free_port(),
            state_dir=tmp_path / "state",
        )
        documents = {"a": ([1.0, 0.0, 0.0], "about apples"), "b": ([0.0, 1.0, 0.0], "about boats")}
        async with run_application(app, settings) as running:
            assert all(worker.running for worker in running.workers), running.workers
            assert fake.indexes["langstream-index"]["mappings"]["properties"]["content"] == {
                "type": "text"
            }
            async with Producer(KafkaSettings(kafka_bootstrap)) as producer:
                for key, (vector, text) in documents.items():
                    value = json.dumps({"embeddings": vector, "document": text})
                    await producer.send(names["vectors"], Record(value, key=key), source="/t")
                deadline = asyncio.get_running_loop().time() + 60
                while len(fake.documents("langstream-index")) < 2:
                    assert asyncio.get_running_loop().time() < deadline, fake.requests[-3:]
                    await asyncio.sleep(0.2)
                question = json.dumps({"embeddings": [0.1, 0.9, 0.0]})
                await producer.send(names["questions"], Record(question), source="/t")
            [answer] = await read_all(kafka_bootstrap, names["answers"], 1, within=60)
        assert answer.record.value == "about boats"
