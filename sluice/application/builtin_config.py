"""The configuration keys of built-in agent types, checked by ``sluice validate`` and the worker.

One table per type (declared by its family in ``builtin_schemas``) says which keys exist, their
kind, whether they are required, their default and their choices. :func:`check_configuration`
reports problems on the YAML node (file and line, as every other validation error; an expression
that does not compile adds its column); :func:`read_configuration` is the worker's reading of the
same table: the values with their defaults filled in, or :class:`BadConfiguration` listing every
problem. Keeping both on one table means an application that validates is one the worker accepts.

Unknown keys are warnings, not errors: LangStream refused them, but an application that carries a
stray key still means what it says, and a warning points at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import Check, Key, Problem
from sluice.application.builtin_schemas import (
    ai,
    datasources,
    embeddings,
    flare,
    flow,
    http,
    rerank,
    sources,
    text,
    transforms,
)
from sluice.application.reader import Node, did_you_mean
from sluice.errors import SluiceError
from sluice.expressions import ExpressionSyntaxError, compile_expression, compile_predicate

__all__ = ["SCHEMAS", "BadConfiguration", "check_configuration", "read_configuration"]

_FAMILIES = (transforms, flow, http, text, ai, embeddings, rerank, flare, sources, datasources)

SCHEMAS: dict[str, tuple[Key, ...]] = {
    name: keys for family in _FAMILIES for name, keys in family.SCHEMAS.items()
}
"""Agent type -> its configuration keys (types without an entry are not checked here)."""

_CHECKS: dict[str, Check] = {
    name: check for family in _FAMILIES for name, check in family.CHECKS.items()
}

_PREFIXED: dict[str, tuple[str, ...]] = {
    name: prefixes
    for family in _FAMILIES
    for name, prefixes in getattr(family, "PREFIXED", {}).items()
}
"""Agent type -> prefixes of its key families (``vector.metadata.<name>``): a top-level key
starting with one is known; the family's check reads its values."""

# What the worker adds to every agent's configuration; never the user's mistake.
_RUNTIME_KEYS = ("resources", "resource-types", "globals")


class BadConfiguration(SluiceError, ValueError):
    """A built-in agent's configuration the worker cannot run: every problem, one per line."""

    def __init__(self, agent_type: str, problems: list[str]) -> None:
        self.agent_type = agent_type
        self.problems = problems
        super().__init__(f"{agent_type}: " + "; ".join(problems))


def check_configuration(agent_type: str, node: Node) -> None:
    """Report the problems of ``node`` (an agent's ``configuration``) for ``agent_type``."""
    schema = SCHEMAS.get(agent_type)
    if schema is None or not isinstance(node.value, dict):
        return  # a configuration that is not a mapping is reported once, by its reader
    for path, message, fatal in problems_of(agent_type, node.value):
        target = node
        for step in path[:-1]:
            target = target.child(step)
        if fatal:
            target.error(message, path[-1])
        else:
            target.warn(message, path[-1])


