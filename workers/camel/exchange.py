"""From the JSON document the route posts for an exchange to a :class:`~sluice.record.Record`.

- value: the body; bytes when Camel had bytes, a file or a stream (class ``[B``), else the JSON
  value Jackson wrote (a string, number, boolean, map or list; an object as the map of its
  properties; ``None`` for no body);
- key: the value of the ``key-header`` header, if configured and present (strings, numbers and
  booleans as they are, anything else as its JSON text, as LangStream did);
- headers: every Camel header, as text (strings unchanged, other values as JSON; headers
  without a value, or holding an object such as a scheduler, are left out);
- origin: the component URI (without ``component-options``, where secrets usually go);
- timestamp: ``CamelMessageTimestamp`` when the component sets it (the time the message
  originated, e.g. a file's modification time), else unset (the time it is written).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sluice.record import Record
from workers.camel.route import BODY, BODY_CLASS, BODY_JSON

__all__ = ["InvalidExchange", "to_record"]

_TIMESTAMP = "CamelMessageTimestamp"
#: Header values left out: no value, or an object the route would not look into.
_NOTHING: tuple[Any, ...] = (None, {})


class InvalidExchange(ValueError):
    """The posted document is not what the route writes."""


def to_record(document: bytes, *, key_header: str, origin: str) -> Record:
    """The record of one exchange, or :class:`InvalidExchange`.

    >>> record = to_record(
    ...     b'{"n": 1, "SluiceCamelBody": "hi", "SluiceCamelBodyClass": "java.lang.String"}',
    ...     key_header="n",
    ...     origin="timer:t",
    ... )
    >>> record.value, record.key, dict(record.headers), record.origin
    ('hi', 1, {'n': '1'}, 'timer:t')
    """
    try:
        fields = json.loads(document)
    except ValueError as error:
        raise InvalidExchange(f"not JSON: {error}") from None
    if not isinstance(fields, dict) or BODY not in fields:
        raise InvalidExchange(f"a JSON object with {BODY} was expected")
    body = fields.pop(BODY)
    body_class = fields.pop(BODY_CLASS, None)
    if body_class == "[B" and isinstance(body, str):
        try:
            body = base64.b64decode(body, validate=True)
        except binascii.Error as error:
            raise InvalidExchange(f"the body is not base64: {error}") from None
    if fields.pop(BODY_JSON, None) is not None and isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as error:
            raise InvalidExchange(f"the body is not JSON: {error}") from None
    key = fields.get(key_header) if key_header else None
    timestamp = fields.get(_TIMESTAMP)
    return Record(
        body,
        key=_key(key),
        headers={name: _text(value) for name, value in fields.items() if value not in _NOTHING},
        origin=origin,
        timestamp=timestamp if isinstance(timestamp, int) and timestamp > 0 else None,
    )


def _key(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
