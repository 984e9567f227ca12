"""The ``fn:`` functions, as LangStream's ``JstlFunctions`` defines them.

Each takes already evaluated arguments and returns a new value; none changes its arguments (the
record's data) or does I/O. ``fn:now`` and ``fn:filter`` need the evaluation context and live in
the evaluator; :data:`FUNCTIONS` lists the others with the number of arguments they take.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import functools
import json
import math
import random as _random
import re
import struct
import uuid as _uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sluice.expressions.values import (
    MAX_TEXT,
    CoercionError,
    check_text_size,
    describe,
    to_double,
    to_text,
)
from sluice.javatext import java_double

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_UNITS = "years, months, days, hours, minutes, seconds, millis"


@dataclass(frozen=True, slots=True)
class Function:
    """A function's implementation and how many arguments it takes (``most`` None: any)."""

    call: Callable[..., Any]
    least: int
    most: int | None


# --- number conversions ---------------------------------------------------------------------


def _saturate(number: float, low: int, high: int) -> int:
    # Java's double-to-int/long cast: NaN is 0, out-of-range values stick to the bounds.
    if number != number:
        return 0
    if number >= high:
        return high
    if number <= low:
        return low
    return int(number)


def _epoch_millis(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def _from_bytes(data: bytes, fmt: str) -> Any:
    if len(data) != struct.calcsize(fmt):
        raise CoercionError(f"cannot convert {len(data)} bytes to a number")
    return struct.unpack(fmt, data)[0]


def to_int(value: Any) -> int | None:
    """fn:toInt: via a double, truncated to a 32-bit integer (``'1.7'`` → 1)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return int(_from_bytes(value, ">i"))
    if isinstance(value, datetime):
        raise CoercionError(f"cannot convert {describe(value)} to an integer")
    if isinstance(value, int) and not isinstance(value, bool):
        return max(_INT_MIN, min(_INT_MAX, value))
    return _saturate(to_double(value), _INT_MIN, _INT_MAX)


def to_long(value: Any) -> int | None:
    """fn:toLong: like fn:toInt with 64 bits; an instant gives its epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return int(_from_bytes(value, ">q"))
    if isinstance(value, datetime):
        return _epoch_millis(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return max(_LONG_MIN, min(_LONG_MAX, value))
    return _saturate(to_double(value), _LONG_MIN, _LONG_MAX)


def to_double_fn(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return float(_from_bytes(value, ">d"))
    if isinstance(value, datetime):
        delta = value - datetime(1970, 1, 1, tzinfo=UTC)
        return delta.days * 86_400_000.0 + delta.seconds * 1000.0 + delta.microseconds / 1000
    return to_double(value)


_SINGLE = struct.Struct(">f")


def _shortest_single(single: float) -> float:
    """The shortest decimal that reads back as the 32-bit float ``single`` (0.1, not
    0.100000001), as Java prints a ``float``. A binary search over the number of digits: if
    ``d`` digits read back, so do ``d + 1`` (the nearer rounding)."""
    if single != single or single in (math.inf, -math.inf):
        return single
    low, high = 1, 9  # 9 significant digits always read back
    while low < high:
        middle = (low + high) // 2
        if _SINGLE.unpack(_SINGLE.pack(float(f"{single:.{middle}g}")))[0] == single:
            high = middle
        else:
            low = middle + 1
    return float(f"{single:.{low}g}")


def _float32(value: Any) -> float:
    number = float(_from_bytes(value, ">f")) if isinstance(value, bytes) else to_double(value)
    try:
        single = _SINGLE.unpack(_SINGLE.pack(number))[0]
    except OverflowError:  # beyond the largest float: infinite, as Java's (float) cast gives
        return math.copysign(math.inf, number)
    return _shortest_single(single)


def to_list_of_float(value: Any) -> list[float] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise CoercionError(f"cannot convert {describe(value)} to a list of float")
    if all(type(item) is float for item in value):  # a vector from a model: one pack for all
        count = len(value)
        with contextlib.suppress(OverflowError):  # else item by item, which handles it
            singles = struct.unpack(f">{count}f", struct.pack(f">{count}f", *value))
            return [_shortest_single(single) for single in singles]
    return [_float32(item) for item in value]


# --- texts ----------------------------------------------------------------------------------


def uppercase(value: Any) -> str | None:
    return None if value is None else to_text(value).upper()


def lowercase(value: Any) -> str | None:
    return None if value is None else to_text(value).lower()


def contains(value: Any, part: Any) -> bool:
    if value is None or part is None:
        return False
    return to_text(part) in to_text(value)


def trim(value: Any) -> str | None:
    # Java's trim: every character up to U+0020 counts as space, nothing else does.
    return None if value is None else to_text(value).strip("".join(map(chr, range(33))))


def concat(*parts: Any) -> str:
    texts = [to_text(part) for part in parts if part is not None]
    check_text_size(sum(map(len, texts)))
    return "".join(texts)


def concat3(first: Any, second: Any, third: Any) -> str:
    return concat(first, second, third)


def coalesce(value: Any, default: Any) -> Any:
    return default if value is None else value


def length(value: Any) -> int:
    return 0 if value is None else len(to_text(value))


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise CoercionError(f"invalid regular expression {pattern!r}: {error}") from None


def split(value: Any, separator: Any) -> list[str] | None:
    """Java's ``String.split``: the separator is a regular expression, trailing empty parts go,
    and a zero-width match at the start makes no leading empty part."""
    if value is None:
        return None
    text = to_text(value)
    if not text:
        return []
    parts: list[str] = []
    start = 0
    for match in _regex(to_text(separator)).finditer(text):
        if match.end() == 0 or (match.start() == match.end() == len(text)):
            continue
        parts.append(text[start : match.start()])
        start = match.end()
    if not parts:
        return [text]
    parts.append(text[start:])
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _java_replacement(template: str) -> Callable[[re.Match[str]], str]:
    # Java's replacement syntax: $1 and ${name} insert groups, a backslash quotes the next char.
    pieces: list[str | int] = []  # literal text, or a group (its number, or its name in a list)
    names: dict[int, str] = {}
    literal: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template):
            literal.append(template[i + 1])
            i += 2
        elif ch == "$" and i + 1 < len(template) and template[i + 1].isdigit():
            pieces += ["".join(literal), int(template[i + 1])]
            literal = []
            i += 2
        elif ch == "$" and template.startswith("{", i + 1) and "}" in template[i + 2 :]:
            end = template.index("}", i + 2)
            pieces += ["".join(literal), -1]
            names[len(pieces) - 1] = template[i + 2 : end]
            literal = []
            i = end + 1
        elif ch == "$":
            raise CoercionError(f"illegal group reference in replacement {template!r}")
        else:
            literal.append(ch)
            i += 1
    pieces.append("".join(literal))

    def render(match: re.Match[str]) -> str:
        out: list[str] = []
        for position, piece in enumerate(pieces):
            if isinstance(piece, str):
                out.append(piece)
            else:
                out.append(match.group(names.get(position, piece)) or "")
        return "".join(out)

    return render


def replace(value: Any, pattern: Any, replacement: Any) -> str | None:
    """Java's ``String.replaceAll``: ``pattern`` is a regular expression, ``$1`` in the
    replacement inserts a group. The result is bounded by :data:`MAX_TEXT`."""
    if value is None:
        return None
    text = to_text(value)
    if pattern is None or replacement is None:
        return text
    render = _java_replacement(to_text(replacement))
    produced = 0

    def bounded(match: re.Match[str]) -> str:
        nonlocal produced
        piece = render(match)
        produced += len(piece) + 1
        if produced > MAX_TEXT:
            check_text_size(produced + len(text))
        return piece

    try:
        result = _regex(to_text(pattern)).sub(bounded, text)
    except (IndexError, re.error) as error:
        raise CoercionError(f"replacement {to_text(replacement)!r}: {error}") from None
    check_text_size(len(result))
    return result


# --- JSON -----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_text(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {describe(value)} as JSON")


def to_json(value: Any) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as error:
        raise CoercionError(str(error)) from None
    check_text_size(len(text))
    return text


def from_json(value: Any) -> Any:
    if value is None:
        return None
    text = to_text(value)
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CoercionError(f"invalid JSON {describe(text)}: {error}") from None


# --- lists and maps -------------------------------------------------------------------------


def _items(value: Any, function: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    raise CoercionError(f"{function} needs a list, got {describe(value)}")


def unpack(value: Any, fields: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        values: list[Any] = value.split(",") if value else []
    else:
        values = _items(value, "fn:unpack")
    names = to_text(fields).split(",")
    return {name: values[i] if i < len(values) else None for i, name in enumerate(names)}


def empty_list() -> list[Any]:
    return []


def empty_map() -> dict[str, Any]:
    return {}


def list_of(*items: Any) -> list[Any]:
    return list(items)


def map_of(*pairs: Any) -> dict[str, Any]:
    if len(pairs) % 2:
        raise CoercionError("fn:mapOf needs key, value pairs: it got an odd number of arguments")
    return {_key(pairs[i], "fn:mapOf"): pairs[i + 1] for i in range(0, len(pairs), 2)}


def _key(key: Any, function: str) -> str:
    if key is None or to_text(key) == "":
        raise CoercionError(f"{function} does not allow a null or empty key")
    return to_text(key)


def _copy_map(value: Any, function: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CoercionError(f"{function} needs a map, got {describe(value)}")
    return dict(value)


def map_put(mapping: Any, key: Any, value: Any) -> dict[Any, Any]:
    result = _copy_map(mapping, "fn:mapPut")
    result[_key(key, "fn:mapPut")] = value
    return result


def map_remove(mapping: Any, key: Any) -> dict[Any, Any]:
    result = _copy_map(mapping, "fn:mapRemove")
    result.pop(_key(key, "fn:mapRemove"), None)
    return result


def map_to_list_of_structs(mapping: Any, fields: Any) -> list[dict[str, Any]]:
    if not isinstance(mapping, dict):
        raise CoercionError(f"fn:mapToListOfStructs needs a map, got {describe(mapping)}")
    return [{name: mapping.get(name) for name in to_text(fields).split(",")}]


def list_to_list_of_structs(items: Any, field: Any) -> list[dict[str, Any]]:
    name = to_text(field)
    return [{name: item} for item in _items(items, "fn:listToListOfStructs")]


def list_add(items: Any, item: Any) -> list[Any]:
    return [*_items(items, "fn:listAdd"), item]


def add_all(first: Any, second: Any) -> list[Any]:
    result: list[Any] = []
    for position, items in (("first", first), ("second", second)):
        if items is not None:
            result += _items(items, f"fn:addAll's {position} argument")
    return result


# --- random ---------------------------------------------------------------------------------


def uuid() -> str:
    return str(_uuid.uuid4())


def random(bound: Any) -> int:
    if bound is None:
        raise CoercionError("fn:random needs a bound, got null")
    limit = to_int(bound)
    if limit is None or limit <= 0:
        raise CoercionError(f"fn:random needs a positive bound, got {describe(bound)}")
    return _random.randrange(limit)


# --- time and decimals ----------------------------------------------------------------------


def to_instant(value: Any) -> datetime:
    """An instant from epoch milliseconds, an ISO-8601 text with an offset (or a bare
    ``yyyy-MM-dd`` date: midnight UTC), bytes holding such a text, or an instant."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            if len(value) == 10:
                return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    raise CoercionError(f"cannot convert {describe(value)} to an instant")


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise CoercionError("the date is out of range")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def timestamp_add(value: Any, delta: Any, unit: Any) -> datetime:
    if value is None or unit is None:
        raise CoercionError("fn:timestampAdd needs a timestamp and a unit, got null")
    moment = to_instant(value)
    amount = to_long(delta)
    assert amount is not None
    name = unit.decode("utf-8", errors="replace") if isinstance(unit, bytes) else to_text(unit)
    try:
        if name == "years":
            return _add_months(moment, 12 * amount)
        if name == "months":
            return _add_months(moment, amount)
        steps = {"days": 86_400_000_000, "hours": 3_600_000_000, "minutes": 60_000_000}
        steps |= {"seconds": 1_000_000, "millis": 1000}
        if name in steps:
            return moment + timedelta(microseconds=amount * steps[name])
        if name == "nanos":
            return moment + timedelta(microseconds=int(amount / 1000))
    except OverflowError:
        raise CoercionError("the date is out of range") from None
    raise CoercionError(f"Invalid unit: {name}. Should be one of [{_UNITS}]")


def dateadd(value: Any, delta: Any, unit: Any) -> int:
    return _epoch_millis(timestamp_add(value, delta, unit))


def to_sql_timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.strptime(
                value.strip()[:26], "%Y-%m-%d %H:%M:%S" + (".%f" if "." in value else "")
            ).replace(tzinfo=UTC)
        except ValueError:
            raise CoercionError(f"cannot convert {describe(value)} to a timestamp") from None
    if isinstance(value, datetime | int | float) and not isinstance(value, bool):
        return to_instant(value)
    raise CoercionError(f"cannot convert {describe(value)} to a timestamp")


def decimal_from_unscaled(value: Any, scale: Any) -> Decimal:
    if isinstance(value, bytes):
        unscaled = int.from_bytes(value, "big", signed=True)
    elif isinstance(value, int) and not isinstance(value, bool):
        unscaled = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        unscaled = int(value.strip())
    else:
        raise CoercionError(f"cannot convert {describe(value)} to an unscaled integer")
    places = to_int(scale)
    assert places is not None
    return Decimal(f"{unscaled}E{-places}")  # exact: scaleb would round to 28 digits


def decimal_from_number(value: Any) -> Decimal:
    number = to_double_fn(value)
    assert number is not None
    return Decimal(java_double(number))


FUNCTIONS: dict[str, Function] = {
    "uppercase": Function(uppercase, 1, 1),
    "lowercase": Function(lowercase, 1, 1),
    "contains": Function(contains, 2, 2),
    "trim": Function(trim, 1, 1),
    "concat": Function(concat, 0, None),
    "concat3": Function(concat3, 3, 3),
    "coalesce": Function(coalesce, 2, 2),
    "str": Function(to_text, 1, 1),
    "toString": Function(to_text, 1, 1),
    "length": Function(length, 1, 1),
    "toInt": Function(to_int, 1, 1),
    "toLong": Function(to_long, 1, 1),
    "toDouble": Function(to_double_fn, 1, 1),
    "toListOfFloat": Function(to_list_of_float, 1, 1),
    "split": Function(split, 2, 2),
    "unpack": Function(unpack, 2, 2),
    "replace": Function(replace, 3, 3),
    "toJson": Function(to_json, 1, 1),
    "fromJson": Function(from_json, 1, 1),
    "emptyList": Function(empty_list, 0, 0),
    "emptyMap": Function(empty_map, 0, 0),
    "listOf": Function(list_of, 0, None),
    "listAdd": Function(list_add, 2, 2),
    "addAll": Function(add_all, 2, 2),
    "mapOf": Function(map_of, 0, None),
    "mapPut": Function(map_put, 3, 3),
    "mapRemove": Function(map_remove, 2, 2),
    "mapToListOfStructs": Function(map_to_list_of_structs, 2, 2),
    "listToListOfStructs": Function(list_to_list_of_structs, 2, 2),
    "uuid": Function(uuid, 0, 0),
    "random": Function(random, 1, 1),
    "timestampAdd": Function(timestamp_add, 3, 3),
    "dateadd": Function(dateadd, 3, 3),
    "toSQLTimestamp": Function(to_sql_timestamp, 1, 1),
    "decimalFromUnscaled": Function(decimal_from_unscaled, 2, 2),
    "decimalFromNumber": Function(decimal_from_number, 1, 1),
}
