"""``vector-db-sink`` on a ``cassandra`` or ``astra`` datasource: each record an ``INSERT`` of one
row, with LangStream's keys for those services.

- ``table-name`` (or ``table``): the table; ``keyspace``: its keyspace (else the table name
  must be ``keyspace.table``).
- ``mapping``: ``column=field`` pairs separated by commas, as the DataStax Kafka sink that
  LangStream ran read them: ``key``, ``value``, ``key.<path>``, ``value.<path>``,
  ``header.<name>`` (a property of the record), or ``now()`` (the time of the write).

A CQL ``INSERT`` is an upsert: a record written again after a redelivery leaves one row, the
same. A record whose mapped non-key columns are all null (a record without a value, or a
tombstone) deletes the row of its key instead, as the Kafka sink did. A list of numbers goes
into a ``vector<float, n>`` column as floats; an object or a list into a ``text`` column as its
JSON text; a text into a number or boolean column is parsed and a number into a text column is
its text (:func:`~workers.builtin.datasources.cql.column_value`), as the Kafka sink converted
them (LangStream's examples map ``chunk_id=value.chunk_id``, a text, to an ``int`` column).

The statements are prepared at the first write (the table may be created after the agent
starts), reading the table's primary key from the driver's metadata.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from collections.abc import Mapping
from typing import Any

from sluice.expressions import Expression, compile_expression
from sluice.record import Record
from workers.builtin.datasources.cassandra import CassandraDataSource, cassandra_settings
from workers.builtin.datasources.cql import column_value
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.records import context_of, to_working

__all__ = ["CassandraWriter", "parse_mapping"]

_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*|"(?:[^"]|"")+"')
_FIELD = re.compile(r"(key|value|header)(\.[A-Za-z0-9_.\-]+)?|now\(\)")


def parse_mapping(where: str, mapping: str) -> list[tuple[str, str]]:
    """(column, Sluice expression) pairs of a Kafka-sink ``mapping``.

    >>> parse_mapping("w", "id=value.id, name=value.name, t=now(), src=header.source")
    [('id', 'value.id'), ('name', 'value.name'), ('t', 'fn:now()'), ('src', 'properties.source')]
    """
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in mapping.split(",")):
        if not item:
            continue
        column, equals, field = (text.strip() for text in item.partition("="))
        if not equals or not _NAME.fullmatch(column) or not _FIELD.fullmatch(field):
            raise DataSourceResourceError(
                f"{where}: mapping entry {item!r} is not column=field (field: key, value, "
                "key.<name>, value.<name>, header.<name> or now())"
            )
        if field == "now()":
            expression = "fn:now()"
        elif field.startswith("header."):
            expression = "properties." + field.removeprefix("header.")
        else:
            expression = field
        pairs.append((column, expression))
    if not pairs:
        raise DataSourceResourceError(f"{where}: mapping is required (column=value.field, ...)")
    return pairs


class CassandraWriter:
    """Writes records as rows of one table (see the module's documentation)."""

    def __init__(self, name: str, resource: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        self.datasource = CassandraDataSource(name, cassandra_settings(name, resource))
        where = f"vector-db-sink ({self.datasource.where})"
        table = str(config.get("table-name") or config.get("table") or "").strip()
        keyspace = str(config.get("keyspace") or "").strip()
        if not table:
            raise DataSourceResourceError(f"{where}: table-name is required")
        if keyspace:
            table = f"{keyspace}.{table}"
        if not all(_NAME.fullmatch(part) for part in table.split(".")) or table.count(".") != 1:
            raise DataSourceResourceError(
                f"{where}: the table {table!r} must be keyspace.table (give keyspace, or "
                "table-name as keyspace.table), each a CQL name"
            )
        self.where = where
        self.keyspace, self.table = table.split(".")
        self.columns: list[tuple[str, Expression]] = [
            (column, compile_expression(text))
            for column, text in parse_mapping(where, str(config.get("mapping") or ""))
        ]
        self._insert = ""
        self._delete = ""
        self._keys: tuple[str, ...] = ()
        self._texts: frozenset[str] = frozenset()
        self._types: dict[str, str] = {}
        """Each mapped column's CQL type (``int``, ``text``, ...), from the table's metadata."""

    async def start(self) -> None:
        await self.datasource.start()

    async def close(self) -> None:
        await self.datasource.close()

    async def write(self, record: Record) -> None:
        if not self._insert:
            await asyncio.to_thread(self._resolve)  # reads the schema: blocking driver calls
        context = context_of(to_working(record))
        values = {column: expression.evaluate(context) for column, expression in self.columns}
        if all(values[c] is None for c in values if c not in self._keys):
            await self.datasource.run(self._delete, [values.get(k) for k in self._keys])
            return
        await self.datasource.run(
            self._insert, [self._bound(column, value) for column, value in values.items()]
        )

    def _bound(self, column: str, value: Any) -> Any:
        if column in self._texts and isinstance(value, dict | list):
            return json.dumps(value)
        kind = self._types.get(column)
        if kind is not None and value is not None:
            try:
                value = column_value(kind, value)
            except ValueError as error:
                raise DataSourceError(
                    f"{self.where}: column {column} ({kind}) of {self.keyspace}.{self.table}: "
                    f"{error}"
                ) from None
        if isinstance(value, datetime.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value

    def _resolve(self) -> None:
        """The statements, from the table's metadata (its primary key and text columns)."""
        cluster = self.datasource.session.cluster
        keyspace = cluster.metadata.keyspaces.get(_folded(self.keyspace))
        table = None if keyspace is None else keyspace.tables.get(_folded(self.table))
        if table is None:
            cluster.refresh_schema_metadata()  # created since the session started
            keyspace = cluster.metadata.keyspaces.get(_folded(self.keyspace))
            table = None if keyspace is None else keyspace.tables.get(_folded(self.table))
        if table is None:
            raise DataSourceError(
                f"{self.where}: table {self.keyspace}.{self.table} does not exist"
            )
        self._keys = tuple(column.name for column in table.primary_key)
        mapped = [_folded(column) for column, _ in self.columns]
        missing = [key for key in self._keys if key not in mapped]
        if missing:
            raise DataSourceError(
                f"{self.where}: mapping gives no value for the primary key column"
                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} of "
                f"{self.keyspace}.{self.table}"
            )
        self._texts = frozenset(
            column
            for column, _ in self.columns
            if (meta := table.columns.get(_folded(column))) is not None
            and meta.cql_type in ("text", "varchar", "ascii")
        )
        self.columns = [(_folded(c), e) for c, e in self.columns]
        self._types = {
            column: str(meta.cql_type)
            for column, _ in self.columns
            if (meta := table.columns.get(column)) is not None
        }
        self._texts = frozenset(_folded(c) for c in self._texts)
        names = ", ".join(_quoted(c) for c, _ in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        target = f"{_quoted(_folded(self.keyspace))}.{_quoted(_folded(self.table))}"
        self._insert = f"INSERT INTO {target} ({names}) VALUES ({marks})"
        where = " AND ".join(f"{_quoted(k)} = ?" for k in self._keys)
        self._delete = f"DELETE FROM {target} WHERE {where}"


def _folded(name: str) -> str:
    """How Cassandra stores a name written in CQL (unquoted names are lowercased)."""
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
