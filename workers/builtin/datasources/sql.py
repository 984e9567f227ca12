"""SQL text and values between LangStream's agents and psycopg (pure functions).

LangStream's SQL marks parameters with JDBC's ``?``; psycopg's with ``%s``.
:func:`to_psycopg` rewrites one into the other as the PostgreSQL JDBC driver reads ``?``: not
inside a string literal (``'...'``, ``E'...'``, ``$tag$...$tag$``), a quoted identifier or a
comment; ``??`` is a literal ``?`` (jsonb's operator). ``%`` is doubled, since psycopg reads it.

Values a query returns become JSON values, as records carry them: ``numeric`` as an int or a
float, timestamps, dates and times as ISO 8601 text, ``uuid`` as text, ``bytea`` as base64 text,
pgvector's ``vector`` as a list of floats (:func:`json_value`). Values a record gives are bound as
psycopg binds them, but a list of numbers goes as ``double precision[]`` (:func:`bind_value`):
PostgreSQL assigns that to a ``vector``, ``real[]`` or ``integer[]`` column and casts it with
``?::vector``, where a list of small ints would be a ``smallint[]`` that ``vector`` refuses. A
JSON object goes as its JSON text, which PostgreSQL reads as ``json``, ``jsonb`` or ``text``.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import re
import uuid
from typing import Any

__all__ = [
    "bind_value",
    "count_placeholders",
    "json_value",
    "parse_vector",
    "to_psycopg",
    "vector_text",
]

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def to_psycopg(query: str) -> tuple[str, int]:
    """``query`` with ``?`` as ``%s`` and ``%`` as ``%%``, and the number of parameters.

    >>> to_psycopg("SELECT '?', x ?? 'k' FROM t WHERE a = ? AND b LIKE 'x%' -- ?")
    ("SELECT '?', x ? 'k' FROM t WHERE a = %s AND b LIKE 'x%%' -- ?", 1)
    """
    out: list[str] = []
    count = 0
    i, n = 0, len(query)
    while i < n:
        char = query[i]
        end = _quoted_end(query, i)
        if end > i:
            out.append(query[i:end].replace("%", "%%"))
            i = end
        elif char == "?":
            if query.startswith("??", i):
                out.append("?")
                i += 2
            else:
                out.append("%s")
                count += 1
                i += 1
        elif char == "%":
            out.append("%%")
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out), count


def count_placeholders(query: str) -> int:
    """How many ``?`` parameters ``query`` has (see :func:`to_psycopg`)."""
    return to_psycopg(query)[1]


def _quoted_end(query: str, i: int) -> int:
    """Where the literal, quoted identifier or comment starting at ``i`` ends; ``i`` if none."""
    char = query[i]
    if char == "'":
        backslashes = i > 0 and query[i - 1] in "eE" and (i < 2 or not query[i - 2].isalnum())
        return _closing(query, i + 1, "'", backslashes)
    if char == '"':
        return _closing(query, i + 1, '"', False)
    if query.startswith("--", i):
        end = query.find("\n", i)
        return len(query) if end < 0 else end
    if query.startswith("/*", i):
        end = query.find("*/", i + 2)
        return len(query) if end < 0 else end + 2
    if char == "$" and (i == 0 or not (query[i - 1].isalnum() or query[i - 1] == "_")):
        match = _DOLLAR_TAG.match(query, i)
        if match:
            end = query.find(match.group(0), match.end())
            return len(query) if end < 0 else end + len(match.group(0))
    return i


def _closing(query: str, i: int, quote: str, backslashes: bool) -> int:
    n = len(query)
    while i < n:
        char = query[i]
        if backslashes and char == "\\":
            i += 2
            continue
        if char == quote:
            if query.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        i += 1
    return n


def bind_value(value: Any) -> Any:
    """``value`` as bound to a parameter (see the module's documentation)."""
    if isinstance(value, list) and value and all(_is_number(item) for item in value):
        return [float(item) for item in value]
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_value(value: Any) -> Any:
    """A value of a result row as a JSON value (see the module's documentation)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, decimal.Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    return str(value)


def parse_vector(text: str) -> list[float]:
    """pgvector's text form (``[1,2.5,3]``) as a list of floats.

    >>> parse_vector("[1,2.5,-3e-05]"), parse_vector("[]")
    ([1.0, 2.5, -3e-05], [])
    """
    inner = text.strip()[1:-1].strip()
    return [float(item) for item in inner.split(",")] if inner else []


def vector_text(value: Any) -> Any:
    """A list of numbers in pgvector's text form (``[1.0,2.5]``), for a ``vector`` column;
    anything else as :func:`bind_value` binds it (PostgreSQL then says what is wrong).

    >>> vector_text([1, 2.5, -3e-05]), vector_text(None)
    ('[1.0,2.5,-3e-05]', None)
    """
    if isinstance(value, list) and value and all(_is_number(item) for item in value):
        return "[" + ",".join([repr(float(item)) for item in value]) + "]"
    return bind_value(value)
