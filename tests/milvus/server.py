"""A real Milvus Lite server (Milvus's gRPC API, the ``milvus-lite`` package) for the tests
that use the ``milvus_server`` fixture: one per session, on a free port of loopback, its data in
a temporary directory. Tests make their own collections (:func:`collection_name`)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.milvus import LocalMilvus

__all__ = ["collection_name", "milvus_resource", "milvus_server"]


@pytest.fixture(scope="session")
async def milvus_server() -> AsyncIterator[LocalMilvus]:
    """One Milvus Lite server for the session."""
    directory = Path(tempfile.mkdtemp(prefix="sluice-milvus-"))
    server = LocalMilvus(directory / "data")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def collection_name(prefix: str = "docs") -> str:
    """A collection name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def milvus_resource(server: LocalMilvus, **extra: object) -> dict[str, object]:
    """A LangStream ``milvus`` resource's configuration for ``server``."""
    return {"service": "milvus", "host": "127.0.0.1", "port": server.port, **extra}
