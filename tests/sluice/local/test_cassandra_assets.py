"""cassandra-keyspace, cassandra-table and astra-keyspace assets on a real Cassandra 5: created
when missing (once, in order), deleted when asked (tables first), failures naming the asset and
never the password; and the loader's checks of their keys."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sluice.application import load_application
from sluice.errors import InvalidApplication
from sluice.kafka import KafkaSettings, Producer
from sluice.local.assets import AssetError, create_assets, delete_assets
from sluice.local.runner import RunSettings, run_application
from sluice.net import free_port
from sluice.record import Record
from tests.cassandra.apps import ASTRADB_SINK
from tests.cassandra.server import (
    PASSWORD,
    LocalCassandra,
    cassandra_resource,
    keyspace_name,
)
from workers.builtin.datasources.cassandra import CassandraDataSource, cassandra_settings

CONFIGURATION = """
configuration:
  resources:
    - type: "vector-database"
      name: "AstraDatasource"
      configuration:
        service: "cassandra"
        contact-points: "{host}"
        port: {port}
        loadBalancing-localDc: "datacenter1"
        username: "sluice"
        password: "{password}"
"""

ASSETS = """
assets:
  - name: "keyspace"
    asset-type: "{keyspace_type}"
    creation-mode: create-if-not-exists
    deletion-mode: delete
    config:
      keyspace: "{keyspace}"
      datasource: "AstraDatasource"
      create-statements:
        - "CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
      delete-statements:
        - "DROP KEYSPACE {keyspace}"
  - name: "products-table"
    asset-type: "cassandra-table"
    creation-mode: create-if-not-exists
    deletion-mode: delete
    config:
      table-name: "products"
      keyspace: "{keyspace}"
      datasource: "AstraDatasource"
      create-statements:
        - "CREATE TABLE IF NOT EXISTS {keyspace}.products (id int PRIMARY KEY, name TEXT, v vector<float, 2>);"
        - "CREATE CUSTOM INDEX IF NOT EXISTS ON products (v) USING 'StorageAttachedIndex'"
      delete-statements:
        - "DROP TABLE {keyspace}.products"
"""


def configuration(node: LocalCassandra, password: str = PASSWORD) -> str:
    return CONFIGURATION.format(host=node.host, port=node.port, password=password)


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "app"
    root.mkdir(exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


async def tables(node: LocalCassandra) -> dict[str, set[str]]:
    source = CassandraDataSource(
        "c",
        cassandra_settings(
            "c",
            {
                "contact-points": node.host,
                "port": node.port,
                "username": "sluice",
                "password": PASSWORD,
            },
        ),
    )
    await source.start()
    try:
        return await source.keyspaces()
    finally:
        await source.close()


@pytest.mark.java
@pytest.mark.parametrize("keyspace_type", ["cassandra-keyspace", "astra-keyspace"])
async def test_created_once_and_deleted(
    tmp_path: Path, cassandra_server: LocalCassandra, keyspace_type: str
) -> None:
    keyspace = keyspace_name()
    assets = ASSETS.format(keyspace=keyspace, keyspace_type=keyspace_type)
    if keyspace_type == "astra-keyspace":  # no statements: Sluice creates it with CQL
        assets = assets.replace(
            assets[assets.index("      create-statements") : assets.index('  - name: "products')],
            "",
        )
    app = load_application(
        write(
            tmp_path, {"configuration.yaml": configuration(cassandra_server), "assets.yaml": assets}
        )
    )
    assert await create_assets(app) == [
        f"keyspace: keyspace {keyspace} created",
        f"products-table: table {keyspace}.products created",
    ]
    assert (await tables(cassandra_server))[keyspace] == {"products"}
    assert await create_assets(app) == [
        f"keyspace: keyspace {keyspace} is there",
        f"products-table: table {keyspace}.products is there",
    ]
    assert await delete_assets(app) == [
        f"products-table: table {keyspace}.products deleted",
        f"keyspace: keyspace {keyspace} deleted",
    ]
    assert keyspace not in await tables(cassandra_server)
    assert await delete_assets(app) == [
        f"products-table: table {keyspace}.products is not there",
        f"keyspace: keyspace {keyspace} is not there",
    ]


@pytest.mark.java
async def test_failures_name_the_asset(tmp_path: Path, cassandra_server: LocalCassandra) -> None:
    keyspace = keyspace_name()
    only_table = ASSETS.format(keyspace=keyspace, keyspace_type="cassandra-keyspace")
    only_table = only_table[only_table.index('  - name: "products') :]
    app = load_application(
        write(
            tmp_path,
            {
                "configuration.yaml": configuration(cassandra_server),
                "assets.yaml": "assets:\n" + only_table,
            },
        )
    )
    with pytest.raises(AssetError, match=f"the keyspace {keyspace} does not exist"):
        await create_assets(app)
    broken = ASSETS.format(keyspace=keyspace, keyspace_type="cassandra-keyspace").replace(
        "vector<float, 2>", "vector<nothing, 2>"
    )
    app = load_application(
        write(
            tmp_path, {"configuration.yaml": configuration(cassandra_server), "assets.yaml": broken}
        )
    )
    with pytest.raises(
        AssetError, match=r'asset "products-table" \(assets.yaml\): statement 1 of 2 failed: '
    ) as caught:
        await create_assets(app)
    assert PASSWORD not in str(caught.value)
    assert await delete_assets(app) == [
        f"products-table: table {keyspace}.products is not there",
        f"keyspace: keyspace {keyspace} deleted",
    ]
    wrong = load_application(
        write(
            tmp_path,
            {"configuration.yaml": configuration(cassandra_server, "bad"), "assets.yaml": broken},
        )
    )
    with pytest.raises(AssetError, match='datasource "AstraDatasource"'):
        await create_assets(wrong)


def test_the_loader_checks_their_keys(tmp_path: Path) -> None:
    assets = """
    assets:
      - name: "t"
        asset-type: "cassandra-table"
        creation-mode: create-if-not-exists
        config:
          datasource: "AstraDatasource"
          table-name: "products"
    """
    with pytest.raises(InvalidApplication) as caught:
        load_application(write(tmp_path, {"assets.yaml": assets}))
    message = str(caught.value)
    assert "keyspace" in message and "create-statements" in message


SINK_CONFIGURATION = """
configuration:
  resources:
    - type: "vector-database"
      name: "AstraDatasource"
      configuration:
        service: "cassandra"
        contact-points: "${ secrets.cassandra.host }"
        port: "${ secrets.cassandra.port }"
        loadBalancing-localDc: "datacenter1"
        username: "${ secrets.cassandra.username }"
        password: "${ secrets.cassandra.password }"
