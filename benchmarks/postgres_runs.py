"""What the datasource scenarios (B4, B5) share: a local PostgreSQL with pgvector for the run,
the table of document chunks LangStream's jdbc examples write, and its rows.

The server is Sluice's embedded one (:class:`sluice.postgres.LocalPostgres`), started in a fresh
temporary folder every account may pass through (as root it runs as an unprivileged account)
and stopped afterwards. Vectors have 384 dimensions, the size of the local embeddings model's.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg

from sluice.postgres import LocalPostgres, LocalPostgresSettings

__all__ = [
    "DIMENSIONS",
    "configuration_yaml",
    "create_table",
    "local_postgres",
    "sql",
    "value_of",
    "vector_of",
]

DIMENSIONS = 384

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
"""


@contextlib.asynccontextmanager
async def local_postgres() -> AsyncIterator[LocalPostgres]:
    """A PostgreSQL server with pgvector on loopback for the block (no password: loopback)."""
    base = _passable_directory()
    try:
        async with LocalPostgres(LocalPostgresSettings(data_dir=base / "pg")) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _passable_directory() -> Path:
    base = Path(tempfile.mkdtemp(prefix="sluice-bench-pg-"))
    base.chmod(0o711)
    return base


def configuration_yaml(server: LocalPostgres) -> str:
    """The application's ``configuration.yaml``: one jdbc datasource on ``server``."""
    return CONFIGURATION.format(url=server.jdbc_url)


async def sql(server: LocalPostgres, statement: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(
        **server.connection_arguments(), autocommit=True
    ) as connection:
        cursor = await connection.execute(statement)
        return await cursor.fetchall() if cursor.description else []


async def create_table(server: LocalPostgres, name: str) -> None:
    """The chunks table of LangStream's jdbc examples, keyed by (filename, chunk_id)."""
    await sql(
        server,
        f"CREATE TABLE {name} (filename text, chunk_id int, text text, "
        f"embeddings_vector vector({DIMENSIONS}), PRIMARY KEY (filename, chunk_id))",
    )


def vector_of(i: int) -> list[float]:
    """Row ``i``'s vector: the same in every variant and every run."""
    rng = random.Random(i)
    return [round(rng.uniform(-1, 1), 6) for _ in range(DIMENSIONS)]


def value_of(i: int) -> dict[str, Any]:
    """Record ``i``'s value: a chunk of one of 50 documents, as the chunking pipelines emit."""
    return {
        "filename": f"doc{i % 50}.txt",
        "chunk_id": i // 50,
        "text": f"chunk {i}: " + "words of a document chunk " * 8,
        "embeddings_vector": vector_of(i),
    }
