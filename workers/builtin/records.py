"""How LangStream's GenAI-toolkit agents see a record, and how they write into one.

Those agents (``compute``, ``drop-fields``, ``cast``, ``flatten``, ``ai-chat-completions``...)
work on a mutable form of the record: a value or key that is a JSON object in text (``str`` or
``bytes``) is parsed into a dict so that fields can be read and written; headers become
``properties`` (a dict of strings). After the step, a dict that came from text goes back to text:
compact JSON, original key order kept, new keys appended. A dict that arrived as a dict (a JSON
CloudEvent, or from a fused agent before) stays a dict. Anything else (plain text, a JSON array or
number in text, invalid JSON) is left as it is: only JSON *objects* are parsed.

>>> from sluice.record import Record
>>> working = to_working(Record('{ "a" : 1.0, "b":[ 1, 2 ] }', headers={"p": "v"}))
>>> working.value, working.properties
({'a': 1.0, 'b': [1, 2]}, {'p': 'v'})
>>> set_field(working, "x", "value.c")
>>> to_record(working, Record("")).value
'{"a":1.0,"b":[1,2],"c":"x"}'

The field-name grammar of results (:func:`parse_field_name`, :func:`set_field`): ``value``,
``key``, ``value.<name>``, ``key.<name>``, ``properties.<name>``, ``destinationTopic``,
``messageKey``. ``<name>`` is one top-level field: ``value.a.b`` is the field ``"a.b"``, not a
path. ``destinationTopic`` sends the record to that topic instead of the agent's output and
``messageKey`` becomes the record's key (its Kafka key): LangStream's runtime dropped both, its
documentation promises them.

These are pure functions over :class:`sluice.record.Record`; the agents of this package import
them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sluice.expressions import EvaluationContext
from sluice.record import Record
from sluice.templates import record_view

Form = Literal["json-text", "json-bytes", "as-is"]
"""How a working value or key goes back: to JSON text, to JSON bytes, or unchanged."""

Part = Literal["value", "key", "properties", "destinationTopic", "messageKey"]

_WHOLE: frozenset[str] = frozenset({"value", "key", "destinationTopic", "messageKey"})
_PREFIXED: tuple[Part, ...] = ("value", "key", "properties")


class FieldNameError(ValueError):
    """A result field name outside the grammar (``value``, ``value.x``, ``properties.x``...)."""


class FieldWriteError(ValueError):
    """A result field that cannot be written on this record (``value.x`` on plain text...)."""


@dataclass
class WorkingRecord:
    """The mutable form of a record while a step works on it.

    ``value``/``key``: a dict when the record held a JSON object, else as received.
    ``properties``: the headers. ``topic``: where it came from. ``event_time``: milliseconds
    since the epoch. ``destination_topic``: the topic the record goes to instead of the output;
    ``message_key``: when set, the key the record goes out with.
    """

    value: Any
    key: Any = None
    properties: dict[str, str] = field(default_factory=dict)
    topic: str | None = None
    event_time: int | None = None
    value_form: Form = "as-is"
    key_form: Form = "as-is"
    destination_topic: str | None = None
    message_key: str | None = None


@dataclass(frozen=True)
class FieldName:
    """A parsed result field name: ``part`` and, for ``value.x``/``key.x``/``properties.x``,
    the field ``name``."""

    part: Part
    name: str | None = None


def parse_json_object(data: Any) -> tuple[Any, Form]:
    """``data`` as the working form sees it, with how it goes back.

    >>> parse_json_object('{"a": 1}'), parse_json_object("[1, 2]"), parse_json_object(b'{}')
    (({'a': 1}, 'json-text'), ('[1, 2]', 'as-is'), ({}, 'json-bytes'))
    """
    if isinstance(data, str | bytes) and data.lstrip()[:1] in ("{", b"{"):
        try:
            parsed = json.loads(data, parse_constant=_no_constant)
        except ValueError:
            return data, "as-is"
        if isinstance(parsed, dict):
            return parsed, "json-text" if isinstance(data, str) else "json-bytes"
    return data, "as-is"


def to_working(record: Record) -> WorkingRecord:
    """The working form of ``record`` (JSON objects in text parsed, headers as properties).

    A value or key that already is a dict (a JSON CloudEvent, or the output of a fused agent) is
    copied: steps write its top-level fields, and the input record must stay as it was read,
    for a retry and for its dead letter.
    """
    value, value_form = parse_json_object(record.value)
    key, key_form = parse_json_object(record.key)
    if value_form == "as-is" and isinstance(value, dict):
        value = dict(value)
    if key_form == "as-is" and isinstance(key, dict):
        key = dict(key)
    return WorkingRecord(
        value=value,
        key=key,
        properties=dict(record.headers),
        topic=record.origin,
        event_time=record.timestamp,
        value_form=value_form,
        key_form=key_form,
    )


def context_of(working: WorkingRecord) -> EvaluationContext:
    """What the expression language sees of ``working``: value, key, properties..."""
    return EvaluationContext(
        value=working.value,
        key=working.key,
        properties=working.properties,
        topic_name=working.topic,
        event_time=working.event_time,
        destination_topic=working.destination_topic,
        message_key=working.message_key,
    )


def template_view(working: WorkingRecord) -> dict[str, Any]:
    """What a Mustache template sees of ``working`` (LangStream's ``JsonRecord``)."""
    return record_view(
        value=working.value,
        key=working.key,
        properties=working.properties,
        topic_name=working.topic,
        destination_topic=working.destination_topic,
        event_time=working.event_time,
    )


def to_record(working: WorkingRecord, record: Record) -> Record:
    """``record`` with what the step made of it: dicts that came from text go back to text,
    a ``messageKey`` written replaces the key, a ``destinationTopic`` routes it. A step that
    changed nothing of an unparsed record gives ``record`` itself (no copy)."""
    if (
        working.value_form == "as-is"
        and working.key_form == "as-is"
        and working.message_key is None
        and working.destination_topic is None
        and _same(working.value, record.value)
        and _same(working.key, record.key)
        and working.event_time == record.timestamp
        and working.properties == record.headers
    ):
        return record
    key = (
        back(working.key, working.key_form) if working.message_key is None else working.message_key
    )
    return replace(
        record,
        value=back(working.value, working.value_form),
        key=key,
        headers=working.properties,
        timestamp=working.event_time,
        destination=working.destination_topic or record.destination,
    )


def _same(working: Any, original: Any) -> bool:
    """Whether a working value or key is still the original (dicts are compared, as
    :func:`to_working` copied them)."""
    return working is original or (type(working) is dict and working == original)


def back(data: Any, form: Form) -> Any:
    """A working value or key in its outgoing shape (compact JSON for dicts that were text)."""
    if not isinstance(data, dict) or form == "as-is":
        return data
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text if form == "json-text" else text.encode("utf-8")


def parse_field_name(text: str) -> FieldName:
    """The target a result field name means; raises :class:`FieldNameError` outside the grammar.

    >>> parse_field_name("value.a.b"), parse_field_name("messageKey")
    (FieldName(part='value', name='a.b'), FieldName(part='messageKey', name=None))
    """
    if text in _WHOLE:
        return FieldName(text)  # type: ignore[arg-type]
    prefix, dot, name = text.partition(".")
    if dot and name and prefix in _PREFIXED:
        return FieldName(prefix, name)
    raise FieldNameError(
        f"invalid field name {text!r}: it should be value, key, destinationTopic, messageKey, "
        "or start with value., key. or properties."
    )


def set_field(working: WorkingRecord, content: Any, field_name: str | None) -> None:
    """Write ``content`` where ``field_name`` says (None means the whole value).

    ``value.x``/``key.x`` need a JSON-object value/key; a property becomes the text of
    ``content``. Raises :class:`FieldNameError` or :class:`FieldWriteError`.
    """
    target = FieldName("value") if field_name is None else parse_field_name(field_name)
    if target.name is None:
        if target.part == "value":
            working.value = content
            # A whole value replaced by a dict goes out as JSON text, as LangStream's does.
            working.value_form = "json-text"
        elif target.part == "key":
            working.key = content
            working.key_form = "json-text"
        elif target.part == "destinationTopic":
            working.destination_topic = None if content is None else str(content)
        else:
            working.message_key = None if content is None else str(content)
        return
    if target.part == "properties":
        if content is None:
            raise FieldWriteError(f"cannot set property {target.name!r} to null")
        working.properties[target.name] = property_text(content)
        return
    holder = working.value if target.part == "value" else working.key
    if not isinstance(holder, dict):
        raise FieldWriteError(
            f"cannot set {target.part}.{target.name}: the {target.part} is not a JSON object"
        )
    holder[target.name] = content


def property_text(content: Any) -> str:
    """How a result is written into a header: text as is, other values as JSON text."""
    if isinstance(content, str):
        return content
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
