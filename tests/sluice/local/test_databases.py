"""The PostgreSQL ``sluice run`` starts for jdbc datasources naming this machine: which
datasources want one, a real server started with the datasource's user, password and database
(and left alone where something listens), and a whole run whose datasource names Docker's
``host.docker.internal`` as LangStream's examples do."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sluice.application import load_application
from sluice.application.model import Application, ResourceSpec
from sluice.kafka import KafkaSettings, Producer
from sluice.local.databases import LocalDatabase, local_databases, wanted_databases
from sluice.local.events import RunEvents
from sluice.local.runner import RunSettings, run_application
from sluice.net import free_port
from sluice.postgres import LocalPostgres
from sluice.record import Record
from tests.postgres import passable_directory, table_name


def app_with(*urls: str, **extra: Any) -> Application:
    resources = tuple(
        ResourceSpec(
            type="datasource",
            id=f"ds{index}",
            configuration={"service": "jdbc", "url": url, **extra},
        )
        for index, url in enumerate(urls)
    )
    return Application(
        name="a", directory=".", topics={}, pipelines=(), gateways=(), resources=resources
    )


def test_which_datasources_want_a_local_server() -> None:
    app = app_with(
        "jdbc:postgresql://localhost:6543/app",
        "jdbc:postgresql://127.0.0.1:6543/other",  # same port: the first one decides
        "jdbc:postgresql://host.docker.internal/",
        "jdbc:postgresql://[::1]:7000/x?sslmode=disable",
        "jdbc:postgresql://db.example:5432/x",
        "jdbc:postgresql://localhost:1,localhost:2/x",
        "jdbc:herddb:server:localhost:7000",
        user="u",
        password="p",
    )
    assert wanted_databases(app) == [
        LocalDatabase(port=6543, user="u", password="p", database="app", resource="ds0"),
        LocalDatabase(port=5432, user="u", password="p", database="u", resource="ds2"),
        LocalDatabase(port=7000, user="u", password="p", database="x", resource="ds3"),
    ]
    assert wanted_databases(app_with("jdbc:postgresql://localhost/")) == [
        LocalDatabase(
            port=5432, user="postgres", password=None, database="postgres", resource="ds0"
        )
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


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_a_server_with_the_datasources_credentials(
    data_dir: Path, postgres_server: LocalPostgres
) -> None:
    port = free_port()
    app = app_with(
        f"jdbc:postgresql://localhost:{port}/appdb",
        f"jdbc:postgresql://127.0.0.1:{postgres_server.port}/postgres",
        user="app",
        password="app-secret",
    )
    told = Told()
    async with (
        local_databases(app, data_dir, told),
        await psycopg.AsyncConnection.connect(
            host="127.0.0.1", port=port, user="app", password="app-secret", dbname="appdb"
        ) as connection,
    ):
        cursor = await connection.execute(
            "SELECT extname FROM pg_extension WHERE extname = 'vector'"
        )
        assert await cursor.fetchall() == [("vector",)]
    assert not listening(port)
    assert listening(postgres_server.port)
    assert told.lines == [
        f'PostgreSQL: 127.0.0.1:{port} (datasource "ds0"; local server with pgvector, stops with '
        "this command)",
        f'PostgreSQL: 127.0.0.1:{postgres_server.port} (datasource "ds1": already listening)',
    ]
    assert (data_dir / str(port) / "data" / "PG_VERSION").exists()


CONFIGURATION = """
configuration:
  resources:
    - type: "datasource"
      name: "JdbcDatasource"
      configuration:
        service: "jdbc"
        driverClass: "org.postgresql.Driver"
        url: "jdbc:postgresql://{host}:{port}/"
        user: "postgres"
        password: "password"
"""

PIPELINE = """
topics:
  - name: "{topic}"
    creation-mode: create-if-not-exists
assets:
  - name: "chat-history-table"
    asset-type: "jdbc-table"
    creation-mode: create-if-not-exists
    config:
      table-name: "chat_history"
      datasource: "JdbcDatasource"
      create-statements:
        - "CREATE TABLE chat_history (session_id TEXT, question TEXT, PRIMARY KEY (session_id))"
pipeline:
  - name: "write-to-history"
    type: "query"
    input: "{topic}"
    configuration:
      datasource: "JdbcDatasource"
      mode: "execute"
      query: "INSERT INTO chat_history(session_id, question) values(?, ?)"
      output-field: "value.command_result"
      fields: ["properties.client_session_id", "value.question"]
"""


def _docker_host_resolves() -> bool:
    try:
        socket.getaddrinfo("host.docker.internal", None)
    except OSError:
        return False
    return True


@pytest.mark.kafka
async def test_sluice_run_starts_postgresql_for_the_datasource(
    data_dir: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    host = "localhost" if _docker_host_resolves() else "host.docker.internal"
    topic = table_name("questions")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "configuration.yaml").write_text(CONFIGURATION.format(host=host, port=port))
    (app_dir / "pipeline.yaml").write_text(PIPELINE.replace("{topic}", topic))
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin: {{bootstrap.servers: '{kafka_bootstrap}'}}\n"
    )
    app = load_application(app_dir, instance=instance)
    settings = RunSettings(
        app_dir=app_dir,
        instance=instance,
        gateway_port=free_port(),
        state_dir=tmp_path / "state",
        postgres_data_dir=data_dir,
    )
    told = Told()
    async with run_application(app, settings, told) as running:
        assert all(worker.running for worker in running.workers), running.workers
        async with Producer(KafkaSettings(kafka_bootstrap)) as producer:
            record = Record(json.dumps({"question": "hi?"}), headers={"client_session_id": "s1"})
            await producer.send(topic, record, source="/test")
        rows: list[tuple[Any, ...]] = []
        deadline = asyncio.get_running_loop().time() + 30
        while not rows and asyncio.get_running_loop().time() < deadline:
            async with await psycopg.AsyncConnection.connect(
                host="127.0.0.1", port=port, user="postgres", password="password", dbname="postgres"
            ) as connection:
                cursor = await connection.execute("SELECT session_id, question FROM chat_history")
                rows = await cursor.fetchall()
            await asyncio.sleep(0.2)
    assert rows == [("s1", "hi?")]
    assert not listening(port)
    assert any(line.startswith(f"PostgreSQL: 127.0.0.1:{port}") for line in told.lines), told.lines
    assert "asset chat-history-table: table chat_history created" in told.lines
