"""CQL text and values between LangStream's agents and the Cassandra driver (pure functions).

LangStream's CQL marks parameters with ``?``, as the driver's prepared statements do, so the
text goes to the server as written; :func:`count_markers` counts the ``?`` that are parameters
(not inside a string literal, a ``$$...$$`` string, a quoted identifier or a comment), so a
query and its ``fields`` are checked against each other before the database is reached.

Values a query returns become JSON values, as records carry them (:func:`cql_value`): uuids,
timestamps, dates, times, inets and durations as text, ``decimal`` as an int or a float,
``blob`` as base64 text, sets and lists as lists, maps and UDTs as objects, a ``vector`` as a
list of floats.

Values written by a Kafka-sink ``mapping`` take the type of their column first
(:func:`column_value`), as the DataStax Kafka sink converted them: a text into a number or
boolean column is parsed (``"3"`` into an ``int``), a number or boolean into a text column is
its text.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import ipaddress
import uuid
from collections.abc import Mapping, Set
from typing import Any

__all__ = ["column_value", "count_markers", "cql_value"]


def count_markers(query: str) -> int:
    """How many ``?`` parameters ``query`` has.

    >>> count_markers("SELECT * FROM t WHERE a = ? AND b = '?' -- ?")
    1
    """
    count = 0
    i, n = 0, len(query)
    while i < n:
        end = _quoted_end(query, i)
        if end > i:
            i = end
            continue
        if query[i] == "?":
            count += 1
        i += 1
    return count


def _quoted_end(query: str, i: int) -> int:
    """Where the literal, quoted identifier or comment starting at ``i`` ends; ``i`` if none."""
    char = query[i]
    if char in "'\"":
        j = i + 1
        while j < len(query):
            if query[j] == char:
                if query.startswith(char * 2, j):
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(query)
    for opening, closing in (("$$", "$$"), ("/*", "*/")):
        if query.startswith(opening, i):
            end = query.find(closing, i + 2)
            return len(query) if end < 0 else end + 2
    if query.startswith("--", i) or query.startswith("//", i):
        end = query.find("\n", i)
        return len(query) if end < 0 else end
    return i


def cql_value(value: Any) -> Any:
    """A value of a result row as a JSON value (see the module's documentation)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:  # the driver gives UTC timestamps without their zone
            value = value.replace(tzinfo=datetime.UTC)
        return value.isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(cql_value(key)): cql_value(item) for key, item in value.items()}
    if hasattr(value, "_fields"):  # a user-defined type, as a named tuple
        return {name: cql_value(getattr(value, name)) for name in value._fields}
    if isinstance(value, list | tuple | Set):
        return [cql_value(item) for item in value]
    date = getattr(value, "date", None)  # cassandra.util.Date / Time
    if callable(date):
        try:
            return date().isoformat()
        except (ValueError, OverflowError):
            return str(value)
    return str(value)


_INTEGERS = frozenset({"int", "bigint", "smallint", "tinyint", "varint", "counter"})
_FLOATS = frozenset({"float", "double"})
_TEXTS = frozenset({"text", "varchar", "ascii"})


def column_value(cql_type: str, value: Any) -> Any:
    """``value`` as a column of ``cql_type`` takes it (see the module's documentation); other
    values unchanged (the driver checks them). Raises ValueError for a text that is not a
    number or a boolean of the column's type.

    >>> column_value("int", " 3"), column_value("double", "0.5"), column_value("text", 7)
    (3, 0.5, '7')
    """
    if isinstance(value, str):
        text = value.strip()
        if cql_type in _INTEGERS:
            return int(text)
        if cql_type in _FLOATS:
            return float(text)
        if cql_type == "decimal":
            try:
                return decimal.Decimal(text)
            except decimal.InvalidOperation:
                raise ValueError(f"invalid decimal {value!r}") from None
        if cql_type == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError(f"invalid boolean {value!r} (true or false)")
            return text.lower() == "true"
        return value
    if cql_type in _TEXTS and isinstance(value, bool):
        return "true" if value else "false"
    if cql_type in _TEXTS and isinstance(value, int | float):
        return str(value)
    if cql_type in _INTEGERS and isinstance(value, float) and value.is_integer():
        return int(value)
    if cql_type in _FLOATS and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
