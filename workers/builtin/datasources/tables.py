"""Rows of one table written by key: what ``vector-db-sink`` does on a jdbc datasource.

A row is written by its primary-key columns, so writing the same record twice (a redelivery
after a crash) leaves one row. When the table has a unique index on exactly those columns (its
primary key, usually) the write is one ``INSERT ... ON CONFLICT (keys) DO UPDATE`` statement;
otherwise it is LangStream's ``UPDATE ... WHERE keys``, then an ``INSERT`` if no row was
updated, in one transaction. A record without a value deletes the row of its key. Which form
applies is looked up once, at the first write (the table may be created after the agent
starts), with the table's pgvector columns: a list of numbers for one of those is sent in
pgvector's text form, which PostgreSQL reads as the column's type, rather than as an array.

Rows are written in batches (:meth:`TableWriter.write_rows`): in order, in one transaction, the
upserts and deletes pipelined with ``executemany``, so a batch costs one commit and a few round
trips instead of one of each per row. A batch that fails on a row is written again row by row,
so that one bad row fails alone.

Names are written into the SQL as given, as LangStream did (so ``documents`` and ``Documents``
are the same table, as in any SQL), and must be SQL names: letters, digits, ``_`` and ``$``, a
``schema.table``, or a ``"quoted name"``.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from psycopg import sql as psql
from psycopg.adapt import Dumper

from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.jdbc import redact
from workers.builtin.datasources.postgres import Connection, PostgresDataSource
from workers.builtin.datasources.sql import bind_value, vector_text

__all__ = ["Row", "TableWriter", "check_name"]

_NAME = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")'
_COLUMN = re.compile(_NAME)
_TABLE = re.compile(rf"{_NAME}(?:\.{_NAME})?")

_UNIQUE_INDEXES = """
SELECT array_agg(a.attname::text) AS columns
FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indpred IS NULL
GROUP BY i.indexrelid
"""

_VECTOR_COLUMNS = """
SELECT attname::text AS name, format_type(atttypid, NULL) AS type, atttypid::int AS oid
FROM pg_attribute
WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped
  AND format_type(atttypid, NULL) IN ('vector', 'halfvec')
"""


class _PackedVector:
    """A list of numbers in pgvector's binary form (dimensions, 0, then big-endian float4s):
    the fastest way to send a vector, about ten times cheaper than its text."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _PackedVectorDumper(Dumper):
    format = pq.Format.BINARY

    def dump(self, obj: _PackedVector) -> bytes:
        return obj.data


def _packed(value: Any) -> _PackedVector | None:
    """``value`` packed for a ``vector`` column when it is a list of numbers, else None."""
    if not isinstance(value, list) or not value or bool in map(type, value):
        return None
    try:
        return _PackedVector(struct.pack(f">HH{len(value)}f", len(value), 0, *value))
    except (struct.error, OverflowError, TypeError):
        return None  # not numbers, or out of float4's range: PostgreSQL says what is wrong


Cursor = psycopg.AsyncCursor[dict[str, Any]]


@dataclass(frozen=True)
class Row:
    """One write: the key columns' values, and the other columns' (None: delete the row)."""

    keys: tuple[Any, ...]
    values: tuple[Any, ...] | None


def check_name(where: str, name: str, *, table: bool = False) -> str:
    """``name`` when it is an SQL name (a table may be ``schema.table``), else an error."""
    pattern = _TABLE if table else _COLUMN
    if not pattern.fullmatch(name):
        what = "table name" if table else "column name"
        raise DataSourceResourceError(
            f"{where}: {what} {name!r} is not an SQL name (letters, digits, _ and $, "
            'or a "quoted name")'
        )
    return name


def _folded(name: str) -> str:
    """How PostgreSQL stores a name written in SQL (unquoted names are lowercased)."""
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


