"""opensearch-index, solr-collection and astra-collection assets against local servers speaking
those services' APIs (tests/fakes/): created when missing (once), deleted when asked, failures
naming the asset and never the credential; and the loader's checks of their keys."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sluice.application import load_application
from sluice.errors import InvalidApplication
from sluice.local.assets import AssetError, create_assets, delete_assets
from tests.fakes.astra_server import FakeAstra
from tests.fakes.opensearch_server import FakeOpenSearch
from tests.fakes.solr_server import FakeSolr

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
