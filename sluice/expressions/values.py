"""EL's coercions over the values an expression sees.

Values are JSON data (``None``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``) plus
``bytes`` (a record's raw value), ``datetime`` (an instant: ``fn:now()``, ``fn:timestampAdd``) and
``Decimal`` (``fn:decimalFromUnscaled``). Integers behave as Java ``long`` (64-bit, wrapping) while
they fit, as ``BigInteger`` beyond; floats as Java ``double``. The rules are EL 5.0's, as Jakarta
EL applies them to LangStream's records, so an expression gives the same result here.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sluice.javatext import java_text

#: Longest text an operator or function may produce (``+=``, fn:concat, fn:replace, ...), so a
#: small expression cannot build a huge string out of a record.
MAX_TEXT = 16 * 1024 * 1024

_LONG_MIN = -(2**63)
_LONG_MAX = 2**63 - 1
_JAVA_LONG = re.compile(r"[+-]?\d+")
_JAVA_DOUBLE = re.compile(
    r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?|0[xX][0-9a-fA-F]+)"
)


class CoercionError(Exception):
    """A value does not convert as an operator or a function needs; the evaluator adds the
    expression to the message."""


class NotFound(CoercionError):
    """A property that the value cannot have (``value.x`` on plain text)."""


def is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def describe(value: object) -> str:
    """``value`` and its kind, for error messages: ``'abc' (a text)``."""
    kinds = {
        type(None): "null",
        bool: "a boolean",
        int: "an integer",
        float: "a decimal number",
        Decimal: "a decimal number",
        str: "a text",
        bytes: "bytes",
        list: "a list",
        dict: "a map",
        datetime: "an instant",
    }
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value) if isinstance(value, str | bytes) else java_text(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return "null" if value is None else f"{shown} ({kind})"


def wrap_long(number: int) -> int:
    """``number`` as Java's 64-bit arithmetic leaves it."""
    return (number - _LONG_MIN) % 2**64 + _LONG_MIN


def fits_long(number: int) -> bool:
    return _LONG_MIN <= number <= _LONG_MAX


def to_text(value: Any) -> str:
    """EL string coercion as LangStream applies it: null → ``""``, bytes decoded as UTF-8,
    instants in ISO-8601, maps and lists in Java's ``{k=v}`` / ``[a, b]`` form."""
    if value is None:
        return ""
    return java_text(value)


def to_double(value: Any) -> float:
    """EL coercion to ``Double``: null and ``""`` are 0; texts parse as Java doubles."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, bool):
        raise CoercionError(f"cannot convert {describe(value)} to a number")
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _JAVA_DOUBLE.fullmatch(text):
            if text[-1] in "fFdD" and "x" not in text.lower():
                text = text[:-1]
            if text.lower().lstrip("+-").startswith("0x"):
                return float(int(text, 16))
            return float(text.replace("Infinity", "inf"))
    raise CoercionError(f"cannot convert {describe(value)} to a number")


def to_long(value: Any) -> int:
    """EL coercion to ``Long``: null and ``""`` are 0, decimals truncate, texts must be
    integers."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise CoercionError(f"cannot convert {describe(value)} to a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            return 0 if math.isnan(value) else (_LONG_MAX if value > 0 else _LONG_MIN)
        return int(value)
    if isinstance(value, str) and _JAVA_LONG.fullmatch(value):
        return int(value)
    raise CoercionError(f"cannot convert {describe(value)} to an integer")


def to_decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool):
        raise CoercionError(f"cannot convert {describe(value)} to a number")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            pass
    raise CoercionError(f"cannot convert {describe(value)} to a number")


def to_boolean(value: Any) -> bool:
    """EL coercion to ``boolean``: null and ``""`` are false, texts are true only when they
    say "true" (any case); numbers do not convert."""
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.lower() == "true"
    raise CoercionError(f"cannot convert {describe(value)} to a boolean")


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str | bytes | list | dict | tuple):
        return len(value) == 0
    return False


def check_text_size(size: int) -> None:
    if size > MAX_TEXT:
        raise CoercionError(f"the result would have {size} characters, more than {MAX_TEXT}")
