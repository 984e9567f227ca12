"""Typed reading of YAML values that records every problem with its file, line and path.

Readers never raise for bad input: they record a :class:`~sluice.errors.Problem` and return a
default, so that validation reports every error of an application at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sluice.application.yamlfile import PathKey, YamlFile, YamlPath, format_path
from sluice.errors import Problem

_MISSING = object()


@dataclass
class Report:
    """Problems (errors) and warnings collected while loading an application."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


@dataclass
class Node:
    """A value at a path of a YAML file."""

    file: YamlFile
    path: YamlPath
    value: Any
    report: Report
    secret_paths: Collection[YamlPath] = ()

    # -- reporting -----------------------------------------------------------------------------

    def error(self, message: str, key: PathKey | None = None) -> None:
        self.report.problems.append(self.problem(message, key))

    def warn(self, message: str, key: PathKey | None = None) -> None:
        self.report.warnings.append(str(self.problem(message, key)))

    def problem(self, message: str, key: PathKey | None = None) -> Problem:
        """A problem at this node (or its child ``key``), naming its gateway or agent."""
        return locate(self.file, self.path if key is None else (*self.path, key), message)

    def show(self, value: Any, key: PathKey | None = None) -> str:
        """A value for an error message, hidden when it came from a secret."""
        path = self.path if key is None else (*self.path, key)
        if any(path[: len(p)] == p for p in self.secret_paths):
            return "(a secret value)"
        return repr(value)

    # -- navigation ----------------------------------------------------------------------------

    def child(self, key: PathKey, value: Any = _MISSING) -> Node:
        if value is _MISSING:
            value = self.get(key)
        return Node(self.file, (*self.path, key), value, self.report, self.secret_paths)

    def get(self, key: PathKey, default: Any = None) -> Any:
        if isinstance(self.value, dict) and isinstance(key, str):
            return self.value.get(key, default)
        return default

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and key in self.value

    def is_mapping(self, what: str = "a mapping", *, optional: bool = False) -> bool:
        if self.value is None and optional:
            return False
        if not isinstance(self.value, dict):
            self.error(f"must be {what}, got {_kind(self.value)}")
            return False
        return True

    def items(self, what: str = "a list") -> list[Node]:
        """Children of a list value (a missing value is an empty list)."""
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            self.error(f"must be {what}, got {_kind(self.value)}")
            return []
        return [self.child(i, v) for i, v in enumerate(self.value)]

    def check_keys(self, known: Collection[str]) -> None:
        """Warn about keys that mean nothing here (LangStream ignored them too)."""
        if not isinstance(self.value, dict):
            return
        for key in self.value:
            if key not in known:
                self.warn(f'unknown key "{key}" is ignored{did_you_mean(str(key), known)}', key)

    # -- typed fields --------------------------------------------------------------------------

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        choices: Collection[str] | None = None,
    ) -> str | None:
        value = self.get(key)
        if value is None:
            if required:
                self.error("is required", key)
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(f"must be a string, got {_kind(value)}", key)
            return default
        text = str(value)
        if required and not text.strip():
            self.error("must not be blank", key)
            return default
        if choices is not None and text not in choices:
            options = ", ".join(f'"{c}"' for c in choices)
            self.error(f"must be one of {options}, got {self.show(text, key)}", key)
            return default
        return text

    def integer(
        self, key: str, default: int, *, low: int | None = None, high: int | None = None
    ) -> int:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(f"must be an integer, got {self.show(value, key)}", key)
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                bounds = f">= {low}"
            elif low is None:
                bounds = f"<= {high}"
            else:
                bounds = f"between {low} and {high}"
            self.error(f"must be {bounds}, got {value}", key)
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.error(f"must be true or false, got {self.show(value, key)}", key)
            return default
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(f"must be a mapping, got {_kind(value)}", key)
            return {}
        return {str(k): v for k, v in value.items()}

    def string_list(self, key: str) -> tuple[str, ...]:
        out: list[str] = []
        for item in self.child(key).items("a list of names"):
            if isinstance(item.value, str) and item.value.strip():
                out.append(item.value)
            else:
                item.error(f"must be a non-blank string, got {_kind(item.value)}")
        return tuple(out)

    def aliased(self, *names: str) -> str | None:
        """Which of several spellings of one key is used; both at once is an error."""
        present = [n for n in names if self.has(n)]
        if len(present) > 1:
            self.error(f"use only one of {' / '.join(present)}", present[1])
        return present[0] if present else None


# Lists whose items a problem names by id, as LangStream does:
# file kind -> (path to the list, noun, keys that name an item, in order of preference).
_SUBJECTS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "gateways": (("gateways",), "gateway", ("id",)),
    "pipeline": (("pipeline",), "agent", ("id", "name")),
    "secrets": (("secrets",), "secret", ("id", "name")),
    "configuration": (("configuration", "resources"), "resource", ("id", "name")),
}


def locate(file: YamlFile, path: YamlPath, message: str) -> Problem:
    """A problem at ``path`` of ``file``, with its line and the item (gateway, agent, secret,
    resource) it is in."""
    problem = Problem(file.name, format_path(path), message, file.line(path))
    found = _subject(file, path)
    if found is None:
        return problem
    subject, depth = found
    return Problem(
        problem.file, problem.path, message, problem.line, subject, format_path(path[:depth])
    )


def _subject(file: YamlFile, path: YamlPath) -> tuple[str, int] | None:
    """``gateway "ask"`` / ``agent "counter"`` (by id, else name, else position), with the
    length of the path to that item."""
    entry = _SUBJECTS.get(file.kind)
    if entry is None:
        return None
    where, noun, names = entry
    depth = len(where) + 1
    if len(path) < depth or tuple(path[: len(where)]) != where:
        return None
    index = path[len(where)]
    if not isinstance(index, int):
        return None
    items: Any = file.data
    for key in where:
        items = items.get(key) if isinstance(items, dict) else None
    item = items[index] if isinstance(items, list) and index < len(items) else None
    for name in names:
        value = item.get(name) if isinstance(item, dict) else None
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return f'{noun} "{value}"', depth
    return f"{noun} #{index + 1}", depth


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