"""

SECRETS = """
secrets:
  - id: cassandra
    data:
      host: "{host}"
      port: "{port}"
      username: "sluice"
      password: "{password}"
"""


@pytest.mark.kafka
async def test_the_astradb_sink_shape_under_sluice_run(
    tmp_path: Path, cassandra_server: LocalCassandra, kafka_bootstrap: str
) -> None:
    """LangStream's astradb-sink application (an astra-keyspace and a cassandra-table asset, a
    vector-db-sink with a mapping) pointed at the local Cassandra through secrets: sluice run
    creates the keyspace and the table, then the sink writes each product once."""
    keyspace = keyspace_name("langstream")
    topic = f"input-{keyspace}"
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin: {{bootstrap.servers: '{kafka_bootstrap}'}}\n"
    )
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        SECRETS.format(host=cassandra_server.host, port=cassandra_server.port, password=PASSWORD)
    )
    app_dir = write(
        tmp_path,
        {
            "configuration.yaml": SINK_CONFIGURATION,
            "pipeline.yaml": ASTRADB_SINK.format(keyspace=keyspace, topic=topic),
        },
    )
    app = load_application(app_dir, instance=instance, secrets=secrets)
    settings = RunSettings(
        app_dir=app_dir,
        instance=instance,
        secrets=secrets,
        gateway_port=free_port(),
        state_dir=tmp_path / "state",
    )
    products = [
        {"id": 1, "name": "A", "description": "first"},
        {"id": 2, "name": "B", "description": "second"},
        {"id": 1, "name": "A", "description": "first, again"},
    ]
    async with run_application(app, settings) as running:
        assert all(worker.running for worker in running.workers), running.workers
        async with Producer(KafkaSettings(kafka_bootstrap)) as producer:
            for product in products:
                await producer.send(topic, Record(json.dumps(product)), source="/test")
        deadline = asyncio.get_running_loop().time() + 60
        rows: list[dict[str, Any]] = []
        while asyncio.get_running_loop().time() < deadline:
            rows = await select(cassandra_server, f"SELECT * FROM {keyspace}.products")
            if sorted(r["description"] for r in rows) == ["first, again", "second"]:
                break
            await asyncio.sleep(0.3)
    assert sorted(rows, key=lambda r: r["id"]) == [
        {"id": 1, "name": "A", "description": "first, again"},
        {"id": 2, "name": "B", "description": "second"},
    ]


async def select(node: LocalCassandra, query: str) -> list[dict[str, Any]]:
    source = CassandraDataSource("c", cassandra_settings("c", cassandra_resource(node)))
    await source.start()
    try:
        return await source.fetch(query, [])
    finally:
        await source.close()
