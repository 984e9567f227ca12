"""The real PostgreSQL server (with pgvector) of the test session, and a fresh table name per
test: the ``postgres_server`` fixture, imported by ``tests/conftest.py``.

The server's directory is a fresh one under the system's temporary directory that every account
may pass through (``0o711``): when the tests run as root, PostgreSQL runs as an unprivileged
account (:mod:`sluice.postgres.server`) that must reach its data directory.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.postgres import LocalPostgres, LocalPostgresSettings

PASSWORD = "pw-" + secrets.token_hex(8)
"""The superuser's password of the session's server: tests check it never shows in a message."""


@pytest.fixture(scope="session")
async def postgres_server() -> AsyncIterator[LocalPostgres]:
    """A running PostgreSQL server on loopback for the session (password :data:`PASSWORD`)."""
    base = passable_directory()
    settings = LocalPostgresSettings(data_dir=base / "pg", password=PASSWORD)
    try:
        async with LocalPostgres(settings) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


def passable_directory() -> Path:
    """A fresh temporary directory every account may pass through (not list)."""
    path = Path(tempfile.mkdtemp(prefix="sluice-test-pg-"))
    path.chmod(0o711)
    return path


def table_name(prefix: str = "t") -> str:
    """A table name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def jdbc_resource(server: LocalPostgres, **extra: object) -> dict[str, object]:
    """A LangStream ``jdbc`` datasource resource's configuration for ``server``."""
    return {
        "service": "jdbc",
        "driverClass": "org.postgresql.Driver",
        "url": server.jdbc_url,
        "user": "postgres",
        "password": PASSWORD,
        **extra,
    }
