"""An ``astra`` datasource naming its database by name or id with a token: the secure connect
bundle downloaded from Astra's DevOps API (a fake, on loopback) and the session made through the
driver's cloud path (TLS to the tests' real Cassandra node, found through the bundle's metadata
service); and each way the download fails, named with the datasource and never the token."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.net import free_port
from tests.cassandra.server import PASSWORD, USER, LocalCassandra, session_certificates
from tests.fakes.astra_devops_server import FakeAstraDevops
from workers.builtin.datasources.astra_devops import devops_base
from workers.builtin.datasources.cassandra import CassandraDataSource, cassandra_settings
from workers.builtin.datasources.errors import DataSourceResourceError


def test_environments_name_langstreams_apis_or_a_url() -> None:
    assert devops_base("d", None) == "https://api.astra.datastax.com/v2"
    assert devops_base("d", "PROD") == "https://api.astra.datastax.com/v2"
    assert devops_base("d", "dev") == "https://api.dev.cloud.datastax.com/v2"
    assert devops_base("d", "TEST") == "https://api.test.cloud.datastax.com/v2"
    assert devops_base("d", "https://devops.example/v2/") == "https://devops.example/v2"
    with pytest.raises(DataSourceResourceError, match="d: environment must be PROD, DEV, TEST"):
        devops_base("d", "STAGING")


def resource(fake: FakeAstraDevops, **extra: Any) -> dict[str, Any]:
    """The datasource of LangStream's astradb-sink example, on ``fake``."""
    return {
        "service": "astra",
        "clientId": "token",
        "secret": fake.token,
        "token": fake.token,
        "database": fake.name,
        "environment": fake.api_url,
        "connection-timeout-seconds": 10,
        **extra,
    }


async def start_error(config: dict[str, Any]) -> str:
    source = CassandraDataSource("Astra", cassandra_settings("Astra", config))
    with pytest.raises(DataSourceResourceError) as caught:
        await source.start()
    await source.close()
    return str(caught.value)


@pytest.fixture
def api() -> Iterator[FakeAstraDevops]:
    """The DevOps API alone (no node behind it): enough for its errors."""
    with FakeAstraDevops(None, session_certificates()) as fake:
        yield fake


async def test_bundle_download_errors_name_the_datasource(api: FakeAstraDevops) -> None:
    where = f'datasource "Astra": astra database "{api.name}" at {api.api_url}: '
    wrong = await start_error(resource(api, token="AstraCS:wrong-token", secret="x"))
    assert wrong.startswith(where + "listing the databases: the DevOps API refused the token")
    assert "HTTP 401" in wrong and "wrong-token" not in wrong
    assert ("GET", "/v2/databases", False) in api.requests

    by_id = resource(api, database=None, **{"database-id": "0000-missing"})
    message = await start_error(by_id)
    assert "astra database id 0000-missing" in message
    assert "reading the database: there is no such database (HTTP 404)" in message

    missing = await start_error(resource(api, database="nope"))
    assert 'no database named "nope" in this account' in missing

    api.bundle_override = b"PK\x03\x04 but no zip"
    malformed = await start_error(resource(api))
    assert malformed.startswith(where + "the secure connect bundle downloaded (")
    assert "is not a zip holding config.json" in malformed

    api.status = "HIBERNATED"
    assert "the database is HIBERNATED, not ACTIVE" in await start_error(resource(api))
    assert all(api.token not in text for text in (wrong, message, missing, malformed))

    closed = await start_error(resource(api, environment=f"http://127.0.0.1:{free_port()}/v2"))
    assert "listing the databases: cannot reach the DevOps API" in closed


def test_the_database_is_found_by_id_too(api: FakeAstraDevops) -> None:
    settings = cassandra_settings(
        "Astra", resource(api, database=None, **{"database-id": api.database_id})
    )
    assert settings.astra is not None and settings.astra.id == api.database_id


# The driver's cloud module builds its TLS context with ssl.PROTOCOL_TLS (deprecated).
@pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")
@pytest.mark.java
async def test_a_session_through_the_downloaded_bundle(cassandra_server: LocalCassandra) -> None:
    with FakeAstraDevops(cassandra_server, session_certificates(), (USER, PASSWORD)) as fake:
        for config in (
            resource(fake),
            resource(fake, database=None, **{"database-id": fake.database_id}),
        ):
            source = CassandraDataSource("Astra", cassandra_settings("Astra", config))
            await source.start()
            try:
                [row] = await source.fetch("SELECT cluster_name FROM system.local", [])
                assert row == {"cluster_name": "sluice"}
                assert source.session.cluster.cloud is not None  # the cloud (SNI, TLS) path
            finally:
                await source.close()
        assert fake.metadata.served == ["/metadata", "/metadata"]
        assert ("POST", f"/v2/databases/{fake.database_id}/secureBundleURL", True) in (
            fake.requests
        )
        # The metadata service wants the bundle's client certificate.
        url = f"https://127.0.0.1:{fake.metadata.bound_port}/metadata"
        assert not await asyncio.to_thread(answers, url, fake.certificates.ca, None)
        client = (fake.certificates.client_cert, fake.certificates.client_key)
        assert await asyncio.to_thread(answers, url, fake.certificates.ca, client)


def answers(url: str, ca: str, client: tuple[str, str] | None) -> bool:
    """Whether ``url`` answers 200 over TLS trusting ``ca``, with the client certificate."""
    context = ssl.create_default_context(cadata=ca)
    with tempfile.TemporaryDirectory() as folder:
        if client is not None:
            cert, key = Path(folder) / "cert", Path(folder) / "key"
            cert.write_text(client[0])
            key.write_text(client[1])
            context.load_cert_chain(cert, key)
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False
