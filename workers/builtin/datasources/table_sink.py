"""``vector-db-sink`` on a ``jdbc`` datasource: records written as table rows, in batches.

``table-name`` is the table; ``fields`` lists its columns, each with the ``expression`` that
gives the value from the record (``value.text``, ``fn:toListOfFloat(value.embeddings)``...);
those with ``primary-key: true`` identify the row. A record is written by key
(:class:`~workers.builtin.datasources.tables.TableWriter`): inserted, or the row of its key
updated, so a record written again after a redelivery leaves one row. A record whose value is
null deletes the row of its key.

Rows are batched (Sluice's keys; LangStream's jdbc writer committed each record on its own):
the rows of up to ``batch-size`` records (default 100) go in one transaction, a partial batch
leaving ``flush-interval`` milliseconds (default 100) after its first row arrived. The worker
writes on two lanes (:data:`LANES`, two connections of the pool); a key always takes the same
lane, and a lane writes its batches one at a time, in the order their rows reached the sink, and
the rows of a batch in that order too, so the last record of a key is the one its row keeps.
The worker lets two batches per lane into the agent at once (``records_in_flight``: one being
written, one filling) and still commits their offsets in input order, so a worker killed in the
middle of a batch loses nothing: the batch's transaction is rolled back and its records, not
committed, are read again and written by key.

A batch that fails on a row (a value of the wrong type, a vector of another dimension) is
written again row by row: only the records of the bad rows fail, and each one's ``errors``
policy decides. When the database fails (unreachable, a statement timeout), every record of the
batch fails with that error, and their policies retry them or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.expressions import Expression, compile_expression
from sluice.record import Record
from workers.builtin.batching import Batcher
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.postgres import PostgresDataSource
from workers.builtin.datasources.tables import Row, TableWriter, check_name
from workers.builtin.records import context_of, to_working

__all__ = ["LANES", "TableSink"]

LANES = 2


class TableSink:
    """Writes records as rows of one table by key, in batches (see the module's documentation).

    ``checked``: the agent's configuration as read against its key table (``table-name``,
    ``fields``, ``batch-size``, ``flush-interval``).
    """

    def __init__(
        self, agent_type: str, datasource: PostgresDataSource, checked: Mapping[str, Any]
    ) -> None:
        self.datasource = datasource
        where = f'{agent_type} (datasource "{datasource.resource}")'
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
        self.writer = TableWriter(datasource, table, [n for n, _ in keys], [n for n, _ in columns])
        self.batch_size = int(checked["batch-size"])
        # A lane writes one batch at a time, in the order its rows arrived; a key always
        # takes the same lane, so its rows are written in order.
        self.lanes: list[Batcher[Row, DataSourceError | None]] = [
            Batcher(
                self.writer.write_rows,
                size=self.batch_size,
                interval=int(checked["flush-interval"]) / 1000,
                concurrency=1,
            )
            for _ in range(LANES)
        ]

    @property
    def records_in_flight(self) -> int:
        """Two batches per lane: one being written while the next one fills. The pull executor
        lets at most half its ``max_in_flight`` (500) records in at once whatever this says, so
        with a larger ``batch-size`` the batches leave after ``flush-interval``, partial."""
        return 2 * self.batch_size * LANES

    async def start(self) -> None:
        await self.datasource.start()

    async def close(self) -> None:
        for lane in self.lanes:
            await lane.close()
        await self.datasource.close()

    async def write(self, record: Record) -> None:
        """Write ``record``'s row with its batch; :class:`DataSourceError` when it fails."""
        context = context_of(to_working(record))
        keys = tuple(expression.evaluate(context) for expression in self.keys)
        values = (
            None
            if record.value is None
            else tuple(expression.evaluate(context) for expression in self.columns)
        )
        lane = self.lanes[hash(repr(keys)) % LANES]
        [error] = await lane.submit([Row(keys, values)])
        if error is not None:
            raise error
