"""``sluice deploy`` creating an application's assets and ``sluice delete --assets`` deleting
them, against the real kube-apiserver, the test broker and the real PostgreSQL: the table of a
``jdbc-table`` asset is made from the CLI before the objects are applied (with the datasource's
password from the secrets file), a dry run or ``--skip-assets`` makes none, a failing statement
stops the deploy before any object is applied, and ``sluice delete`` drops the table only when
asked."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from sluice.kafka import KafkaSettings
from sluice.kafka.admin import delete_topics
from sluice.postgres import LocalPostgres
from tests.kube.apiserver import KubeApi
from tests.kube.test_deploy import instance, live, sluice
from tests.postgres import PASSWORD, postgres_server, table_name

__all__ = ["postgres_server"]  # the fixture, for the tests here

pytestmark = pytest.mark.kafka

PIPELINE = """
assets:
  - name: "documents-table"
    asset-type: "jdbc-table"
    creation-mode: create-if-not-exists
    deletion-mode: delete
    config:
      table-name: "{table}"
      datasource: "JdbcDatasource"
      create-statements:
        - "CREATE TABLE {table} (filename text, chunk_id int, text text, PRIMARY KEY (filename, chunk_id))"
      delete-statements:
        - "DROP TABLE {table}"
topics:
  - {{name: "{topic}", creation-mode: create-if-not-exists}}
pipeline:
  - id: write
    type: vector-db-sink
    input: "{topic}"
    configuration:
      datasource: "JdbcDatasource"
      table-name: "{table}"
      fields:
        - {{name: filename, expression: value.filename, primary-key: true}}
        - {{name: chunk_id, expression: value.chunk_id, primary-key: true}}
        - {{name: text, expression: value.text}}
"""

CONFIGURATION = """
configuration:
  resources:
    - type: datasource
      name: JdbcDatasource
      configuration:
        service: jdbc
        driverClass: org.postgresql.Driver
        url: "{url}"
        user: postgres
        password: "${{secrets.postgres.password}}"
"""


async def tables(server: LocalPostgres, name: str) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(
        **server.connection_arguments(), autocommit=True
    ) as connection:
        cursor = await connection.execute("SELECT to_regclass(%s)::text", [name])
        return [row[0] for row in await cursor.fetchall() if row[0] is not None]


def application(tmp_path: Path, server: LocalPostgres, table: str, topic: str) -> list[str]:
    """The application folder (``chunk-store``) and its files' options."""
    app = tmp_path / "chunk-store"
    app.mkdir()
    (app / "pipeline.yaml").write_text(PIPELINE.format(table=table, topic=topic))
    (app / "configuration.yaml").write_text(CONFIGURATION.format(url=server.jdbc_url))
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        yaml.safe_dump({"secrets": [{"id": "postgres", "data": {"password": PASSWORD}}]})
    )
    return [str(app), "-s", str(secrets)]


async def test_deploy_creates_the_assets_and_delete_deletes_them_when_asked(
    kube_api: KubeApi, kafka_bootstrap: str, postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    namespace = f"docs-{uuid.uuid4().hex[:8]}"
    table, topic = table_name("docs"), f"chunks-{uuid.uuid4().hex[:8]}"
    app = application(tmp_path, postgres_server, table, topic)
    files = ["-i", str(instance(tmp_path, kafka_bootstrap, namespace))]
    cluster = ["--kubeconfig", str(kube_api.kubeconfig)]
    try:
        for first in (["--dry-run"], ["--skip-assets"]):  # the dry run on a new namespace
            skipped = sluice("deploy", *app, *files, *cluster, *first)
            assert skipped.returncode == 0, skipped.stderr
            if first == ["--dry-run"]:
                assert f"namespace {namespace}: would be created" in skipped.stderr
                assert "Service/chunk-store" in skipped.stderr, skipped.stderr
                assert " objects would be applied in " in skipped.stderr
            else:  # the dry run created nothing: the namespace is made now
                assert f"namespace {namespace}: created" in skipped.stderr
            assert "asset documents-table" not in skipped.stderr
            assert await tables(postgres_server, table) == []

        deployed = sluice("deploy", *app, *files, *cluster)
        assert deployed.returncode == 0, deployed.stderr
        assert f"asset documents-table: table {table} created" in deployed.stderr
        assert "chunk-store: " in deployed.stderr and " objects applied in " in deployed.stderr
        assert await tables(postgres_server, table) == [table]
        assert PASSWORD not in deployed.stderr + deployed.stdout
        again = sluice("deploy", *app, *files, *cluster)
        assert again.returncode == 0, again.stderr
        assert f"asset documents-table: table {table} is there" in again.stderr

        kept = sluice("delete", "chunk-store", "-n", namespace, *cluster)
        assert kept.returncode == 0, kept.stderr
        assert await tables(postgres_server, table) == [table]  # assets stay unless asked
        assert live(kube_api, namespace, "chunk-store") == {}

        sluice("deploy", *app, *files, *cluster)
        removed = sluice("delete", *app, *files, "-n", namespace, *cluster, "--assets")
        assert removed.returncode == 0, removed.stderr
        assert f"asset documents-table: table {table} deleted" in removed.stderr
        assert await tables(postgres_server, table) == []
        assert live(kube_api, namespace, "chunk-store") == {}

        by_name = sluice("delete", "chunk-store", "-n", namespace, *cluster, "--assets")
        assert by_name.returncode == 1
        assert "--assets needs the application folder" in by_name.stderr
    finally:
        await delete_topics(KafkaSettings(kafka_bootstrap), [topic])


async def test_a_failing_asset_stops_the_deploy_before_any_object(
    kube_api: KubeApi, kafka_bootstrap: str, postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    namespace = f"docs-{uuid.uuid4().hex[:8]}"
    table, topic = table_name("docs"), f"chunks-{uuid.uuid4().hex[:8]}"
    app = application(tmp_path, postgres_server, table, topic)
    pipeline = Path(app[0]) / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("CREATE TABLE", "CREATE TABEL"))
    files = ["-i", str(instance(tmp_path, kafka_bootstrap, namespace))]
    try:
        failed = sluice("deploy", *app, *files, "--kubeconfig", str(kube_api.kubeconfig))
        assert failed.returncode == 1
        assert 'asset "documents-table"' in failed.stderr
        assert "statement 1 of 1 failed" in failed.stderr
        assert PASSWORD not in failed.stderr
        assert live(kube_api, namespace, "chunk-store") == {}
    finally:
        await delete_topics(KafkaSettings(kafka_bootstrap), [topic])
