"""The ``type`` of a ``compute`` field: converting an expression's result, and writing it down.

LangStream converts a compute result to the Java class of the field's type with its type
converter, then stores it in the shape the record's part allows. Here that is two steps:

- :func:`convert` turns a result into the Python value of a type: text, a whole number, a float,
  a boolean, bytes, a ``Decimal``, a ``date`` (DATE, LOCAL_DATE), a ``time`` (TIME, LOCAL_TIME),
  an aware ``datetime`` (TIMESTAMP, INSTANT, DATETIME) or a naive one (LOCAL_DATE_TIME). Texts
  become numbers, booleans and bytes as the ``cast`` agent converts them (``casting``); STRING
  is the expression language's own text of a value (``{k=v}`` for a map, as LangStream writes
  it); dates and times read ISO-8601 texts and epoch numbers.
- :func:`as_field` is the JSON a field of a JSON object holds (what LangStream's JSON writer
  puts in the text): dates as epoch days, times as milliseconds of the day, instants as epoch
  milliseconds, bytes as base64; :func:`as_whole` is a whole value or key, where dates and
  times are ISO-8601 text, as ``cast`` leaves them.

Without a type, the result's own kind decides (:func:`infer_field`, :func:`infer_whole`).
"""

from __future__ import annotations

import base64
import copy
import struct
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from sluice.expressions import to_text
from sluice.javatext import instant_text, java_double
from workers.builtin.casting import CastError, cast

_EPOCH_DAY = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSTANTS = ("TIMESTAMP", "INSTANT", "DATETIME")


class ComputeTypeError(ValueError):
    """A compute result that does not convert to its field's type, or has no type to write."""


def convert(result: Any, target: str) -> Any:
    """``result`` as the Python value of ``target`` (None stays None)."""
    if result is None:
        return None
    try:
        return _convert(result, target)
    except (CastError, ValueError, OverflowError, InvalidOperation) as error:
        if isinstance(error, ComputeTypeError):
            raise
        raise ComputeTypeError(f"cannot convert {_shown(result)} to {target}: {error}") from None


def _convert(result: Any, target: str) -> Any:
    if target == "STRING":
        return to_text(result)
    if isinstance(result, dict | list):
        raise ComputeTypeError(f"cannot convert {_shown(result)} to {target}")
    if target == "DECIMAL":
        return _decimal(result)
    if target in ("DATE", "LOCAL_DATE"):
        if isinstance(result, datetime):
            return _utc(result).date()
        return date.fromisoformat(cast(_plain(result), "LOCAL_DATE"))
    if target in ("TIME", "LOCAL_TIME"):
        if isinstance(result, datetime):
            return _utc(result).time().replace(tzinfo=None)
        return time.fromisoformat(cast(_plain(result), "LOCAL_TIME"))
    if target in _INSTANTS:
        if isinstance(result, datetime):
            return _utc(result)
        return datetime.fromisoformat(cast(_plain(result), "INSTANT"))
    if target == "LOCAL_DATE_TIME":
        if isinstance(result, datetime):
            return _utc(result).replace(tzinfo=None)
        return datetime.fromisoformat(cast(_plain(result), "LOCAL_DATE_TIME"))
    if isinstance(result, datetime):
        # An instant is a number only as its epoch milliseconds (LangStream: INT64, DOUBLE).
        if target not in ("INT64", "DOUBLE"):
            raise ComputeTypeError(f"cannot convert {_shown(result)} to {target}")
        result = _epoch_millis(result)
    converted = cast(_plain(result), target)
    return _float32(converted) if target == "FLOAT" else converted


def as_field(typed: Any) -> Any:
    """A converted value as a field of a JSON object holds it."""
    if isinstance(typed, datetime):
        return _epoch_millis(typed)
    if isinstance(typed, date):
        return (typed - _EPOCH_DAY).days
    if isinstance(typed, time):
        return (typed.hour * 3600 + typed.minute * 60 + typed.second) * 1000 + (
            typed.microsecond // 1000
        )
    if isinstance(typed, bytes):
        return base64.b64encode(typed).decode("ascii")
    if isinstance(typed, Decimal):
        return _number(typed)
    return typed


def as_whole(typed: Any) -> Any:
    """A converted value as a whole record value or key (dates and times as ISO-8601 text)."""
    if isinstance(typed, datetime):
        return instant_text(typed) if typed.tzinfo is not None else typed.isoformat()
    if isinstance(typed, date | time):
        return typed.isoformat()
    return typed


def infer_field(result: Any) -> Any:
    """A result without a type, as a field of a JSON object holds it.

    Null has no type to infer: LangStream fails the record ("Cannot get field type from null
    value"), and so does this.
    """
    if result is None:
        raise ComputeTypeError("cannot infer the type of null: give the field a type")
    if isinstance(result, dict | list):
        return copy.deepcopy(result)  # the record's own data may be inside
    return as_field(result)


def infer_whole(result: Any) -> Any:
    """A result without a type as a whole value or key: text, a number, a boolean, bytes or an
    instant (as ISO-8601 text); null, maps, lists and decimals fail the record, as in
    LangStream."""
    if result is None:
        raise ComputeTypeError("cannot infer the type of null: give the field a type")
    if isinstance(result, dict | list | Decimal):
        raise ComputeTypeError(
            f"a whole value or key cannot be {_shown(result)} (use fn:toJson for JSON text)"
        )
    return as_whole(result)


def _decimal(result: Any) -> Decimal:
    if isinstance(result, Decimal):
        return result
    if isinstance(result, bool) or not isinstance(result, str | int | float):
        raise ComputeTypeError(f"cannot convert {_shown(result)} to DECIMAL")
    if isinstance(result, float):
        return Decimal(java_double(result))  # BigDecimal.valueOf(double)
    return Decimal(result.strip() if isinstance(result, str) else result)


def _plain(result: Any) -> Any:
    """A Decimal as the double LangStream's converter reads it; other results unchanged."""
    return float(result) if isinstance(result, Decimal) else result


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _epoch_millis(moment: datetime) -> int:
    delta = _utc(moment) - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def _float32(number: float) -> float:
    """A 32-bit float as the shortest decimal that reads back as it (Java's Float: 3.2, not
    3.2000000476837158)."""
    single = struct.unpack(">f", struct.pack(">f", number))[0]
    if single != single or single in (float("inf"), float("-inf")):
        return float(single)
    for digits in range(1, 10):
        candidate = float(f"{single:.{digits}g}")
        try:
            if struct.unpack(">f", struct.pack(">f", candidate))[0] == single:
                return candidate
        except OverflowError:  # rounded up past the largest float (3.403e38)
            continue
    return float(single)


def _number(value: Decimal) -> int | float:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(value)
    return float(value)


def _shown(result: Any) -> str:
    if isinstance(result, dict):
        return "a map"
    if isinstance(result, list):
        return "a list"
    return f"{to_text(result)!r} ({type(result).__name__})"
