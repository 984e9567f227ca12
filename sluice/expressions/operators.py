"""EL's operators: arithmetic, comparison, equality, ``+=`` and property access.

Arithmetic picks its number type as EL does: a ``Decimal`` operand makes the operation decimal,
a float (or a text containing ``.``, ``e`` or ``E``) makes it a double, otherwise it is a 64-bit
integer one (texts are parsed; null and ``""`` count as 0). Comparisons pick the type from the
operands that are numbers only, so ``'1.5' > 1`` compares as integers and fails, as in EL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sluice.expressions.values import (
    CoercionError,
    NotFound,
    check_text_size,
    describe,
    fits_long,
    is_integer,
    to_boolean,
    to_decimal,
    to_double,
    to_long,
    to_text,
    wrap_long,
)


def _decimal_op(a: Any, b: Any) -> bool:
    return isinstance(a, Decimal) or isinstance(b, Decimal)


def _double_text(value: Any) -> bool:
    return isinstance(value, str) and any(ch in value for ch in ".eE")


def _arith_kind(a: Any, b: Any) -> str:
    if _decimal_op(a, b):
        return "decimal"
    if isinstance(a, float) or isinstance(b, float) or _double_text(a) or _double_text(b):
        return "double"
    return "long"


def _integral(result: int, a: int, b: int) -> int:
    # Java longs wrap; integers that were already beyond 64 bits behave as BigInteger.
    return wrap_long(result) if fits_long(a) and fits_long(b) else result


def add(a: Any, b: Any) -> Any:
    return _arith(a, b, lambda x, y: x + y)


def subtract(a: Any, b: Any) -> Any:
    return _arith(a, b, lambda x, y: x - y)


def multiply(a: Any, b: Any) -> Any:
    return _arith(a, b, lambda x, y: x * y)


def _arith(a: Any, b: Any, op: Callable[[Any, Any], Any]) -> Any:
    if type(a) is int and type(b) is int:  # the common case, as the long path below does it
        return _integral(op(a, b), a, b)
    if a is None and b is None:
        return 0
    kind = _arith_kind(a, b)
    if kind == "decimal":
        return op(to_decimal(a), to_decimal(b))
    if kind == "double":
        return float(op(to_double(a), to_double(b)))
    x, y = to_long(a), to_long(b)
    return _integral(op(x, y), x, y)


def divide(a: Any, b: Any) -> Any:
    """``/`` and ``div``: always a double (``7 / 2`` is 3.5, ``1 / 0`` is Infinity)."""
    if a is None and b is None:
        return 0
    if (
        _decimal_op(a, b)
        or (is_integer(a) and not fits_long(a))
        or (is_integer(b) and not fits_long(b))
    ):
        x, y = to_decimal(a), to_decimal(b)
        if y == 0:
            raise CoercionError("division by zero")
        return x / y
    x_d, y_d = to_double(a), to_double(b)
    if y_d == 0:
        if x_d == 0 or math.isnan(x_d):
            return math.nan
        return math.copysign(math.inf, x_d) * math.copysign(1.0, y_d)
    return x_d / y_d


def modulo(a: Any, b: Any) -> Any:
    """``%`` and ``mod``: the remainder keeps the dividend's sign (``-7 % 3`` is -1)."""
    if type(a) is int and type(b) is int:  # the common case: the long path below, untouched
        kind = "long"
    elif a is None and b is None:
        return 0
    else:
        kind = _arith_kind(a, b)
    if kind == "decimal":
        x_m, y_m = to_decimal(a), to_decimal(b)
        if y_m == 0:
            raise CoercionError("division by zero")
        return x_m % y_m  # Decimal's % already keeps the dividend's sign
    if kind == "double":
        x_d, y_d = to_double(a), to_double(b)
        return math.nan if y_d == 0 else math.fmod(x_d, y_d)
    x, y = to_long(a), to_long(b)
    if y == 0:
        raise CoercionError("division by zero")
    remainder = abs(x) % abs(y)
    return _integral(-remainder if x < 0 else remainder, x, y)


def negate(a: Any) -> Any:
    if a is None:
        return 0
    if isinstance(a, bool):
        raise CoercionError(f"cannot negate {describe(a)}")
    if isinstance(a, float | Decimal):
        return -a
    if isinstance(a, int):
        return _integral(-a, a, 0)
    if isinstance(a, str):
        return -to_double(a) if _double_text(a) else _integral(-to_long(a), to_long(a), 0)
    raise CoercionError(f"cannot negate {describe(a)}")


