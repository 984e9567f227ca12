"""Placeholders: ``${secrets.<id>.<key>}``, ``${globals.<key>}`` and the legacy ``{{ ... }}`` forms.

A value that is exactly one placeholder takes the referenced value with its type (a mapping, a
number...); a placeholder inside a longer text is replaced by its text (JSON for non-strings,
nothing for null). Legacy mustache placeholders with another root (``{{ value.question }}``) are
left alone: they belong to agent prompt templates, as are ``${...}`` holding a colon, which are
Camel simple expressions (``move: done/${file:name}`` in camel-source options).

A key missing from a secret that exists resolves to nothing (null, or an empty text inside a longer
value) with a warning, as LangStream resolves it; a missing secret is an error.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.application.yamlfile import YamlPath

# A colon never appears in secrets.* or globals.* references: ${file:name} or
# ${date:now:yyyyMMdd} are Camel simple expressions (camel-source options), left for Camel.
_DOLLAR = r"\$\{\s*(?P<d>[^{}:]*?)\s*\}"
_MUSTACHE = r"\{\{\{?\s*(?P<m>(?:secrets|globals)\.[^{}]*?)\s*\}?\}\}"
PLACEHOLDER = re.compile(f"{_DOLLAR}|{_MUSTACHE}")
# ``$${NAME}`` is an escaped reference, written as ``${NAME}`` (commons-text's escape, which
# LangStream's CLI uses).
ENV_REFERENCE = re.compile(
    r"(?P<escape>\$?)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FILE_REFERENCE = re.compile(r"<file:(?P<name>.*?)>")
# LangStream's CLI inlines files whose name ends so as text, any other file as base64.
TEXT_FILE_ENDINGS = ("txt", "yaml", "yml", "json", "text")
ROOTS = ("secrets", "globals")


class PlaceholderError(Exception):
    """A placeholder that cannot be resolved; the message never contains a secret value."""


@dataclass
class Resolution:
    """The outcome of resolving one tree: the new value, errors by path, paths fed by secrets."""

    value: Any
    errors: list[tuple[YamlPath, str]] = field(default_factory=list)
    secret_paths: set[YamlPath] = field(default_factory=set)
    warnings: list[tuple[YamlPath, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PlaceholderContext:
    secrets: Mapping[str, Mapping[str, Any]]
    globals: Mapping[str, Any]

    def lookup(self, expression: str, warnings: list[str] | None = None) -> Any:
        """The value ``expression`` names; a key missing from an existing secret is None, with
        a message in ``warnings``, and so is a bare unknown name such as ``${KAFKA_HOST}`` (an
        unset environment variable that instance.yaml kept as written)."""
        parts = [p.strip() for p in expression.split(".")]
        root, rest = parts[0], parts[1:]
        if root not in ROOTS and not rest and ENV_NAME.fullmatch(root):
            # LangStream looks a bare name up in its context ({cluster, globals, secrets}) and
            # reads a miss as null.
            if warnings is not None:
                warnings.append(
                    f"${{{root}}} names nothing (no secrets.<id>.<key> or globals.<key>; an unset "
                    "environment variable?): it resolves to nothing (null; empty inside a longer "
                    "text), as in LangStream"
                )
            return None
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
        for position, name in enumerate(rest, 1):
            if not isinstance(current, Mapping) or name not in current:
                if root == "secrets" and position == len(rest) and isinstance(current, Mapping):
                    # LangStream reads a missing last key as null instead of failing.
                    if warnings is not None:
                        warnings.append(
                            f'{what} has no key "{name}": the placeholder resolves to nothing '
                            "(null; empty inside a longer text), as in LangStream"
                        )
                    return None
                raise PlaceholderError(f'{what} has no key "{name}"')
            current = current[name]
            what = f'{what} key "{name}"'
        return current


def resolve(data: Any, context: PlaceholderContext, path: YamlPath = ()) -> Resolution:
    """Resolve every placeholder in ``data`` (a tree of dicts, lists and scalars)."""
    result = Resolution(None)
    result.value = _resolve_tree(
        data, path, result, lambda text, warnings: _substitute(text, context, warnings)
    )
    return result


def resolve_environment(
    data: Any,
    environ: Mapping[str, str],
    path: YamlPath = (),
    *,
    directory: Path | None = None,
) -> Resolution:
    """Substitute ``${NAME}`` / ``${NAME:-default}`` environment references, then, when
    ``directory`` is given, inline ``<file:NAME>`` references to files relative to it.

    Used on instance.yaml and secrets.yaml only, as LangStream's CLI does, so their secrets can
    come from the environment of the person running the command and from files next to them.
    Like LangStream's CLI, a reference to an unset variable without a default is kept as
    written (``${NAME}``), with a warning: LangStream's stock secrets.yaml has several. A file
    whose name ends in txt, yaml, yml, json or text is inlined as UTF-8 text, any other as
    ``base64:`` and its bytes in base64; a file that cannot be read is an error.
    """
    result = Resolution(None)

    def substitute(text: str, warnings: list[str]) -> tuple[Any, bool]:
        def one(match: re.Match[str]) -> str:
            name, default = match.group("name"), match.group("default")
            if match.group("escape"):
                return match.group(0)[1:]
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            warnings.append(
                f"environment variable {name} is not set: ${{{name}}} is kept as written, "
                "as LangStream's CLI keeps it"
            )
            return match.group(0)

        text = ENV_REFERENCE.sub(one, text)
        if directory is not None and "<file:" in text:
            text = FILE_REFERENCE.sub(lambda m: read_file_reference(directory, m["name"]), text)
        return text, False

    result.value = _resolve_tree(data, path, result, substitute)
    return result


def read_file_reference(directory: Path, name: str) -> str:
    """The text ``<file:name>`` stands for; :class:`PlaceholderError` naming the file if it
    cannot be read."""
    target = directory / name
    try:
        if name.lower().endswith(TEXT_FILE_ENDINGS):
            return target.read_text(encoding="utf-8")
        return "base64:" + base64.b64encode(target.read_bytes()).decode("ascii")
    except UnicodeDecodeError:
        raise PlaceholderError(
            f"<file:{name}>: {target} is not UTF-8 text (files ending in "
            f"{', '.join(TEXT_FILE_ENDINGS)} are inlined as text)"
        ) from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise PlaceholderError(f"<file:{name}>: cannot read {target}: {reason}") from None


def _resolve_tree(
    data: Any,
    path: YamlPath,
    result: Resolution,
    substitute: Callable[[str, list[str]], tuple[Any, bool]],
) -> Any:
    if isinstance(data, dict):
        return {
            key: _resolve_tree(value, (*path, str(key)), result, substitute)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_resolve_tree(v, (*path, i), result, substitute) for i, v in enumerate(data)]
    if isinstance(data, str):
        warnings: list[str] = []
        try:
            value, from_secret = substitute(data, warnings)
        except PlaceholderError as exc:
            result.errors.append((path, str(exc)))
            return data
        finally:
            result.warnings.extend((path, warning) for warning in warnings)
        if from_secret:
            result.secret_paths.add(path)
        return value
    return data


def _substitute(text: str, context: PlaceholderContext, warnings: list[str]) -> tuple[Any, bool]:
    if "${" not in text and "{{" not in text:
        return text, False
    matches = list(PLACEHOLDER.finditer(text))
    if not matches:
        return text, False
    from_secret = False
    if len(matches) == 1 and matches[0].span() == (0, len(text)):
        expression = _expression(matches[0])
        return context.lookup(expression, warnings), expression.startswith("secrets")
    pieces: list[str] = []
    position = 0
    for match in matches:
        expression = _expression(match)
        from_secret = from_secret or expression.startswith("secrets")
        value = context.lookup(expression, warnings)
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
