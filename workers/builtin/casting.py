"""Converting a record value or key to one of LangStream's schema types (the ``cast`` agent).

The rules are LangStream's type converter's where they can hold on JSON data: numeric text to
numbers (``"4.7"`` to INT32 truncates to 4, ``""`` is 0), ``"true"`` (any case) to a boolean and
any other text to false, numbers to text, text to UTF-8 bytes and bytes to the big-endian number
of the target's width. What differs, because a Sluice record only carries text, bytes and JSON:
dates and times come out as ISO-8601 text (``2023-01-02``, ``10:15:30``,
``2023-01-02T10:00:00Z``) rather than Java date objects; a JSON object or list cast to STRING or
BYTES is its compact JSON text rather than Java's ``{k=v}``; and a number that does not fit the
target width is an error rather than silently wrapped.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_WIDTHS = {"INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8}
_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CastError(ValueError):
    """A value that cannot be converted to the requested schema type."""


def schema_type_of(data: Any, form: str) -> str | None:
    """The schema type LangStream would give working ``data`` that goes back as ``form``.

    A JSON object parsed from text counts as STRING (from bytes, BYTES), so casting it to STRING
    changes nothing.
    """
    if data is None:
        return None
    if isinstance(data, dict):
        return {"json-text": "STRING", "json-bytes": "BYTES"}.get(form, "MAP")
    if isinstance(data, str):
        return "STRING"
    if isinstance(data, bytes):
        return "BYTES"
    if isinstance(data, bool):
        return "BOOLEAN"
    if isinstance(data, int):
        return "INT64"
    if isinstance(data, float):
        return "DOUBLE"
    return "ARRAY"


def cast(data: Any, target: str) -> Any:
    """``data`` converted to ``target`` (a name of ``CAST_TYPES``); None stays None.

    >>> cast("42", "INT32"), cast("4.5", "DOUBLE"), cast("TRUE", "BOOLEAN"), cast(7, "STRING")
    (42, 4.5, True, '7')
    """
    if data is None:
        return None
    if isinstance(data, dict | list):
        if target == "STRING":
            return _json(data)
        if target == "BYTES":
            return _json(data).encode("utf-8")
        raise CastError(f"cannot cast a JSON {_kind(data)} to {target}")
    return _CONVERTERS[target](data, target)


def _to_string(data: Any, target: str) -> str:
    if isinstance(data, bytes):
        return _utf8(data, target)
    if isinstance(data, bool):
        return "true" if data else "false"
    return str(data)


def _to_integer(data: Any, target: str) -> int:
    width = _WIDTHS[target]
    if isinstance(data, bytes):
        return int.from_bytes(_exact(data, width, target), "big", signed=True)
    if isinstance(data, bool):
        raise CastError(f"cannot cast a boolean to {target}")
    if isinstance(data, float):
        if not math.isfinite(data):
            raise CastError(f"cannot cast {data} to {target}")
        number = int(data)
    elif isinstance(data, int):
        number = data
    elif _INTEGER.match(data):
        number = int(data)
    else:
        number = int(_text_number(data, target))
    limit = 1 << (8 * width - 1)
    if not -limit <= number < limit:
        raise CastError(f"{data!r} does not fit in {target}")
    return number


def _to_float(data: Any, target: str) -> float:
    if isinstance(data, bytes):
        return float(
            struct.unpack(
                ">f" if target == "FLOAT" else ">d",
                _exact(data, 4 if target == "FLOAT" else 8, target),
            )[0]
        )
    if isinstance(data, bool):
        raise CastError(f"cannot cast a boolean to {target}")
    if isinstance(data, int | float):
        return float(data)
    return _text_number(data, target)


def _to_boolean(data: Any, target: str) -> bool:
    if isinstance(data, bool):
        return data
    if isinstance(data, bytes):
        return any(_exact(data, 1, target))
    if isinstance(data, str):
        return data.strip().lower() == "true"
    raise CastError(f"cannot cast the number {data!r} to BOOLEAN")


def _to_bytes(data: Any, target: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, bool):
        return b"\x01" if data else b"\x00"
    if isinstance(data, int):
        return _to_integer(data, "INT64").to_bytes(8, "big", signed=True)
    return struct.pack(">d", data)


def _to_date(data: Any, target: str) -> str:
    if isinstance(data, int | float) and not isinstance(data, bool):
        return (date(1970, 1, 1) + timedelta(days=int(data))).isoformat()
    text = _text(data, target)
    if len(text) == 10:
        return _parse(date.fromisoformat, text, target).isoformat()
    return _instant(text, target).date().isoformat()


def _to_time(data: Any, target: str) -> str:
    if isinstance(data, int | float) and not isinstance(data, bool):
        return _from_millis(data).time().isoformat()
    return _parse(time.fromisoformat, _text(data, target), target).isoformat()


def _to_instant(data: Any, target: str) -> str:
    if isinstance(data, int | float) and not isinstance(data, bool):
        moment = _from_millis(data)
    else:
        moment = _instant(_text(data, target), target)
    return moment.isoformat().replace("+00:00", "Z")


def _to_local_date_time(data: Any, target: str) -> str:
    if isinstance(data, int | float) and not isinstance(data, bool):
        return _from_millis(data).replace(tzinfo=None).isoformat()
    moment = _parse(datetime.fromisoformat, _text(data, target), target)
    return moment.replace(tzinfo=None).isoformat()


_CONVERTERS: dict[str, Callable[[Any, str], Any]] = {
    "STRING": _to_string,
    **dict.fromkeys(_WIDTHS, _to_integer),
    "FLOAT": _to_float,
    "DOUBLE": _to_float,
    "BOOLEAN": _to_boolean,
    "BYTES": _to_bytes,
    "DATE": _to_date,
    "LOCAL_DATE": _to_date,
    "TIME": _to_time,
    "LOCAL_TIME": _to_time,
    "TIMESTAMP": _to_instant,
    "INSTANT": _to_instant,
    "LOCAL_DATE_TIME": _to_local_date_time,
}


def _instant(text: str, target: str) -> datetime:
    """An ISO-8601 date or date-time; a date is midnight UTC and no zone means UTC."""
    if len(text) == 10:
        day = _parse(date.fromisoformat, text, target)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    moment = _parse(datetime.fromisoformat, text, target)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _from_millis(millis: float) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


def _parse(parse: Callable[[str], _T], text: str, target: str) -> _T:
    try:
        return parse(text.strip())
    except ValueError:
        raise CastError(f"cannot cast {text!r} to {target}") from None


def _text(data: Any, target: str) -> str:
    if isinstance(data, bytes):
        return _utf8(data, target)
    if isinstance(data, str):
        return data
    raise CastError(f"cannot cast {data!r} to {target}")


def _text_number(data: Any, target: str) -> float:
    text = _text(data, target)
    if not text.strip():
        return 0.0
    if not _NUMBER.match(text):
        raise CastError(f"cannot cast {text!r} to {target}: not a number")
    return float(text)


def _exact(data: bytes, width: int, target: str) -> bytes:
    if len(data) != width:
        raise CastError(f"cannot cast {len(data)} bytes to {target}: it takes {width}")
    return data


def _utf8(data: bytes, target: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        shown = base64.b64encode(data[:16]).decode("ascii")
        raise CastError(f"cannot cast bytes that are not UTF-8 to {target} ({shown}...)") from None


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _kind(data: Any) -> str:
    return "object" if isinstance(data, dict) else "list"
