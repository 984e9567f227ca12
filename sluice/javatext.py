"""How Java writes values as text, for the places where LangStream's output shows it.

LangStream's expression language turns values into strings with Java's ``toString`` (``1.0``,
``1.0E10``, ``{k=v}``, ``[a, b]``) and its Mustache templates print variables the same way, so
an application ported from LangStream sees the same text. Pure functions, no I/O.

>>> java_text(True), java_text(1.0), java_text(1e10), java_text({"a": [1, None]})
('true', '1.0', '1.0E10', '{a=[1, null]}')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["instant_text", "java_double", "java_text"]


def java_text(value: Any) -> str:
    """``value`` as Java's ``toString`` writes it: null as ``null``, booleans in lower case,
    doubles as :func:`java_double`, bytes decoded as UTF-8, instants as :func:`instant_text`,
    maps as ``{k=v, ...}`` and lists as ``[a, b]``; anything else as Python's ``str``."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return instant_text(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{java_text(k)}={java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(java_text(item) for item in value) + "]"
    return str(value)


def java_double(number: float) -> str:
    """``Double.toString``: ``1.0``, ``0.001``, ``1.0E7``, ``1.0E-4``, ``NaN``, ``Infinity``."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    sign = "-" if number < 0 else ""
    shortest = Decimal(repr(abs(number)))
    if 1e-3 <= abs(number) < 1e7:
        text = format(shortest, "f")
        return sign + (text if "." in text else text + ".0")
    _, digit_tuple, exponent = shortest.normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{len(digits) + exponent - 1}"


def instant_text(moment: datetime) -> str:
    """``Instant.toString``: UTC, ``Z``, fractions in groups of three digits, none when zero."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micros = moment.microsecond
    if micros:
        text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return text + "Z"
