"""Placeholders: ``${secrets.<id>.<key>}``, ``${globals.<key>}`` and the legacy ``{{ ... }}`` forms.

A value that is exactly one placeholder takes the referenced value with its type (a mapping, a
number...); a placeholder inside a longer text is replaced by its text (JSON for non-strings,
nothing for null). Legacy mustache placeholders with another root (``{{ value.question }}``) are
left alone: they belong to agent prompt templates, as are ``${...}`` holding a colon, which are
Camel simple expressions (``move: done/${file:name}`` in camel-source options).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.application.yamlfile import YamlPath

# A colon never appears in secrets.* or globals.* references: ${file:name} or
# ${date:now:yyyyMMdd} are Camel simple expressions (camel-source options), left for Camel.
_DOLLAR = r"\$\{\s*(?P<d>[^{}:]*?)\s*\}"
_MUSTACHE = r"\{\{\{?\s*(?P<m>(?:secrets|globals)\.[^{}]*?)\s*\}?\}\}"
PLACEHOLDER = re.compile(f"{_DOLLAR}|{_MUSTACHE}")
ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
ROOTS = ("secrets", "globals")


class PlaceholderError(Exception):
    """A placeholder that cannot be resolved; the message never contains a secret value."""


@dataclass
class Resolution:
    """The outcome of resolving one tree: the new value, errors by path, paths fed by secrets."""

    value: Any
    errors: list[tuple[YamlPath, str]] = field(default_factory=list)
    secret_paths: set[YamlPath] = field(default_factory=set)


@dataclass(frozen=True)
class PlaceholderContext:
    secrets: Mapping[str, Mapping[str, Any]]
    globals: Mapping[str, Any]

    def lookup(self, expression: str) -> Any:
        parts = [p.strip() for p in expression.split(".")]
        root, rest = parts[0], parts[1:]
        if root not in ROOTS:
            raise PlaceholderError(
                f"unknown placeholder root {root!r} (use secrets.<id>.<key> or globals.<key>)"
            )
        if not rest or not all(rest):
            raise PlaceholderError(f"incomplete placeholder {expression!r}")
        if root == "secrets":
            secret = self.secrets.get(rest[0])
            if secret is None:
                known = ", ".join(sorted(self.secrets)) or "none; pass secrets.yaml with -s"
                raise PlaceholderError(f'no secret with id "{rest[0]}" (known secrets: {known})')
            current: Any = secret
            what = f'secret "{rest[0]}"'
            rest = rest[1:]
            if not rest:
                raise PlaceholderError(f"placeholder must name a key of {what}")
        else:
            current = self.globals
            what = "globals"
        for name in rest:
            if not isinstance(current, Mapping) or name not in current:
                raise PlaceholderError(f'{what} has no key "{name}"')
            current = current[name]
            what = f'{what} key "{name}"'
        return current


def resolve(data: Any, context: PlaceholderContext, path: YamlPath = ()) -> Resolution:
    """Resolve every placeholder in ``data`` (a tree of dicts, lists and scalars)."""
    result = Resolution(None)
    result.value = _resolve_tree(data, path, result, lambda text: _substitute(text, context))
    return result


def resolve_environment(data: Any, environ: Mapping[str, str], path: YamlPath = ()) -> Resolution:
    """Substitute ``${NAME}`` / ``${NAME:-default}`` environment references.

    Used on instance.yaml and secrets.yaml only, as LangStream's CLI did, so their secrets can
    come from the environment of the person running the command.
    """
    result = Resolution(None)

    def substitute(text: str) -> tuple[Any, bool]:
        def one(match: re.Match[str]) -> str:
            name, default = match.group("name"), match.group("default")
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise PlaceholderError(f"environment variable {name} is not set")

        return ENV_REFERENCE.sub(one, text), False

    result.value = _resolve_tree(data, path, result, substitute)
    return result


def _resolve_tree(
    data: Any,
    path: YamlPath,
    result: Resolution,
    substitute: Callable[[str], tuple[Any, bool]],
) -> Any:
    if isinstance(data, dict):
        return {
            key: _resolve_tree(value, (*path, str(key)), result, substitute)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_resolve_tree(v, (*path, i), result, substitute) for i, v in enumerate(data)]
    if isinstance(data, str):
        try:
            value, from_secret = substitute(data)
        except PlaceholderError as exc:
            result.errors.append((path, str(exc)))
            return data
        if from_secret:
            result.secret_paths.add(path)
        return value
    return data


def _substitute(text: str, context: PlaceholderContext) -> tuple[Any, bool]:
    if "${" not in text and "{{" not in text:
        return text, False
    matches = list(PLACEHOLDER.finditer(text))
    if not matches:
        return text, False
    from_secret = False
    if len(matches) == 1 and matches[0].span() == (0, len(text)):
        expression = _expression(matches[0])
        return context.lookup(expression), expression.startswith("secrets")
    pieces: list[str] = []
    position = 0
    for match in matches:
        expression = _expression(match)
        from_secret = from_secret or expression.startswith("secrets")
        value = context.lookup(expression)
        pieces.append(text[position : match.start()])
        pieces.append(_as_text(value))
        position = match.end()
    pieces.append(text[position:])
    return "".join(pieces), from_secret


def _expression(match: re.Match[str]) -> str:
    return (match.group("d") if match.group("d") is not None else match.group("m")).strip()


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)
