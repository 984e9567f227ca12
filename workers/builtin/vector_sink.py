"""LangStream's ``vector-db-sink``: on a ``jdbc`` datasource each record written as a table row;
on a vector database reached over HTTP, by the writer of its kind (:mod:`~.datasources.kinds`).

``table-name`` is the table; ``fields`` lists its columns, each with the ``expression`` that
gives the value from the record (``value.text``, ``fn:toListOfFloat(value.embeddings)``...);
those with ``primary-key: true`` identify the row. A record is written by key
(:class:`~workers.builtin.datasources.tables.TableWriter`): inserted, or the row of its key
updated, so a record written again after a redelivery leaves one row. A record whose value is
null deletes the row of its key. A list of numbers goes into a pgvector ``vector`` column (or a
``real[]``, ``double precision[]``...) as it is.

Configuration and datasource problems stop the worker at ``start``: a service other than
``jdbc``, no ``table-name``, no field with ``primary-key``, a name that is not an SQL name, a
database that cannot be reached. A record whose write fails (a missing table, a value of the
wrong type, the database down longer than the pool waits) fails, and the agent's ``errors``
policy decides.
"""

from __future__ import annotations

from typing import Any

from sluice.application.builtin_config import read_configuration
from sluice.expressions import Expression, compile_expression
from sluice.record import Record
from workers.builtin.datasources import (
    DATASOURCE,
    VECTOR_DATABASE,
    DataSourceResourceError,
    PostgresDataSource,
    open_datasource,
    open_vector_writer,
)
from workers.builtin.datasources.tables import TableWriter, check_name
from workers.builtin.records import context_of, to_working

__all__ = ["AGENT_TYPE", "VectorDBSink"]

AGENT_TYPE = "vector-db-sink"


class VectorDBSink:
    """The ``vector-db-sink`` sink on a jdbc datasource (see the module's documentation)."""

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration(AGENT_TYPE, config)
        self.vector_writer = open_vector_writer(AGENT_TYPE, config)
        if self.vector_writer is not None:
            return  # a vector database reached over HTTP: its writer reads its own keys
        self.datasource: PostgresDataSource = open_datasource(
            AGENT_TYPE, config, (DATASOURCE, VECTOR_DATABASE)
        )
        where = f'{AGENT_TYPE} (datasource "{self.datasource.resource}")'
        table = checked["table-name"]
        if not table:
            raise DataSourceResourceError(f"{where}: table-name is required on a jdbc datasource")
        check_name(where, table, table=True)
        keys: list[tuple[str, Expression]] = []
        columns: list[tuple[str, Expression]] = []
        for field in checked["fields"]:
            name = check_name(where, field["name"])
            target = keys if field["primary-key"] else columns
            target.append((name, compile_expression(field["expression"])))
        if not keys:
            raise DataSourceResourceError(
                f"{where}: fields needs at least one field with primary-key: true (rows are "
                "written by key, so that a record written twice leaves one row)"
            )
        self.keys = [expression for _, expression in keys]
        self.columns = [expression for _, expression in columns]
        self.writer = TableWriter(
            self.datasource, table, [n for n, _ in keys], [n for n, _ in columns]
        )

    async def start(self) -> None:
        if self.vector_writer is not None:
            await self.vector_writer.start()
            return
        await self.datasource.start()

    async def close(self) -> None:
        if self.vector_writer is not None:
            await self.vector_writer.close()
            return
        await self.datasource.close()

    async def write(self, record: Record) -> None:
        if self.vector_writer is not None:
            await self.vector_writer.write(record)
            return
        context = context_of(to_working(record))
        keys = [expression.evaluate(context) for expression in self.keys]
        if record.value is None:
            await self.writer.delete(keys)
            return
        await self.writer.write(keys, [expression.evaluate(context) for expression in self.columns])
