"""LangStream's astradb-sink application shape under ``sluice run``, its datasource naming an Astra
database with a token: the secure connect bundle comes from Astra's DevOps API (a fake on
loopback), the session goes through the driver's cloud path (the bundle's metadata service, TLS to
the tests' real Cassandra node), the astra-keyspace asset is made through the API, the table with
CQL, and products sent through the produce gateway land in the table. The YAML files are written
here with the example's keys; only the secrets point at the fakes."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.application import load_application
from sluice.local.assets import AssetError, create_assets, delete_assets
from sluice.local.runner import RunSettings, run_application
from sluice.net import free_port
from tests.cassandra.apps import ASTRADB_SINK
from tests.cassandra.server import (
    PASSWORD,
    USER,
    LocalCassandra,
    cassandra_resource,
    keyspace_name,
    session_certificates,
)
from tests.fakes.astra_devops_server import FakeAstraDevops
from workers.builtin.datasources.cassandra import CassandraDataSource, cassandra_settings

pytestmark = [
    pytest.mark.kafka,
    # The driver's cloud module builds its TLS context with ssl.PROTOCOL_TLS (deprecated).
    pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning"),
]

CONFIGURATION = """
configuration:
  resources:
    - type: "vector-database"
      name: "AstraDatasource"
      configuration:
        service: "astra"
        clientId: "token"
        secret: "${ secrets.astra.token }"
        token: "${ secrets.astra.token }"
        database: "${ secrets.astra.database }"
        environment: "${ secrets.astra.environment }"
"""


GATEWAYS = """
gateways:
  - id: produce-input
    type: produce
    topic: {topic}
"""

SECRETS = """
secrets:
  - id: astra
    data:
      clientId: ""
      secret: ""
      token: "{token}"
      database: "{database}"
      secureBundle: ""
      environment: "{environment}"
"""


@pytest.fixture
def astra(cassandra_server: LocalCassandra) -> Iterator[FakeAstraDevops]:
    with FakeAstraDevops(cassandra_server, session_certificates(), (USER, PASSWORD)) as fake:
        yield fake


def write_app(tmp_path: Path, astra: FakeAstraDevops, keyspace: str, token: str) -> Path:
    topic = f"input-{keyspace}"
    app_dir = tmp_path / "app"
    app_dir.mkdir(exist_ok=True)
    for name, text in (
        ("configuration.yaml", CONFIGURATION),
        ("pipeline.yaml", ASTRADB_SINK.format(topic=topic, keyspace=keyspace)),
        ("gateways.yaml", GATEWAYS.format(topic=topic)),
    ):
        (app_dir / name).write_text(textwrap.dedent(text).lstrip("\n"))
    (tmp_path / "secrets.yaml").write_text(
        SECRETS.format(token=token, database=astra.name, environment=astra.api_url)
    )
    return app_dir


async def select(node: LocalCassandra, query: str) -> list[dict[str, Any]]:
    source = CassandraDataSource("c", cassandra_settings("c", cassandra_resource(node)))
    await source.start()
    try:
        return await source.fetch(query, [])
    finally:
        await source.close()


async def test_the_astradb_sink_shape_through_astras_devops_api(
    tmp_path: Path,
    cassandra_server: LocalCassandra,
    astra: FakeAstraDevops,
    kafka_bootstrap: str,
) -> None:
    keyspace = keyspace_name("langstream")
    app_dir = write_app(tmp_path, astra, keyspace, astra.token)
    secrets, instance = tmp_path / "secrets.yaml", tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin: {{bootstrap.servers: '{kafka_bootstrap}'}}\n"
    )
    app = load_application(app_dir, instance=instance, secrets=secrets)
    assert app.unsupported == ()
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
    rows: list[dict[str, Any]] = []
    async with run_application(app, settings) as running:
        assert all(worker.running for worker in running.workers), running.workers
        url = f"{running.base_url}/api/gateways/produce/default/{app.name}/produce-input"
        async with httpx.AsyncClient(timeout=10) as client:
            for product in products:
                answer = await client.post(url, json={"value": product})
                assert answer.status_code == 200, answer.text
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            rows = await select(cassandra_server, f"SELECT * FROM {keyspace}.products")
            if sorted(r["description"] for r in rows) == ["first, again", "second"]:
                break
            await asyncio.sleep(0.3)
    assert sorted(rows, key=lambda r: r["id"]) == [
        {"id": 1, "name": "A", "description": "first, again"},
        {"id": 2, "name": "B", "description": "second"},
    ]
    calls = [(method, path) for method, path, allowed in astra.requests if allowed]
    assert ("POST", f"/v2/databases/{astra.database_id}/keyspaces/{keyspace}") in calls
    # The assets' datasource and the sink's each downloaded the bundle and asked the metadata
    # service where the node is.
    assert calls.count(("POST", f"/v2/databases/{astra.database_id}/secureBundleURL")) >= 2
    assert len(astra.metadata.served) >= 2

    # The example keeps its assets (no deletion-mode); with deletion-mode: delete the keyspace
    # goes through the API.
    pipeline = app_dir / "pipeline.yaml"
    pipeline.write_text(
        pipeline.read_text().replace(
            "    creation-mode: create-if-not-exists\n    config:\n      keyspace:",
            "    creation-mode: create-if-not-exists\n    deletion-mode: delete\n"
            "    config:\n      keyspace:",
        )
    )
    deleting = load_application(app_dir, instance=instance, secrets=secrets)
    assert await delete_assets(deleting) == [f"lagstream-keyspace: keyspace {keyspace} deleted"]
    assert keyspace not in astra.keyspaces()
    assert ("DELETE", f"/v2/databases/{astra.database_id}/keyspaces/{keyspace}", True) in (
        astra.requests
    )


async def test_a_wrong_token_stops_the_assets_naming_the_datasource(
    tmp_path: Path, astra: FakeAstraDevops
) -> None:
    keyspace = keyspace_name("langstream")
    app_dir = write_app(tmp_path, astra, keyspace, "AstraCS:not-the-token")
    app = load_application(app_dir, secrets=tmp_path / "secrets.yaml")
    with pytest.raises(AssetError) as caught:
        await create_assets(app)
    message = str(caught.value)
    assert 'datasource "AstraDatasource"' in message
    assert "the DevOps API refused the token (HTTP 401)" in message
    assert "not-the-token" not in message
    assert keyspace not in astra.keyspaces()
