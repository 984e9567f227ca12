"""The Cassandra 5 node of the tests that use the ``cassandra_server`` fixture: Sluice's own
launcher (:mod:`sluice.cassandra`) in a fresh directory.

The server's jars are resolved into the user cache right after collection when a selected test
needs them (:data:`CASSANDRA_JARS`, called from ``tests/conftest.py``), so a cold download never
runs inside a test. The node runs once per session on free ports; the fixture makes a login role
:data:`USER` with a random password (:data:`PASSWORD`), which tests check never shows in a
message. Its native port also accepts TLS with certificates made for the session
(:func:`session_certificates`), so the fake Astra (:mod:`tests.fakes.astra_devops_server`) can
hand out a secure connect bundle reaching it.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluice.cassandra import (
    VERSION,
    LocalCassandra,
    LocalCassandraSettings,
    NativeTls,
    cassandra_jars,
    jars_cache,
)
from sluice.errors import SluiceError
from tests.built_assets import BuiltAssets, Report

if TYPE_CHECKING:
    # Imported when a node starts: the driver and cryptography take a second to import, and
    # every test session imports this module (tests/conftest.py).
    from tests.fakes.astra_devops_server import BundleCertificates

__all__ = [
    "CASSANDRA_JARS",
    "PASSWORD",
    "USER",
    "VERSION",
    "LocalCassandra",
    "cassandra_jars_dir",
    "cassandra_resource",
    "cassandra_server",
    "keyspace_name",
    "running_cassandra",
    "session_certificates",
]

USER = "sluice"
PASSWORD = "cass-" + secrets.token_hex(8)
"""The login role's password: tests check it never shows in a message or a log."""


def _download(report: Report) -> Path | str:
    report(f"Cassandra {VERSION} jars: {jars_cache()} (downloaded with Maven the first time)")
    try:
        asyncio.run(cassandra_jars())
    except SluiceError as error:
        return str(error)
    return jars_cache()


CASSANDRA_JARS = BuiltAssets("cassandra_jars_dir", _download, "no Cassandra jars for the tests")
"""The server's jars, downloaded right after collection (not inside a test's timeout), only when
a selected test uses the server."""


@pytest.fixture(scope="session")
def cassandra_jars_dir(pytestconfig: pytest.Config) -> Path:
    """The user-cache directory of the server's jars."""
    return CASSANDRA_JARS.directory(pytestconfig)


async def running_cassandra(tls: NativeTls | None = None) -> AsyncIterator[LocalCassandra]:
    """A started node in a fresh directory with the login :data:`USER`, killed and removed
    afterwards (its data goes); ``tls``: its native port accepts TLS too."""
    directory = Path(tempfile.mkdtemp(prefix="sluice-test-cassandra-"))
    node = LocalCassandra(
        LocalCassandraSettings(directory=directory, user=USER, password=PASSWORD, tls=tls)
    )
    try:
        await node.start()
        yield node
    finally:
        await node.stop(kill=True)
        shutil.rmtree(directory, ignore_errors=True)


@functools.cache
def session_certificates() -> BundleCertificates:
    """The certificates of the session's node (its native port's TLS) and of the fake Astra."""
    from tests.fakes.astra_devops_server import BundleCertificates

    return BundleCertificates.make()


@pytest.fixture(scope="session")
async def cassandra_server(cassandra_jars_dir: Path) -> AsyncIterator[LocalCassandra]:
    """One Cassandra node for the session (login :data:`USER` / :data:`PASSWORD`; plain CQL
    and TLS on the same port)."""
    async for node in running_cassandra(session_certificates().native_tls()):
        yield node


def keyspace_name(prefix: str = "ks") -> str:
    """A keyspace name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def cassandra_resource(node: LocalCassandra, **extra: object) -> dict[str, object]:
    """A LangStream ``cassandra`` datasource resource's configuration for ``node``."""
    return {
        "service": "cassandra",
        "contact-points": node.host,
        "port": node.port,
        "loadBalancing-localDc": "datacenter1",
        "username": USER,
        "password": PASSWORD,
        **extra,
    }