def read_configuration(agent_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration of a built-in agent with defaults filled in.

    ``objects`` lists come back as tuples of dicts with their own defaults filled in; ``names``
    as tuples; ``mapping`` values as dicts of texts. Raises :class:`BadConfiguration` naming
    every wrong, missing or ill-typed key.
    """
    fatal = [
        f"{_dotted(path)}: {message}"
        for path, message, is_fatal in problems_of(agent_type, config)
        if is_fatal
    ]
    if fatal:
        raise BadConfiguration(agent_type, fatal)
    return _read(SCHEMAS.get(agent_type, ()), config)


def problems_of(agent_type: str, config: Mapping[str, Any]) -> list[Problem]:
    """Every problem of ``config`` for ``agent_type``, keys first, then the family's checks."""
    out = _problems(agent_type, SCHEMAS.get(agent_type, ()), config, (), top=True)
    check = _CHECKS.get(agent_type)
    if check is not None and not any(fatal for _, _, fatal in out):
        out.extend(check(config))
    return out


def _read(schema: tuple[Key, ...], config: Mapping[str, Any]) -> dict[str, Any]:
    values = {key.name: key.default for key in schema}
    for key in schema:
        value = config.get(key.name)
        if value is None:
            continue
        if key.kind == "boolean" and isinstance(value, str):
            value = value.lower() == "true"
        elif key.kind in ("string", "expression", "predicate"):
            value = value if isinstance(value, str) else _text(value)
        elif key.kind == "integer":
            value = int(value)
        elif key.kind in ("names", "texts"):
            value = tuple(value)
        elif key.kind == "mapping":
            value = {str(name): _text(item) for name, item in value.items()}
        elif key.kind == "objects":
            value = tuple(_read(key.items, element) for element in value)
        values[key.name] = value
    return values


def _problems(
    agent_type: str,
    schema: tuple[Key, ...],
    config: Mapping[str, Any],
    where: tuple[str | int, ...],
    *,
    top: bool = False,
) -> list[Problem]:
    out: list[Problem] = []
    known = {key.name for key in schema}
    prefixes = _PREFIXED.get(agent_type, ()) if top else ()
    for name in config:
        if any(str(name).startswith(p) and len(str(name)) > len(p) for p in prefixes):
            continue
        if name not in known and not (top and name in _RUNTIME_KEYS):
            hint = did_you_mean(str(name), known)
            message = f'unknown key "{name}" of {agent_type} is ignored{hint}'
            out.append(((*where, str(name)), message, False))
    for key in schema:
        path = (*where, key.name)
        value = config.get(key.name)
        if value is None:
            if key.required:
                out.append((path, f"is required by {agent_type}", True))
            continue
        if key.kind == "objects":
            out.extend(_objects(agent_type, key, value, path))
            continue
        wrong = _wrong(key, value)
        if wrong is not None:
            out.append((path, wrong, True))
    return out


def _objects(agent_type: str, key: Key, value: Any, path: tuple[str | int, ...]) -> list[Problem]:
    if not isinstance(value, list):
        return [(path, f"must be a list of mappings, got {_shown(value)}", True)]
    out: list[Problem] = []
    for index, element in enumerate(value):
        if not isinstance(element, dict):
            out.append(((*path, index), f"must be a mapping, got {_shown(element)}", True))
        else:
            out.extend(_problems(agent_type, key.items, element, (*path, index)))
    return out


def _wrong(key: Key, value: Any) -> str | None:
    """Why ``value`` does not fit ``key``, or None."""
    if key.kind == "any":
        return None
    if key.kind == "boolean":
        if isinstance(value, bool) or (
            isinstance(value, str) and value.lower() in ("true", "false")
        ):
            return None
        return f"must be true or false, got {value!r}"
    if key.kind == "integer":
        return _wrong_integer(key, value)
    if key.kind == "names":
        if isinstance(value, str):
            return f"must be a list of names, got the string {value!r}"
        if not isinstance(value, list) or not value:
            return f"must be a non-empty list of names, got {value!r}"
        bad = [v for v in value if not isinstance(v, str) or not v.strip()]
        return f"must hold non-blank strings, got {bad[0]!r}" if bad else None
    if key.kind == "texts":
        if not isinstance(value, list):
            return f"must be a list of strings, got {_shown(value)}"
        bad = [v for v in value if not isinstance(v, str)]
        return f"must hold strings, got {bad[0]!r}" if bad else None
    if key.kind == "mapping":
        if not isinstance(value, dict):
            return f"must be a mapping of names to texts, got {_shown(value)}"
        bad = [n for n, v in value.items() if isinstance(v, dict | list)]
        return f"{bad[0]!r} must be a text, got a {_shown(value[bad[0]])}" if bad else None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"must be a string, got {value!r}"
    if key.kind in ("expression", "predicate"):
        return _wrong_expression(key, _text(value))
    if key.choices is not None and str(value) not in key.choices:
        options = ", ".join(key.choices)
        return f"must be one of {options}, got {value!r}"
    return None


def _wrong_integer(key: Key, value: Any) -> str | None:
    try:
        number = int(value) if isinstance(value, str) else value
    except ValueError:
        number = None
    if isinstance(number, bool) or not isinstance(number, int):
        return f"must be a whole number, got {value!r}"
    if key.minimum is not None and number < key.minimum:
        return f"must be at least {key.minimum}, got {number}"
    return None


def _wrong_expression(key: Key, text: str) -> str | None:
    try:
        if key.kind == "predicate":
            compile_predicate(text)
        else:
            compile_expression(text)
    except ExpressionSyntaxError as error:
        return f"{error.reason} at column {error.column} of the expression {text!r}"
    return None


def _text(value: Any) -> str:
    """A scalar as YAML wrote it (``true`` -> "true", 1.5 -> "1.5")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return repr(value)


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)[1:]
