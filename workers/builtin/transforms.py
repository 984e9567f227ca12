"""LangStream's transform agents but ``compute`` (in ``workers.builtin.compute``).

``drop-fields``, ``merge-key-value``, ``unwrap-key-value``, ``cast`` and ``flatten`` each change
one record into one record, on the working form of :mod:`workers.builtin.records`: a JSON object
in text is edited as a dict and goes back as compact JSON text. ``drop`` emits nothing for the
records its ``when`` selects. A failure (a value ``cast`` cannot convert, a plain-text value
``flatten`` cannot flatten) raises, so the agent's ``errors`` policy decides what happens to the
record.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Literal

from sluice.application.builtin_config import read_configuration
from sluice.expressions import Predicate, compile_predicate
from sluice.record import Record
from workers.builtin.casting import CastError, cast, schema_type_of
from workers.builtin.records import (
    WorkingRecord,
    context_of,
    parse_json_object,
    to_record,
    to_working,
)

DROP: Literal["drop"] = "drop"
"""What :meth:`ToolkitAgent.apply` returns for a record that goes nowhere."""


class ToolkitAgent:
    """A processor that runs one step on the working form of each record.

    Subclasses name their ``agent_type`` (its configuration is read and checked with the same
    table ``sluice validate`` uses), read what they need in :meth:`configure` and change the
    working record in :meth:`apply`, which returns :data:`DROP` to emit nothing for the record.
    With a ``when`` condition that does not hold, the record goes on unchanged but for its JSON
    object value or key, written back compactly as every step writes them (LangStream's
    behaviour).
    """

    agent_type: ClassVar[str]
    when: Predicate | None = None

    async def init(self, config: dict[str, Any]) -> None:
        checked = read_configuration(self.agent_type, config)
        when = checked.get("when")
        self.when = None if when is None else compile_predicate(when)
        self.configure(checked)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def process(self, record: Record) -> list[Record]:
        working = to_working(record)
        selected = self.when is None or self.when.test(context_of(working))
        if selected and self.apply(working) == DROP:
            return []
        return [to_record(working, record)]

    def configure(self, config: dict[str, Any]) -> None:
        """Keep what :meth:`apply` needs from the checked configuration (defaults filled in)."""

    def apply(self, working: WorkingRecord) -> Literal["drop"] | None:
        """Change ``working`` in place; return :data:`DROP` to emit nothing for the record."""
        raise NotImplementedError


class Drop(ToolkitAgent):
    """``drop``: emit nothing for the records ``when`` selects (every record without ``when``).

    A dropped record is done with: its input is committed, nothing is written for it.
    """

    agent_type = "drop"

    def apply(self, working: WorkingRecord) -> Literal["drop"]:
        return DROP


def _parts(part: str | None) -> tuple[bool, bool]:
    """(key, value): ``key`` is only the key, any other value only the value, None both."""
    if part is None:
        return True, True
    return part == "key", part != "key"


class DropFields(ToolkitAgent):
    """``drop-fields``: remove top-level fields from JSON-object values and keys.

    Names that are absent are ignored; a dotted name is one field name, not a path.
    """

    agent_type = "drop-fields"

    def configure(self, config: dict[str, Any]) -> None:
        self.fields: tuple[str, ...] = config["fields"]
        self.in_key, self.in_value = _parts(config["part"])

    def apply(self, working: WorkingRecord) -> None:
        for wanted, data in ((self.in_key, working.key), (self.in_value, working.value)):
            if wanted and isinstance(data, dict):
                for name in self.fields:
                    data.pop(name, None)


class MergeKeyValue(ToolkitAgent):
    """``merge-key-value``: copy the key's fields into the value where the value lacks them.

    Only when both are JSON objects; the value's own fields win and the key is kept.
    """

    agent_type = "merge-key-value"

    def apply(self, working: WorkingRecord) -> None:
        if isinstance(working.key, dict) and isinstance(working.value, dict):
            for name, field in working.key.items():
                if name not in working.value:
                    working.value[name] = copy.deepcopy(field)


class UnwrapKeyValue(ToolkitAgent):
    """``unwrap-key-value``: drop the key, or with ``unwrapKey: true`` make it the value.

    Records without a key go on unchanged. LangStream's planner only accepts ``unwrapKey`` and
    its runtime only ``unwrap-key`` (so the agent never started there); either works here.
    """

    agent_type = "unwrap-key-value"

    def configure(self, config: dict[str, Any]) -> None:
        self.unwrap_key = bool(config["unwrapKey"] or config["unwrap-key"])

    def apply(self, working: WorkingRecord) -> None:
        if working.key is None:
            return
        if self.unwrap_key:
            working.value, working.value_form = working.key, working.key_form
        working.key, working.key_form = None, "as-is"


class Cast(ToolkitAgent):
    """``cast``: convert the value and/or the key to ``schema-type`` (see ``casting``).

    Nothing changes when the data already has that type (a JSON object in text is a STRING). A
    result that is a JSON object in text is edited as a dict again by a fused next agent.
    """

    agent_type = "cast"

    def configure(self, config: dict[str, Any]) -> None:
        self.target: str = config["schema-type"]
        self.in_key, self.in_value = _parts(config["part"])

    def apply(self, working: WorkingRecord) -> None:
        if self.in_key and working.key is not None:
            working.key, working.key_form = self._cast(working.key, working.key_form, "key")
        if self.in_value:
            working.value, working.value_form = self._cast(
                working.value, working.value_form, "value"
            )

    def _cast(self, data: Any, form: Any, part: str) -> tuple[Any, Any]:
        if schema_type_of(data, form) == self.target:
            return data, form
        try:
            return parse_json_object(cast(data, self.target))
        except CastError as error:
            raise CastError(f"cast of the {part}: {error}") from None


class Flatten(ToolkitAgent):
    """``flatten``: nested JSON objects become top-level fields named ``outer<delimiter>inner``.

    ``{"a": {"b": 1}, "c": 2}`` becomes ``{"a_b": 1, "c": 2}`` (recursively; lists and empty
    objects stay as they are). LangStream only flattened Avro records and refused JSON; Sluice
    flattens JSON objects, as its documentation describes. A value (or key) that is not a JSON
    object is an error; a missing key is left alone.
    """

    agent_type = "flatten"

    def configure(self, config: dict[str, Any]) -> None:
        self.delimiter: str = config["delimiter"]
        self.in_key, self.in_value = _parts(config["part"])

    def apply(self, working: WorkingRecord) -> None:
        if self.in_key and working.key is not None:
            working.key = self._flat(working.key, "key")
        if self.in_value:
            working.value = self._flat(working.value, "value")

    def _flat(self, data: Any, part: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            shown = "null" if data is None else type(data).__name__
            raise ValueError(f"flatten needs a JSON object {part}, got {shown}")
        out: dict[str, Any] = {}
        self._into(out, "", data)
        return out

    def _into(self, out: dict[str, Any], prefix: str, data: dict[str, Any]) -> None:
        for name, field in data.items():
            if isinstance(field, dict) and field:
                self._into(out, f"{prefix}{name}{self.delimiter}", field)
            else:
                out[f"{prefix}{name}"] = field
