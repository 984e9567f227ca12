"""LangStream's ``vector-db-sink``: each record written to the datasource's database by key.

On a ``jdbc`` datasource (PostgreSQL) records become rows of ``table-name``, written in batches
of ``batch-size`` in one transaction each (:mod:`workers.builtin.datasources.table_sink`). The
worker lets the records of two batches into the agent at once (``records_in_flight``) and
still commits their offsets in input order, so a worker killed mid-batch loses no record, and
writes by key leave no duplicate row after the redelivery.

Configuration and datasource problems stop the worker at ``start``: a service other than
``jdbc``, no ``table-name``, no field with ``primary-key``, a name that is not an SQL name, a
database that cannot be reached. A record whose write fails (a missing table, a value of the
wrong type, the database down longer than the pool waits) fails, and the agent's ``errors``
policy decides.
"""

from __future__ import annotations

from typing import Any

from sluice.application.builtin_config import read_configuration
from sluice.record import Record
from workers.agents import Batching
from workers.builtin.datasources import (
    DATASOURCE,
    VECTOR_DATABASE,
    PostgresDataSource,
    VectorWriter,
    open_datasource,
    open_vector_writer,
)
from workers.builtin.datasources.table_sink import TableSink

__all__ = ["AGENT_TYPE", "VectorDBSink"]

AGENT_TYPE = "vector-db-sink"


class VectorDBSink:
    """The ``vector-db-sink`` sink (see the module's documentation)."""

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration(AGENT_TYPE, config)
        writer = open_vector_writer(AGENT_TYPE, config)
        if writer is None:
            datasource = open_datasource(AGENT_TYPE, config, (DATASOURCE, VECTOR_DATABASE))
            assert isinstance(datasource, PostgresDataSource)  # jdbc: the only other service
            writer = TableSink(AGENT_TYPE, datasource, checked)
        self.target: VectorWriter = writer

    @property
    def records_in_flight(self) -> int:
        """The records the worker may let in at once: a batching writer's batches, else one."""
        return self.target.records_in_flight if isinstance(self.target, Batching) else 1

    async def start(self) -> None:
        await self.target.start()

    async def close(self) -> None:
        await self.target.close()

    async def write(self, record: Record) -> None:
        await self.target.write(record)
