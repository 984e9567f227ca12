"""The Cassandra node ``sluice run`` starts for cassandra datasources naming this machine: which
datasources want one, the error without Java, and a whole run whose datasource names a free
port on localhost (assets created, a vector-db-sink writing, the node stopped at the end and its
data kept for the next run)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.application import load_application
from sluice.application.model import Application, ResourceSpec
from sluice.cassandra import LocalCassandraError
from sluice.kafka import KafkaSettings, Producer
from sluice.local.cassandra import LocalCassandraWanted, local_cassandra, wanted_cassandra
from sluice.local.events import RunEvents
from sluice.local.runner import RunSettings, run_application
from sluice.net import free_port
from sluice.record import Record
from tests.cassandra.server import keyspace_name
from tests.postgres import passable_directory
from workers.builtin.datasources.cassandra import CassandraDataSource, cassandra_settings


def app_with(*configurations: dict[str, Any]) -> Application:
    resources = tuple(
        ResourceSpec(type="datasource", id=f"ds{index}", configuration=configuration)
        for index, configuration in enumerate(configurations)
    )
    return Application(
        name="a", directory=".", topics={}, pipelines=(), gateways=(), resources=resources
    )


def test_which_datasources_want_a_local_node() -> None:
    app = app_with(
        {"service": "cassandra", "contact-points": "localhost", "port": 9142, "username": "u",
         "password": "p"},
        {"service": "cassandra", "contact-points": "127.0.0.1", "port": "9142"},  # same port
        {"service": "cassandra", "contact-points": ["::1", "localhost"], "clientId": "c",
         "secret": "s"},
        {"service": "cassandra", "contact-points": "localhost,db.example"},
        {"service": "cassandra", "contact-points": "db.example", "port": 9043},
        {"service": "astra", "contact-points": "localhost", "port": 9044},
        {"service": "cassandra", "secureBundle": "UEsFBg=="},
        {"service": "cassandra", "contact-points": "localhost", "port": 9045, "username": "u"},
    )  # fmt: skip
    assert wanted_cassandra(app) == [
        LocalCassandraWanted(port=9142, user="u", password="p", resource="ds0"),
        LocalCassandraWanted(port=9042, user="c", password="s", resource="ds2"),
        LocalCassandraWanted(port=9045, user=None, password=None, resource="ds7"),
    ]


class Told(RunEvents):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def done(self, what: str) -> None:
        self.lines.append(what)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = passable_directory()
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_no_java_is_a_clear_error(data_dir: Path) -> None:
    port = free_port()
    app = app_with({"service": "cassandra", "contact-points": "localhost", "port": port})
    with pytest.raises(LocalCassandraError) as caught:
        async with local_cassandra(app, data_dir, Told(), java_home=data_dir / "no-jdk"):
            pass
    message = str(caught.value)
    assert f'datasource "ds0" (port {port})' in message
    assert "Java was not found" in message and "JAVA_HOME" in message


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


CONFIGURATION = """
configuration:
  resources:
    - type: "vector-database"
      name: "CassandraDatasource"
      configuration:
        service: "cassandra"
        contact-points: "localhost"
        port: {port}
        loadBalancing-localDc: "datacenter1"
        username: "${{ secrets.cassandra.username }}"
        password: "${{ secrets.cassandra.password }}"
"""

SECRETS = """
secrets:
  - id: cassandra
    data:
      username: "app"
      password: "{password}"
"""

PIPELINE = """
topics:
  - name: "{topic}"
    creation-mode: create-if-not-exists
assets:
  - name: "keyspace"
    asset-type: "cassandra-keyspace"
    creation-mode: create-if-not-exists
    config:
      keyspace: "{keyspace}"
      datasource: "CassandraDatasource"
      create-statements:
        - "CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
  - name: "products-table"
    asset-type: "cassandra-table"
    creation-mode: create-if-not-exists
    config:
      table-name: "products"
      keyspace: "{keyspace}"
      datasource: "CassandraDatasource"
      create-statements:
        - "CREATE TABLE IF NOT EXISTS {keyspace}.products (id int PRIMARY KEY, name TEXT);"
pipeline:
  - name: "write"
    type: "vector-db-sink"
    input: "{topic}"
    configuration:
      datasource: "CassandraDatasource"
      table-name: "products"
      keyspace: "{keyspace}"
      mapping: "id=value.id,name=value.name"
"""


async def rows(port: int, password: str, query: str) -> list[dict[str, Any]]:
    settings = cassandra_settings(
        "c",
        {"contact-points": "127.0.0.1", "port": port, "username": "app", "password": password},
    )
    source = CassandraDataSource("c", settings)
    await source.start()
    try:
        return await source.fetch(query, [])
    finally:
        await source.close()


@pytest.mark.kafka
async def test_sluice_run_starts_cassandra_for_the_datasource(
    data_dir: Path, kafka_bootstrap: str, cassandra_jars_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    password = "pw-" + keyspace_name()
    keyspace = keyspace_name("run")
    topic = f"products-{keyspace}"
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=port))
    (app_dir / "pipeline.yaml").write_text(PIPELINE.format(topic=topic, keyspace=keyspace))
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(SECRETS.format(password=password))
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin: {{bootstrap.servers: '{kafka_bootstrap}'}}\n"
    )
    app = load_application(app_dir, instance=instance, secrets=secrets)
    settings = RunSettings(
        app_dir=app_dir,
        instance=instance,
        secrets=secrets,
        gateway_port=free_port(),
        state_dir=tmp_path / "state",
        postgres_data_dir=data_dir,
    )
    told = Told()
    found: list[dict[str, Any]] = []
    async with run_application(app, settings, told) as running:
        assert all(worker.running for worker in running.workers), running.workers
        async with Producer(KafkaSettings(kafka_bootstrap)) as producer:
            for product in ({"id": 1, "name": "A"}, {"id": 2, "name": "B"}):
                await producer.send(topic, Record(json.dumps(product)), source="/test")
        deadline = asyncio.get_running_loop().time() + 60
        while len(found) < 2 and asyncio.get_running_loop().time() < deadline:
            found = await rows(port, password, f"SELECT id, name FROM {keyspace}.products")
            await asyncio.sleep(0.3)
    assert sorted(found, key=lambda r: r["id"]) == [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}]
    assert not listening(port)
    assert (
        f'Cassandra: 127.0.0.1:{port} (datasource "CassandraDatasource"; local Cassandra 5 '
        "node, stops with this command)"
    ) in told.lines
    assert f"asset products-table: table {keyspace}.products created" in told.lines
    assert password not in "\n".join(told.lines)
    assert (data_dir / f"cassandra-{port}" / "node" / "data").is_dir()
    async with local_cassandra(app, data_dir, Told()):  # the next run finds the rows
        again = await rows(port, password, f"SELECT id, name FROM {keyspace}.products")
    assert len(again) == 2
