"""``assets`` of pipeline files: jdbc-table read with LangStream's rules, the other types with
their keys checked, mistakes reported with file and line."""

from __future__ import annotations

import pytest

from sluice.application import load_application
from sluice.application.assets import ASSET_TYPES, CREATED
from sluice.application.model import AssetSpec
from sluice.errors import InvalidApplication
from tests.sluice.application.conftest import WriteApp

PIPELINE = """
topics:
  - name: "in"
assets:
  - name: "documents-table"
    asset-type: "jdbc-table"
    creation-mode: create-if-not-exists
    config:
      table-name: "documents"
      datasource: "JdbcDatasource"
      create-statements:
        - "CREATE TABLE documents (id text PRIMARY KEY, v vector(3))"
pipeline:
  - name: "id"
    type: "identity"
    input: "in"
"""

ASSETS = """
assets:
  - id: "gone"
    asset-type: "jdbc-table"
    deletion-mode: delete
    config:
      table-name: "old"
      datasource: "JdbcDatasource"
      create-statements: ["CREATE TABLE old (a int)"]
      delete-statements: ["DROP TABLE old"]
  - name: "keyspace"
    asset-type: "opensearch-index"
    creation-mode: create-if-not-exists
    config: {datasource: "OS", keyspace: "k"}
"""


def test_sluice_creates_every_langstream_asset_type() -> None:
    assert set(CREATED) == set(ASSET_TYPES)


def test_assets_of_every_pipeline_file(write_app: WriteApp) -> None:
    app = load_application(write_app({"pipeline.yaml": PIPELINE, "assets.yaml": ASSETS}))
    by_id = {asset.id: asset for asset in app.assets}
    assert by_id["documents-table"] == AssetSpec(
        id="documents-table",
        name="documents-table",
        asset_type="jdbc-table",
        creation_mode="create-if-not-exists",
        config={
            "table-name": "documents",
            "datasource": "JdbcDatasource",
            "create-statements": ["CREATE TABLE documents (id text PRIMARY KEY, v vector(3))"],
        },
        pipeline_file="pipeline.yaml",
    )
    assert by_id["gone"].deletion_mode == "delete"
    assert by_id["gone"].creation_mode == "none"
    assert by_id["keyspace"].asset_type == "opensearch-index"
    assert any(
        "assets[1].config" in warning and 'unknown key "keyspace"' in warning
        for warning in app.warnings
    ), app.warnings
    assert not any("is not created" in warning for warning in app.warnings)


@pytest.mark.parametrize(
    ("asset", "where", "message"),
    [
        (
            '{name: a, asset-type: "jdbc-table", config: {datasource: d, table-name: t}}',
            "assets[0].config.create-statements",
            "is required",
        ),
        (
            '{name: a, asset-type: "jdbc-table", config: {datasource: d, table-name: t, '
            'create-statements: ["x"], delete-statements: ["y"]}}',
            "assets[0].config.delete-statements",
            "is read only with deletion-mode: delete",
        ),
        (
            '{name: a, asset-type: "jdbc-table", deletion-mode: delete, config: {datasource: d, '
            'table-name: t, create-statements: ["x"]}}',
            "assets[0].config.delete-statements",
            "is required",
        ),
        (
            '{name: a, asset-type: "jdbc-table", config: {table-name: t, create-statements: [""]}}',
            "assets[0].config.datasource",
            "is required",
        ),
        ('{name: a, asset-type: "jdbc-tables"}', "assets[0].asset-type", "must be one of"),
        (
            '{name: a, asset-type: "jdbc-table", creation-mode: always, config: {}}',
            "assets[0].creation-mode",
            "must be one of",
        ),
    ],
)
def test_mistakes(write_app: WriteApp, asset: str, where: str, message: str) -> None:
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app({"assets.yaml": f"assets:\n  - {asset}\n"}))
    problems = [str(problem) for problem in caught.value.problems]
    assert any("assets.yaml:" in p and where in p and message in p for p in problems), problems