def concatenate(a: Any, b: Any) -> str:
    """``+=``: both sides as text, null written as ``null`` (EL's string concatenation)."""
    left = "null" if a is None else to_text(a)
    right = "null" if b is None else to_text(b)
    check_text_size(len(left) + len(right))
    return left + right


def _number_kind(a: Any, b: Any) -> str | None:
    if _decimal_op(a, b):
        return "decimal"
    if isinstance(a, float) or isinstance(b, float):
        return "double"
    if is_integer(a) or is_integer(b):
        return "long"
    return None


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1, as EL orders two non-null values; raises when they do not compare."""
    kind = _number_kind(a, b)
    if kind == "decimal":
        x: Any = to_decimal(a)
        y: Any = to_decimal(b)
    elif kind == "double":
        x, y = to_double(a), to_double(b)
    elif kind == "long":
        x, y = to_long(a), to_long(b)
    elif isinstance(a, str) or isinstance(b, str):
        x, y = to_text(a), to_text(b)
    elif type(a) is type(b) and not isinstance(a, dict | list):
        x, y = a, b
    else:
        raise CoercionError(f"cannot compare {describe(a)} with {describe(b)}")
    return int(x > y) - int(x < y)


def relational(op: str) -> Callable[[Any, Any], bool]:
    """``<``, ``>``, ``<=`` or ``>=``: false when either side is null, as in EL."""
    tests: dict[str, Callable[[int], bool]] = {
        "lt": lambda c: c < 0,
        "gt": lambda c: c > 0,
        "le": lambda c: c <= 0,
        "ge": lambda c: c >= 0,
    }
    test = tests[op]

    def apply(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        return test(compare(a, b))

    return apply


def equals(a: Any, b: Any) -> bool:
    """``==`` / ``eq``: numbers compare as numbers (``'1' == 1``), booleans as booleans, then
    texts as texts; null equals only null."""
    if type(a) is int and type(b) is int:  # the common case: two longs
        return a == b
    if a is None or b is None:
        return a is None and b is None
    kind = _number_kind(a, b)
    if kind == "decimal":
        return to_decimal(a) == to_decimal(b)
    if kind == "double":
        return to_double(a) == to_double(b)
    if kind == "long":
        return to_long(a) == to_long(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return to_boolean(a) == to_boolean(b)
    if isinstance(a, str) or isinstance(b, str):
        return to_text(a) == to_text(b)
    return bool(a == b)


def list_index(index: Any) -> int:
    """A list index as EL reads one: a number (decimals truncated) or a numeric text."""
    if isinstance(index, bool) or index is None:
        raise NotFound(f"{describe(index)} is not a list index")
    if isinstance(index, int):
        return index
    if isinstance(index, float | Decimal):
        if isinstance(index, float) and not math.isfinite(index):
            raise NotFound(f"{describe(index)} is not a list index")
        return int(index)
    if isinstance(index, str):
        try:
            return int(index.strip()) if index.strip().lstrip("+-").isdigit() else int(float(index))
        except ValueError:
            pass
    raise NotFound(f"{describe(index)} is not a list index")


def get_property(base: Any, name: Any) -> Any:
    """``base.name`` / ``base[name]`` over JSON data only: a map's key, a list's element,
    ``.bytes`` of a text (its UTF-8 bytes), ``.values`` of a list (the list itself: a CQL
    vector, which LangStream's Java driver gave as a ``CqlVector`` that expressions read as
    ``record.embeddings_vector.values``, is a list here); null for a missing key, an index out
    of range or a null base. Nothing else of the Python object is reachable."""
    if base is None:
        return None
    if isinstance(base, Mapping):
        if isinstance(name, dict | list):
            raise CoercionError(f"{describe(name)} cannot be a map key")
        return base.get(name)
    if isinstance(base, list | tuple) and name == "values":
        return base
    if isinstance(base, list | tuple):
        position = list_index(name)
        return base[position] if 0 <= position < len(base) else None
    if isinstance(base, str) and name == "bytes":
        return base.encode("utf-8")
    raise NotFound(f"{describe(base)} has no property {to_text(name)!r}: it is not a JSON object")
