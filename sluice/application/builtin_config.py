"""The configuration keys of built-in agent types, checked by ``sluice validate`` and the worker.

One table per type says which keys exist, their kind, whether they are required and their
choices. :func:`check_configuration` reports problems on the YAML node (file and line, as every
other validation error); :func:`read_configuration` is the worker's reading of the same table: the
values with their defaults filled in, or :class:`BadConfiguration` listing every problem. Keeping
both on one table means an application that validates is one the worker accepts.

Unknown keys are warnings, not errors: LangStream refused them, but an application that carries a
stray key still means what it says, and a warning points at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sluice.application.reader import Node, did_you_mean
from sluice.errors import SluiceError

Kind = Literal["string", "boolean", "names"]


@dataclass(frozen=True)
class Key:
    """One configuration key: ``names`` is a list of non-blank strings."""

    name: str
    kind: Kind
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] | None = None


class BadConfiguration(SluiceError, ValueError):
    """A built-in agent's configuration the worker cannot run: every problem, one per line."""

    def __init__(self, agent_type: str, problems: list[str]) -> None:
        self.agent_type = agent_type
        self.problems = problems
        super().__init__(f"{agent_type}: " + "; ".join(problems))


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

# Keys every GenAI-toolkit step of LangStream accepts. ``composable`` is read by the planner.
_TOOLKIT = (Key("when", "string"), Key("composable", "boolean", default=True))

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "drop-fields": (*_TOOLKIT, Key("fields", "names", required=True), Key("part", "string")),
    "merge-key-value": _TOOLKIT,
    # LangStream's planner accepts ``unwrapKey``, its runtime only ``unwrap-key``: both work here.
    "unwrap-key-value": (
        *_TOOLKIT,
        Key("unwrapKey", "boolean", default=False),
        Key("unwrap-key", "boolean", default=False),
    ),
    "cast": (
        *_TOOLKIT,
        Key("schema-type", "string", required=True, choices=CAST_TYPES),
        Key("part", "string"),
    ),
    "flatten": (
        *_TOOLKIT,
        Key("delimiter", "string", default="_"),
        Key("part", "string", choices=("key", "value")),
    ),
}
"""Agent type -> its configuration keys (types without an entry are not checked here)."""

# What the worker adds to every agent's configuration; never the user's mistake.
_RUNTIME_KEYS = ("resources", "globals")


def check_configuration(agent_type: str, node: Node) -> None:
    """Report the problems of ``node`` (an agent's ``configuration``) for ``agent_type``."""
    schema = SCHEMAS.get(agent_type)
    if schema is None or not isinstance(node.value, dict):
        return  # a configuration that is not a mapping is reported once, by its reader
    for key, message, fatal in _problems(agent_type, schema, node.value):
        if fatal:
            node.error(message, key)
        else:
            node.warn(message, key)


def read_configuration(agent_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration of a built-in agent with defaults filled in.

    Raises :class:`BadConfiguration` naming every wrong, missing or ill-typed key.
    """
    schema = SCHEMAS.get(agent_type, ())
    problems = _problems(agent_type, schema, config)
    fatal = [f"{key}: {message}" for key, message, is_fatal in problems if is_fatal]
    if fatal:
        raise BadConfiguration(agent_type, fatal)
    values = {key.name: key.default for key in schema}
    for key in schema:
        value = config.get(key.name)
        if value is None:
            continue
        if key.kind == "boolean" and isinstance(value, str):
            value = value.lower() == "true"
        elif key.kind == "string":
            value = str(value)
        elif key.kind == "names":
            value = tuple(value)
        values[key.name] = value
    return values


def _problems(
    agent_type: str, schema: tuple[Key, ...], config: Mapping[str, Any]
) -> list[tuple[str, str, bool]]:
    """(key, message, fatal) for each problem: fatal ones are errors, the others warnings."""
    out: list[tuple[str, str, bool]] = []
    known = {key.name for key in schema}
    for name in config:
        if name not in known and name not in _RUNTIME_KEYS:
            hint = did_you_mean(str(name), known)
            out.append((str(name), f'unknown key "{name}" of {agent_type} is ignored{hint}', False))
    for key in schema:
        value = config.get(key.name)
        if value is None:
            if key.required:
                out.append((key.name, f"is required by {agent_type}", True))
            continue
        message = _wrong(key, value)
        if message is not None:
            out.append((key.name, message, True))
    if config.get("when") is not None:
        # One place to lift when the expression language runs predicates.
        out.append(("when", f"is not supported by Sluice yet on {agent_type}", True))
    if agent_type in ("drop-fields", "cast") and config.get("part") not in (None, "key", "value"):
        out.append(
            ("part", f"{config['part']!r} is read as value (key, value or absent for both)", False)
        )
    return out


def _wrong(key: Key, value: Any) -> str | None:
    """Why ``value`` does not fit ``key``, or None."""
    if key.kind == "boolean":
        if isinstance(value, bool) or (
            isinstance(value, str) and value.lower() in ("true", "false")
        ):
            return None
        return f"must be true or false, got {value!r}"
    if key.kind == "names":
        if isinstance(value, str):
            return f"must be a list of names, got the string {value!r}"
        if not isinstance(value, list) or not value:
            return f"must be a non-empty list of names, got {value!r}"
        bad = [v for v in value if not isinstance(v, str) or not v.strip()]
        return f"must hold non-blank strings, got {bad[0]!r}" if bad else None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"must be a string, got {value!r}"
    if key.choices is not None and str(value) not in key.choices:
        options = ", ".join(key.choices)
        return f"must be one of {options}, got {value!r}"
    return None
