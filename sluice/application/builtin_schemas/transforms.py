"""Configuration of the transform agents: compute, drop, drop-fields, cast, flatten..."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import TOOLKIT, Check, Key, Problem

CAST_TYPES = (
    "STRING",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FLOAT",
    "DOUBLE",
    "BOOLEAN",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "INSTANT",
    "LOCAL_DATE",
    "LOCAL_TIME",
    "LOCAL_DATE_TIME",
    "BYTES",
)

COMPUTE_TYPES = (
    *CAST_TYPES,
    "DATETIME",
    "DECIMAL",
    "ARRAY",
    "MAP",
)
"""Every name of LangStream's ``ComputeFieldType``; ARRAY and MAP are only ever inferred."""

_COMPUTE_FIELD = (
    Key("name", "string", required=True),
    Key("expression", "expression", required=True),
    Key("type", "string", choices=COMPUTE_TYPES),
    # LangStream's planner says false, its runtime true; it only matters for Avro schemas.
    Key("optional", "boolean", default=True),
)

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "compute": (*TOOLKIT, Key("fields", "objects", required=True, items=_COMPUTE_FIELD)),
    "drop": TOOLKIT,
    "drop-fields": (*TOOLKIT, Key("fields", "names", required=True), Key("part", "string")),
    "merge-key-value": TOOLKIT,
    # LangStream's planner accepts ``unwrapKey``, its runtime only ``unwrap-key``: both work here.
    "unwrap-key-value": (
        *TOOLKIT,
        Key("unwrapKey", "boolean", default=False),
        Key("unwrap-key", "boolean", default=False),
    ),
    "cast": (
        *TOOLKIT,
        Key("schema-type", "string", required=True, choices=CAST_TYPES),
        Key("part", "string"),
    ),
    "flatten": (
        *TOOLKIT,
        Key("delimiter", "string", default="_"),
        Key("part", "string", choices=("key", "value")),
    ),
}


def _part_read_as_value(config: Mapping[str, Any]) -> list[Problem]:
    part = config.get("part")
    if part in (None, "key", "value"):
        return []
    return [(("part",), f"{part!r} is read as value (key, value or absent for both)", False)]


_WHOLE_NAMES = ("value", "key", "destinationTopic", "messageKey")
_TEXT_TARGETS = ("destinationTopic", "messageKey")


def _compute_fields(config: Mapping[str, Any]) -> list[Problem]:
    """LangStream's rules on ``fields`` that one key cannot say (it refused these at start)."""
    out: list[Problem] = []
    if not config["fields"]:
        out.append((("fields",), "is empty: the agent changes nothing", False))
    seen: set[str] = set()
    for index, field in enumerate(config["fields"]):
        name, kind = str(field["name"]), field.get("type")
        where = ("fields", index)
        problem = _compute_name_problem(name)
        if problem is not None:
            out.append(((*where, "name"), problem, True))
        elif name in seen:
            out.append(((*where, "name"), f"duplicate compute field name {name!r}", True))
        seen.add(name)
        if kind in ("ARRAY", "MAP"):
            message = f"{kind} is only inferred from a result, it cannot be given as a type"
            out.append(((*where, "type"), message, True))
        elif name in ("value", "key") and kind == "DATE":
            message = (
                f"the whole {name} cannot have the type DATE: use TIMESTAMP or INSTANT, "
                "then a cast agent to DATE"
            )
            out.append(((*where, "type"), message, True))
        elif name in ("value", "key") and kind == "DECIMAL":
            out.append(((*where, "type"), f"the whole {name} cannot have the type DECIMAL", True))
        elif kind is not None and (name in _TEXT_TARGETS or name.startswith("properties.")):
            message = f"{name} is always a text: its type {kind} is ignored"
            out.append(((*where, "type"), message, False))
    return out


def _compute_name_problem(name: str) -> str | None:
    if name in _WHOLE_NAMES:
        return None
    part, dot, field = name.partition(".")
    if not dot or not field or part not in ("value", "key", "properties"):
        return (
            f"invalid compute field name {name!r}: it should be one of value, key, "
            "destinationTopic, messageKey, or start with value., key. or properties."
        )
    if part != "properties" and not _is_field_name(field):
        return (
            f"invalid compute field name {name!r}: a {part} field name is letters, digits and _, "
            "not starting with a digit (a dotted name is no path)"
        )
    return None


def _is_field_name(name: str) -> bool:
    """An Avro name, as LangStream checks the name of each field compute writes."""
    return (name[0].isalpha() or name[0] == "_") and all(c.isalnum() or c == "_" for c in name[1:])


CHECKS: dict[str, Check] = {
    "drop-fields": _part_read_as_value,
    "cast": _part_read_as_value,
    "compute": _compute_fields,
}
