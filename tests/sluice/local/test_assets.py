"""jdbc-table assets on the real PostgreSQL: created when missing (once), deleted when asked,
failures naming the asset and the statement, and ``sluice run`` creating the table before its
workers write to it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.application import load_application
from sluice.kafka import KafkaSettings, Producer
from sluice.local.assets import AssetError, create_assets, delete_assets
from sluice.local.runner import RunSettings, run_application
from sluice.net import free_port
from sluice.postgres import LocalPostgres
from sluice.record import Record
from tests.postgres import PASSWORD, table_name
from tests.sluice.application.conftest import WriteApp

CONFIGURATION = """
configuration:
  resources:
    - type: "datasource"
      name: "JdbcDatasource"
      configuration:
        service: "jdbc"
        driverClass: "org.postgresql.Driver"
        url: "{url}"
        user: "postgres"
        password: "{password}"
"""

ASSETS = """
assets:
  - name: "table"
    asset-type: "jdbc-table"
    creation-mode: create-if-not-exists
    deletion-mode: delete
    config:
      table-name: "{table}"
      datasource: "JdbcDatasource"
      create-statements:
        - "CREATE TABLE {table} (id text PRIMARY KEY, embedding vector(3))"
        - "CREATE INDEX ON {table} USING hnsw (embedding vector_cosine_ops)"
      delete-statements:
        - "DROP TABLE {table}"
"""


def configuration(server: LocalPostgres) -> str:
    return CONFIGURATION.format(url=server.jdbc_url, password=PASSWORD)


async def tables(server: LocalPostgres, name: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(**server.connection_arguments()) as conn:
        cursor = await conn.execute("SELECT tablename FROM pg_tables WHERE tablename = %s", [name])
        return await cursor.fetchall()


@pytest.fixture
def write_app(tmp_path: Path) -> WriteApp:
    def write(files: dict[str, str], name: str = "my-app") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for relative, text in files.items():
            (root / relative).write_text(text.lstrip("\n"), encoding="utf-8")
        return root

    return write


async def test_created_once_and_deleted(
    write_app: WriteApp, postgres_server: LocalPostgres
) -> None:
    table = table_name("assets")
    app = load_application(
        write_app(
            {
                "configuration.yaml": configuration(postgres_server),
                "assets.yaml": ASSETS.replace("{table}", table),
            }
        )
    )
    assert await create_assets(app) == [f"table: table {table} created"]
    assert await tables(postgres_server, table) == [(table,)]
    assert await create_assets(app) == [f"table: table {table} is there"]
    assert await delete_assets(app) == [f"table: table {table} deleted"]
    assert await tables(postgres_server, table) == []
    assert await delete_assets(app) == [f"table: table {table} is not there"]


async def test_failures_name_the_asset(write_app: WriteApp, postgres_server: LocalPostgres) -> None:
    table = table_name("broken")
    broken = ASSETS.replace("{table}", table).replace("USING hnsw", "USING nothing")
    app = load_application(
        write_app({"configuration.yaml": configuration(postgres_server), "assets.yaml": broken})
    )
    with pytest.raises(
        AssetError, match=r'asset "table" \(assets.yaml\): statement 2 of 2 failed: '
    ) as caught:
        await create_assets(app)
    assert 'access method "nothing" does not exist' in str(caught.value)
    assert PASSWORD not in str(caught.value)
    elsewhere = load_application(
        write_app(
            {"assets.yaml": ASSETS.replace("{table}", table)},
            name="no-resource",
        )
    )
    with pytest.raises(AssetError, match=r'datasource "JdbcDatasource" is not a resource'):
        await create_assets(elsewhere)


SINK = """
topics:
  - name: "{inp}"
    creation-mode: create-if-not-exists
pipeline:
  - name: "write"
    type: "vector-db-sink"
    input: "{inp}"
    configuration:
      datasource: "JdbcDatasource"
      table-name: "{table}"
      fields:
        - {name: "id", expression: "value.id", primary-key: true}
        - {name: "embedding", expression: "value.embedding"}
"""


@pytest.mark.kafka
async def test_sluice_run_creates_the_table_before_the_workers(
    write_app: WriteApp,
    postgres_server: LocalPostgres,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    table = table_name("run")
    topic = f"in-{table}"
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin: {{bootstrap.servers: '{kafka_bootstrap}'}}\n"
    )
    app_dir = write_app(
        {
            "configuration.yaml": configuration(postgres_server),
            "assets.yaml": ASSETS.replace("{table}", table),
            "pipeline.yaml": SINK.replace("{inp}", topic).replace("{table}", table),
        }
    )
    app = load_application(app_dir, instance=instance)
    settings = RunSettings(
        app_dir=app_dir, instance=instance, gateway_port=free_port(), state_dir=tmp_path / "state"
    )
    async with run_application(app, settings) as running:
        assert all(worker.running for worker in running.workers), running.workers
        async with Producer(KafkaSettings(kafka_bootstrap)) as producer:
            await producer.send(
                topic, Record(json.dumps({"id": "a", "embedding": [1, 2, 3]})), source="/test"
            )
        deadline = asyncio.get_running_loop().time() + 30
        rows: list[tuple[Any, ...]] = []
        while not rows and asyncio.get_running_loop().time() < deadline:
            async with await psycopg.AsyncConnection.connect(
                **postgres_server.connection_arguments()
            ) as conn:
                cursor = await conn.execute(f"SELECT id, embedding::text FROM {table}")
                rows = await cursor.fetchall()
            await asyncio.sleep(0.2)
    assert rows == [("a", "[1,2,3]")]
