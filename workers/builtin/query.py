"""LangStream's ``query`` and ``query-vector-db`` agents: SQL on a datasource, the result written
into the record.

``query`` is a statement with ``?`` parameters, one per expression of ``fields``, evaluated on
the record. With ``mode: query`` (the default) the rows it returns (column name -> value) are
written to ``output-field`` as a list, or with ``only-first`` the first row only (``{}`` when
there is none). With ``mode: execute`` the statement's result is written instead:
``{"count": rows changed}``, and with ``generated-keys`` also ``"generatedKeys"``, the named
columns of the last row changed (``INSERT ... RETURNING`` them). With ``loop-over`` (an
expression giving a list) the statement runs once per element, the fields reading the element as
``record`` (``record.id``; the record's own value is not visible), and the rows of all the runs
are concatenated into one list (in execute mode: the list of the results).

``query-vector-db`` is the same agent; it also accepts a ``vector-database`` resource. Vector
search on PostgreSQL is SQL with pgvector's operators, a list of numbers bound as a vector::

    SELECT text FROM documents ORDER BY embedding <=> ?::vector LIMIT 5

The datasource is opened at ``start`` (:mod:`workers.builtin.datasources`): a configuration, a
resource or a database that cannot be reached stops the worker with the reason. A statement
that fails (bad SQL, a missing table, the database down longer than the pool waits) fails its
record, and the agent's ``errors`` policy decides.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sluice.application.builtin_config import read_configuration
from sluice.expressions import (
    EvaluationContext,
    Expression,
    Predicate,
    compile_expression,
    compile_predicate,
)
from sluice.record import Record
from workers.builtin.datasources import (
    DATASOURCE,
    VECTOR_DATABASE,
    DataSourceError,
    PostgresDataSource,
    QueryDataSource,
    open_query_datasource,
)
from workers.builtin.records import context_of, parse_field_name, set_field, to_record, to_working

__all__ = ["Query", "QueryVectorDB"]


class Query:
    """The ``query`` processor (see the module's documentation)."""

    agent_type: ClassVar[str] = "query"
    accepted: ClassVar[tuple[str, ...]] = (DATASOURCE,)
    when: Predicate | None = None
    loop_over: Expression | None = None

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration(self.agent_type, config)
        when = checked["when"]
        self.when = None if when is None else compile_predicate(when)
        self.query: str = checked["query"]
        self.fields = [compile_expression(text) for text in checked["fields"]]
        self.output_field: str = checked["output-field"]
        parse_field_name(self.output_field)
        self.only_first: bool = checked["only-first"]
        loop_over = checked["loop-over"]
        self.loop_over = None if loop_over is None else compile_expression(loop_over)
        self.execute_mode = checked["mode"] == "execute"
        self.generated_keys: tuple[str, ...] = checked["generated-keys"]
        self.datasource: QueryDataSource = open_query_datasource(
            self.agent_type, config, self.accepted
        )
        if not isinstance(self.datasource, PostgresDataSource):
            return  # JSON queries: each ? takes the next field, extra ones are ignored
        count = self.datasource.prepare(self.query)[1]
        if count != len(self.fields):
            raise DataSourceError(
                f"{self.agent_type}: the query has {count} ? parameter"
                f"{'' if count == 1 else 's'} and fields gives {len(self.fields)} "
                f"expression{'' if len(self.fields) == 1 else 's'}: one per ? is needed"
            )

    async def start(self) -> None:
        await self.datasource.start()

    async def close(self) -> None:
        await self.datasource.close()

    async def process(self, record: Record) -> list[Record]:
        working = to_working(record)
        context = context_of(working)
        if self.when is None or self.when.test(context):
            set_field(working, await self._result(context), self.output_field)
        return [to_record(working, record)]

    async def _result(self, context: EvaluationContext) -> Any:
        if self.loop_over is None:
            return await self._run(context, first=self.only_first)
        items = self.loop_over.evaluate(context)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise DataSourceError(
                f"{self.agent_type}: loop-over {self.loop_over.text!r} must give a list, "
                f"got {type(items).__name__}"
            )
        results: list[Any] = []
        for item in items:
            result = await self._run(EvaluationContext(record=item), first=False)
            if self.execute_mode:
                results.append(result)
            else:
                results.extend(result)
        if self.only_first and not self.execute_mode:
            return results[0] if results else {}
        return results

    async def _run(self, context: EvaluationContext, *, first: bool) -> Any:
        params = [field.evaluate(context) for field in self.fields]
        if self.execute_mode:
            return await self.datasource.execute(self.query, params, self.generated_keys)
        rows = await self.datasource.fetch(self.query, params)
        if first:
            return rows[0] if rows else {}
        return rows


class QueryVectorDB(Query):
    """``query-vector-db``: ``query`` that also takes a ``vector-database`` resource."""

    agent_type = "query-vector-db"
    accepted = (DATASOURCE, VECTOR_DATABASE)