class TableWriter:
    """Writes rows of ``table`` by the ``keys`` columns (see the module's documentation)."""

    def __init__(
        self,
        datasource: PostgresDataSource,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
    ) -> None:
        self.datasource = datasource
        self.table = table
        self.keys = tuple(keys)
        self.columns = tuple(columns)
        self._upsert: psql.Composed | None = None
        self._resolved = False
        self._vectors: tuple[str | None, ...] = ()
        """Per column: its pgvector type (``vector``, ``halfvec``), None for another type."""
        self._dumper: type[Dumper] | None = None
        table_sql = psql.SQL(table)
        key_list = psql.SQL(", ").join(psql.SQL(k) for k in self.keys)
        all_list = psql.SQL(", ").join(psql.SQL(c) for c in (*self.keys, *self.columns))
        marks = psql.SQL(", ").join(psql.Placeholder() for _ in (*self.keys, *self.columns))
        self._insert = psql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            table_sql, all_list, marks
        )
        self._where = psql.SQL(" AND ").join(
            psql.SQL("{} = %s").format(psql.SQL(k)) for k in self.keys
        )
        sets = psql.SQL(", ").join(psql.SQL("{} = %s").format(psql.SQL(c)) for c in self.columns)
        self._update = psql.SQL("UPDATE {} SET {} WHERE {}").format(table_sql, sets, self._where)
        self._delete = psql.SQL("DELETE FROM {} WHERE {}").format(table_sql, self._where)
        self._exists = psql.SQL("SELECT 1 FROM {} WHERE {}").format(table_sql, self._where)
        excluded = psql.SQL(", ").join(
            psql.SQL("{} = EXCLUDED.{}").format(psql.SQL(c), psql.SQL(c)) for c in self.columns
        )
        action = (
            psql.SQL("DO UPDATE SET {}").format(excluded)
            if self.columns
            else psql.SQL("DO NOTHING")
        )
        self._on_conflict = psql.SQL("{} ON CONFLICT ({}) {}").format(
            self._insert, key_list, action
        )

    async def write(self, keys: Sequence[Any], values: Sequence[Any]) -> None:
        """Insert or update the row of ``keys`` with ``values`` (one per column)."""
        await self._one(Row(tuple(keys), tuple(values)))

    async def delete(self, keys: Sequence[Any]) -> None:
        """Delete the row of ``keys`` (nothing when there is none)."""
        await self._one(Row(tuple(keys), None))

    async def _one(self, row: Row) -> None:
        [error] = await self.write_rows([row])
        if error is not None:
            raise error

    async def write_rows(self, rows: Sequence[Row]) -> list[DataSourceError | None]:
        """Write ``rows`` in order, in one transaction: what each row's write gave (None: it is
        written).

        When the transaction fails on a row (a value of the wrong type, a vector of another
        dimension), it is rolled back and the rows are written again one by one, each in its
        own transaction, so that only the bad rows fail. When the database itself fails (the
        connection lost, a statement timeout, no connection in time: psycopg's
        ``OperationalError``), every row fails with one :class:`DataSourceError`, raised.
        """
        if not rows:
            return []
        if not self._resolved:
            await self._resolve()
        async with self.datasource.connection() as connection:
            try:
                async with connection.transaction():
                    await self._apply(connection, rows)
                return [None] * len(rows)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as error:
                if len(rows) == 1:
                    return [self._failed(error)]
            results: list[DataSourceError | None] = []
            for row in rows:
                try:
                    async with connection.transaction():
                        await self._apply(connection, [row])
                    results.append(None)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as error:
                    results.append(self._failed(error))
            return results

    def _failed(self, error: psycopg.Error) -> DataSourceError:
        secrets = self.datasource.settings.secrets
        return DataSourceError(f"{self.datasource.where}: {redact(str(error), secrets)}")

    async def _apply(self, connection: Connection, rows: Sequence[Row]) -> None:
        """Run the statements of ``rows`` in order; runs of upserts with ON CONFLICT, and of
        deletes, go as one ``executemany`` (pipelined: one round trip, not one per row)."""
        async with connection.cursor() as cursor:
            if self._dumper is not None:
                cursor.adapters.register_dumper(_PackedVector, self._dumper)
            for deleting, run in itertools.groupby(rows, key=lambda row: row.values is None):
                batch = list(run)
                if deleting:
                    await cursor.executemany(
                        self._delete, [[bind_value(v) for v in row.keys] for row in batch]
                    )
                elif self._upsert is not None:
                    await cursor.executemany(self._upsert, [self._params(row) for row in batch])
                else:
                    for row in batch:
                        await self._update_then_insert(cursor, row)

    def _params(self, row: Row) -> list[Any]:
        """The keys' then the columns' parameters of ``row`` (a vector in pgvector's binary
        form for a ``vector`` column, its text for a ``halfvec``)."""
        assert row.values is not None
        return [
            *(bind_value(v) for v in row.keys),
            *(
                bind_value(v) if kind is None else self._vector(v, kind)
                for v, kind in zip(row.values, self._vectors, strict=True)
            ),
        ]

    def _vector(self, value: Any, kind: str) -> Any:
        if kind == "vector" and self._dumper is not None:
            packed = _packed(value)
            if packed is not None:
                return packed
        return vector_text(value)

    async def _update_then_insert(self, cursor: Cursor, row: Row) -> None:
        """LangStream's write without a unique index on the keys: UPDATE, else INSERT."""
        params = self._params(row)
        key_params, value_params = params[: len(self.keys)], params[len(self.keys) :]
        if self.columns:
            await cursor.execute(self._update, [*value_params, *key_params])
            updated = cursor.rowcount
        else:
            await cursor.execute(self._exists, key_params)
            updated = len(await cursor.fetchall())
        if updated == 0:
            await cursor.execute(self._insert, params)

    async def _resolve(self) -> None:
        """Choose ON CONFLICT when a unique index covers exactly the key columns."""
        wanted = {_folded(k) for k in self.keys}
        async with self.datasource.connection() as connection:
            cursor = await connection.execute(_UNIQUE_INDEXES, [self.table])
            rows = await cursor.fetchall()
            cursor = await connection.execute(_VECTOR_COLUMNS, [self.table])
            vectors = {row["name"]: (row["type"], row["oid"]) for row in await cursor.fetchall()}
            exists = await connection.execute("SELECT to_regclass(%s) AS t", [self.table])
            found = await exists.fetchone()
        if found is None or found["t"] is None:
            raise DataSourceError(f'{self.datasource.where}: table "{self.table}" does not exist')
        if any(set(row["columns"]) == wanted for row in rows):
            self._upsert = self._on_conflict
        self._vectors = tuple(vectors.get(_folded(c), (None, 0))[0] for c in self.columns)
        oids = {oid for kind, oid in vectors.values() if kind == "vector"}
        if oids:
            self._dumper = type("VectorDumper", (_PackedVectorDumper,), {"oid": oids.pop()})
        self._resolved = True
