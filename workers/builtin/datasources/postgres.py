"""A ``jdbc`` datasource on PostgreSQL: a pool of psycopg connections and the statements the
agents run.

Each agent opens its own pool (:meth:`PostgresDataSource.start`, up to ``max-connections``
connections, one kept open): the first connection is made at start, so a database that cannot be
reached stops the worker with the reason. A connection is checked each time it is taken from the
pool, so after the database restarts the broken ones are dropped and new ones made (the pool's
retries give up after two seconds, and the next statement tries again at once); a statement
waits up to ``connection-timeout-seconds`` for a connection, then fails its record (the
``errors`` policy retries it, or not). Statements run in autocommit, as LangStream ran them.

Every message names the datasource and the database (``postgresql://host:port/db``) and never
its password: psycopg's own messages carry none, and :func:`~.jdbc.redact` is applied anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg import sql as psql
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.rows import dict_row
from psycopg.types import TypeInfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from sluice.net import LOOPBACK
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.jdbc import DOCKER_HOST, JdbcSettings, redact
from workers.builtin.datasources.sql import bind_value, json_value, parse_vector, to_psycopg

__all__ = ["PostgresDataSource"]

_log = logging.getLogger(__name__)

Connection = psycopg.AsyncConnection[dict[str, Any]]

_RECONNECT_GIVE_UP = 2.0


class _VectorLoader(Loader):
    """pgvector's ``vector`` (text form) as a list of floats, digits as the server wrote them."""

    def load(self, data: Buffer) -> list[float]:
        return parse_vector(bytes(data).decode("ascii"))


async def _configure(connection: Connection) -> None:
    """Each new connection: autocommit, and pgvector's types when the database has them."""
    await connection.set_autocommit(True)
    for name in ("vector", "halfvec"):
        info = await TypeInfo.fetch(connection, name)
        if info is not None:
            connection.adapters.register_loader(info.oid, _VectorLoader)


async def _this_machine(arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` with Docker's ``host.docker.internal`` as 127.0.0.1 where the name does not
    resolve: it names the machine running the containers, and nothing runs in one here
    (LangStream's examples for ``langstream docker run`` use it)."""
    hosts = str(arguments.get("host") or "").split(",")
    if DOCKER_HOST not in hosts:
        return arguments
    try:
        await asyncio.get_running_loop().getaddrinfo(DOCKER_HOST, None)
    except OSError:
        arguments["host"] = ",".join(LOOPBACK if h == DOCKER_HOST else h for h in hosts)
    return arguments


class PostgresDataSource:
    """The database of one ``jdbc`` datasource resource, for one agent."""

    def __init__(self, resource: str, settings: JdbcSettings) -> None:
        self.resource = resource
        self.settings = settings
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._queries: dict[str, tuple[str, int]] = {}

    @property
    def where(self) -> str:
        return f'datasource "{self.resource}" ({self.settings.shown})'

    async def start(self) -> None:
        """Open the pool and its first connection; :class:`DataSourceResourceError` when the
        database cannot be reached within ``connection-timeout-seconds``."""
        if self.settings.ignored:
            _log.warning(
                "%s: keys %s mean nothing to PostgreSQL and are ignored",
                self.where,
                ", ".join(self.settings.ignored),
            )
        arguments = await _this_machine(dict(self.settings.arguments))
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            kwargs={**arguments, "row_factory": dict_row},
            min_size=1,
            max_size=self.settings.max_connections,
            open=False,
            configure=_configure,
            check=AsyncConnectionPool.check_connection,
            timeout=self.settings.connection_timeout,
            # The pool's retries of a failed connection back off exponentially: giving up after
            # a short while lets the next statement start a fresh attempt at once, so a
            # database back after a restart is used within a second, not after the backoff.
            reconnect_timeout=_RECONNECT_GIVE_UP,
            name=f"datasource {self.resource}",
        )
        try:
            await pool.open(wait=True, timeout=self.settings.connection_timeout)
        except PoolTimeout:
            reason = await self._why_unreachable()
            await pool.close()
            raise DataSourceResourceError(
                f"{self.where}: cannot connect within "
                f"{self.settings.connection_timeout:g} s: {reason}"
            ) from None
        self._pool = pool

    async def _why_unreachable(self) -> str:
        """The reason one connection attempt gives (the pool only says it timed out)."""
        arguments = {**self.settings.arguments, "connect_timeout": 5}
        try:
            connection = await psycopg.AsyncConnection.connect(**arguments)
        except psycopg.Error as error:
            return self._redact(str(error))
        await connection.close()
        return "the connection works now; it did not in time"

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection of the pool; psycopg's errors inside become :class:`DataSourceError`."""
        if self._pool is None:
            raise DataSourceError(f"{self.where} used before start")
        try:
            async with self._pool.connection() as connection:
                yield connection
        except PoolTimeout:
            raise DataSourceError(
                f"{self.where}: no connection within {self.settings.connection_timeout:g} s "
                "(is the database up?)"
            ) from None
        except psycopg.Error as error:
            raise DataSourceError(f"{self.where}: {self._redact(str(error))}") from None

    def prepare(self, query: str) -> tuple[str, int]:
        """``query`` in psycopg's form and its number of ``?`` parameters (kept per text)."""
        converted = self._queries.get(query)
        if converted is None:
            converted = self._queries[query] = to_psycopg(query)
        return converted

    async def fetch(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """The rows ``query`` returns (column name -> JSON value); none for a statement that
        returns no rows (LangStream failed those)."""
        text = self._bindable(query, params)
        async with self.connection() as connection:
            cursor = await connection.execute(text, [bind_value(p) for p in params])
            if cursor.description is None:
                return []
            rows = await cursor.fetchall()
        return [{name: json_value(value) for name, value in row.items()} for row in rows]

    async def execute(
        self, query: str, params: Sequence[Any], generated_keys: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Run a statement: ``{"count": rows changed}``, with ``"generatedKeys"`` (the named
        columns of the last row changed, as the JDBC driver returned them) when asked."""
        text = self._bindable(query, params)
        statement: str | psql.Composed = text
        if generated_keys:
            # What the JDBC driver does for prepareStatement(sql, columnNames).
            returning = psql.SQL(", ").join(psql.Identifier(key) for key in generated_keys)
            written = psql.SQL(text.rstrip().rstrip(";"))
            statement = psql.SQL("{} RETURNING {}").format(written, returning)
        async with self.connection() as connection:
            cursor = await connection.execute(statement, [bind_value(p) for p in params])
            count = max(cursor.rowcount, 0)
            if not generated_keys:
                return {"count": count}
            keys: dict[str, Any] = {}
            for row in await cursor.fetchall():
                keys.update({name: json_value(value) for name, value in row.items()})
        return {"count": count, "generatedKeys": keys}

    def _bindable(self, query: str, params: Sequence[Any]) -> str:
        text, count = self.prepare(query)
        if count != len(params):
            raise DataSourceError(
                f"{self.where}: the query has {count} ? parameter{'' if count == 1 else 's'} "
                f"and {len(params)} value{'' if len(params) == 1 else 's'} were given (fields)"
            )
        return text

    def _redact(self, text: str) -> str:
        return redact(text, self.settings.secrets)
