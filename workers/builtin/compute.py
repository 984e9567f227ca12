"""LangStream's ``compute`` agent: fields of a record computed with expressions.

Each entry of ``fields`` names a target (``value``, ``key``, ``value.<f>``, ``key.<f>``,
``properties.<p>``, ``destinationTopic``, ``messageKey``), an ``expression`` compiled once when
the agent starts, and optionally a ``type`` (see :mod:`workers.builtin.compute_types`).

The fields are applied in five groups, in LangStream's order, whatever their order in the
configuration:

1. the whole ``key``, then the whole ``value``: only on a key/value that is text, bytes or a
   scalar (a JSON object in text counts as text); a record without a key keeps none, a record
   without a value fails; the ``value`` expression sees the new key;
2. ``key.<f>``: every expression evaluated first, then all written, on a JSON-object key;
3. ``value.<f>``: the same on a JSON-object value;
4. ``destinationTopic`` and ``messageKey``: each evaluated and written in turn, texts only;
5. ``properties.<p>``: each evaluated and written in turn, as text.

So a group sees what earlier groups wrote (``properties.p = value.x`` sees a ``value.x`` computed
in the same step) and, in groups 2 and 3, not what its own fields write. A ``value.<f>`` or
``key.<f>`` on plain text (or a JSON array) is silently ignored, its expression not evaluated.

Differences from LangStream: ``destinationTopic`` sends the record to that topic instead of the
agent's output and ``messageKey`` becomes its key (LangStream's runtime lost both). A failure
(an expression error, a null without a type, a map for a whole value...) raises, so the agent's
``errors`` policy decides what happens to the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.expressions import Expression, compile_expression, to_text
from workers.builtin.casting import schema_type_of
from workers.builtin.compute_types import (
    ComputeTypeError,
    as_field,
    as_whole,
    convert,
    infer_field,
    infer_whole,
)
from workers.builtin.records import FieldName, WorkingRecord, context_of, parse_field_name
from workers.builtin.transforms import ToolkitAgent

_HEADERS = ("destinationTopic", "messageKey")


@dataclass(frozen=True)
class ComputeField:
    """One compiled ``fields[]`` entry: where it writes, its expression, its type (or None)."""

    name: str
    target: FieldName
    expression: Expression
    type: str | None

    def evaluate(self, working: WorkingRecord) -> Any:
        return self.expression.evaluate(context_of(working))


class ComputeError(ValueError):
    """A compute field whose result cannot be written (null or a map where text is needed...)."""


class Compute(ToolkitAgent):
    """``compute``: set fields of the value or key, headers, the key or the destination topic."""

    agent_type = "compute"

    def configure(self, config: dict[str, Any]) -> None:
        fields = [
            ComputeField(
                name=entry["name"],
                target=parse_field_name(entry["name"]),
                expression=compile_expression(entry["expression"]),
                type=entry.get("type"),
            )
            for entry in config["fields"]
        ]

        def group(*parts: str, whole: bool) -> tuple[ComputeField, ...]:
            return tuple(
                f for f in fields if f.target.part in parts and (f.target.name is None) == whole
            )

        self.whole_key = next(iter(group("key", whole=True)), None)
        self.whole_value = next(iter(group("value", whole=True)), None)
        self.key_fields = group("key", whole=False)
        self.value_fields = group("value", whole=False)
        self.header_fields = group(*_HEADERS, whole=True)
        self.properties = group("properties", whole=False)

    def apply(self, working: WorkingRecord) -> None:
        self._whole(working)
        if isinstance(working.key, dict):
            self._fields(working, working.key, self.key_fields)
        if isinstance(working.value, dict):
            self._fields(working, working.value, self.value_fields)
        for field in self.header_fields:
            text = _text_result(field, field.evaluate(working))
            if field.target.part == "destinationTopic":
                working.destination_topic = text
            else:
                working.message_key = text
        for field in self.properties:
            assert field.target.name is not None
            working.properties[field.target.name] = _text_result(field, field.evaluate(working))

    def _whole(self, working: WorkingRecord) -> None:
        field = self.whole_key
        if field is not None and _primitive(working.key, working.key_form):
            working.key = _whole_result(field, field.evaluate(working))
            working.key_form = "as-is"
        field = self.whole_value
        if field is not None:
            if working.value is None:
                raise ComputeError(f"compute field {field.name}: the record has no value")
            if _primitive(working.value, working.value_form):
                working.value = _whole_result(field, field.evaluate(working))
                working.value_form = "as-is"

    @staticmethod
    def _fields(
        working: WorkingRecord, holder: dict[str, Any], fields: tuple[ComputeField, ...]
    ) -> None:
        results = [(field, _field_result(field, field.evaluate(working))) for field in fields]
        for field, result in results:
            assert field.target.name is not None
            holder[field.target.name] = result


def _primitive(data: Any, form: Any) -> bool:
    """Whether LangStream's schema of ``data`` is a primitive one (a JSON object in text is)."""
    return data is not None and schema_type_of(data, form) not in ("MAP", "ARRAY")


def _whole_result(field: ComputeField, result: Any) -> Any:
    try:
        if field.type is None:
            return infer_whole(result)
        return as_whole(convert(result, field.type))
    except ComputeTypeError as error:
        raise ComputeTypeError(f"compute field {field.name}: {error}") from None


def _field_result(field: ComputeField, result: Any) -> Any:
    try:
        if field.type is None:
            return infer_field(result)
        return as_field(convert(result, field.type))
    except ComputeTypeError as error:
        raise ComputeTypeError(f"compute field {field.name}: {error}") from None


def _text_result(field: ComputeField, result: Any) -> str:
    """Headers, the destination topic and the message key are texts; null is refused."""
    if result is None:
        raise ComputeError(
            f"compute field {field.name}: the expression {field.expression.text!r} gave null, "
            "a text is needed"
        )
    return to_text(result)
