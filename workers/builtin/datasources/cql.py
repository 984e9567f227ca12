"""CQL text and values between LangStream's agents and the Cassandra driver (pure functions).

LangStream's CQL marks parameters with ``?``, as the driver's prepared statements do, so the
text goes to the server as written; :func:`count_markers` counts the ``?`` that are parameters
(not inside a string literal, a ``$$...$$`` string, a quoted identifier or a comment), so a
query and its ``fields`` are checked against each other before the database is reached.

Values a query returns become JSON values, as records carry them (:func:`cql_value`): uuids,
timestamps, dates, times, inets and durations as text, ``decimal`` as an int or a float,
``blob`` as base64 text, sets and lists as lists, maps and UDTs as objects, a ``vector`` as a
list of floats.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import ipaddress
import uuid
from collections.abc import Mapping, Set
from typing import Any

__all__ = ["count_markers", "cql_value"]


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
