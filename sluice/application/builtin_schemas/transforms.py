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

SCHEMAS: dict[str, tuple[Key, ...]] = {
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


CHECKS: dict[str, Check] = {"drop-fields": _part_read_as_value, "cast": _part_read_as_value}
