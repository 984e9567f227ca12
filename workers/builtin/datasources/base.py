"""What the datasource agents ask of a datasource kind: the seam between ``query`` /
``vector-db-sink`` and each service's module.

A kind gives a :class:`QueryDataSource` (``query``, ``query-vector-db``) and a
:class:`VectorWriter` (``vector-db-sink``); both are made at the agent's ``init`` from the
resource's configuration (bad keys raise :class:`DataSourceResourceError` there), reach the
service at ``start`` and let it go at ``close``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sluice.expressions import Expression, compile_expression
from sluice.record import Record
from workers.builtin.datasources.errors import DataSourceResourceError
from workers.builtin.records import context_of, to_working

__all__ = ["FieldValues", "QueryDataSource", "VectorWriter", "evaluate", "required_text"]


class QueryDataSource(Protocol):
    """A datasource that answers the queries of ``query`` and ``query-vector-db``."""

    resource: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def fetch(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """The rows (mappings of JSON values) the query gives with these parameters."""
        ...

    async def execute(
        self, query: str, params: Sequence[Any], generated_keys: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The result of a statement (``mode: execute``)."""
        ...


class VectorWriter(Protocol):
    """Writes the records of ``vector-db-sink`` to one service, by key."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, record: Record) -> None: ...


def required_text(where: str, config: Mapping[str, Any], key: str, default: str = "") -> str:
    """The text under ``key`` of a resource, ``default`` when absent; an error naming the key
    when it is required (no default) and missing."""
    value = config.get(key)
    text = "" if value is None else str(value).strip()
    if not text:
        if not default:
            raise DataSourceResourceError(f"{where}: {key} is required")
        return default
    return text


class FieldValues:
    """The ``fields`` of ``vector-db-sink`` (``{name, expression}`` each) evaluated on records."""

    def __init__(self, where: str, fields: Any) -> None:
        self.fields: list[tuple[str, Expression]] = []
        for index, field in enumerate(fields or ()):
            if not isinstance(field, Mapping) or not field.get("name"):
                raise DataSourceResourceError(
                    f"{where}: fields[{index}] must be a mapping with name and expression"
                )
            expression = str(field.get("expression") or "").strip()
            if not expression:
                raise DataSourceResourceError(f"{where}: fields[{index}] has no expression")
            self.fields.append((str(field["name"]), compile_expression(expression)))

    def names(self) -> list[str]:
        return [name for name, _ in self.fields]

    def values(self, record: Record) -> dict[str, Any]:
        """name -> the value of its expression on ``record``."""
        context = context_of(to_working(record))
        return {name: expression.evaluate(context) for name, expression in self.fields}


def evaluate(expression: Expression | None, record: Record) -> Any:
    """The value of ``expression`` on ``record`` (None without an expression)."""
    if expression is None:
        return None
    return expression.evaluate(context_of(to_working(record)))
