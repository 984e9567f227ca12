"""HerdDB's ``floata`` and ``cosine_similarity`` on the local server: LangStream's chatbot SQL
runs unchanged, in the server's database and in a database created later (from template1)."""

from __future__ import annotations

import math

import psycopg
from psycopg import sql

from sluice.postgres import LocalPostgres
from tests.postgres import table_name

CREATE = """CREATE TABLE {} (
filename TEXT,
chunk_id int,
text TEXT,
embeddings_vector FLOATA,
PRIMARY KEY (filename, chunk_id))"""

SEARCH = (
    "SELECT text, embeddings_vector FROM {} "
    "ORDER BY cosine_similarity(embeddings_vector, CAST(%s as FLOAT ARRAY)) DESC LIMIT 20"
)


async def test_the_chatbot_sql_runs_in_a_new_database(postgres_server: LocalPostgres) -> None:
    database = table_name("herd")
    table = table_name("documents")
    async with await psycopg.AsyncConnection.connect(
        **postgres_server.connection_arguments(), autocommit=True
    ) as connection:
        await connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    arguments = {**postgres_server.connection_arguments(), "dbname": database}
    async with await psycopg.AsyncConnection.connect(**arguments, autocommit=True) as connection:
        await connection.execute(sql.SQL(CREATE).format(sql.Identifier(table)))
        insert = sql.SQL("INSERT INTO {} VALUES (%s, 0, %s, %s)").format(sql.Identifier(table))
        await connection.execute(insert, ["east", "east", [1.0, 0.0]])
        await connection.execute(insert, ["north", "north", [0.0, 2.0]])
        await connection.execute(insert, ["north-east", "north-east", [1.0, 1.0]])
        found = await connection.execute(
            sql.SQL(SEARCH).format(sql.Identifier(table)), [[0.1, 0.9]]
        )
        rows = await found.fetchall()
        cosine = await connection.execute(
            "SELECT cosine_similarity(ARRAY[1, 0]::floata, ARRAY[1, 1]::float8[])"
        )
        row = await cosine.fetchone()
    assert row is not None
    (value,) = row
    # Nearest direction first; the floata column comes back as a list of floats.
    assert rows == [("north", [0.0, 2.0]), ("north-east", [1.0, 1.0]), ("east", [1.0, 0.0])]
    assert math.isclose(value, math.sqrt(0.5), rel_tol=1e-6)


async def test_the_servers_database_has_them_once(postgres_server: LocalPostgres) -> None:
    """Made at start where they are missing (test_server's restart starts a server twice on
    the same data): one function, and a domain over real[] as HerdDB's FLOATA."""
    async with await psycopg.AsyncConnection.connect(
        **postgres_server.connection_arguments()
    ) as connection:
        found = await connection.execute(
            "SELECT count(*) FROM pg_proc WHERE proname = 'cosine_similarity'"
        )
        assert await found.fetchone() == (1,)
        domain = await connection.execute(
            "SELECT format_type(typbasetype, NULL) FROM pg_type WHERE typname = 'floata'"
        )
        assert await domain.fetchone() == ("real[]",)
