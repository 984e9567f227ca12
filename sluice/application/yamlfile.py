"""YAML files with the line of every value, so errors can say where they are."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sluice.errors import Problem

PathKey = str | int
YamlPath = tuple[PathKey, ...]


def format_path(path: YamlPath) -> str:
    """``("pipeline", 1, "input")`` -> ``pipeline[1].input``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass
class YamlFile:
    """A parsed YAML document and the line (1-based) where each of its values starts.

    ``kind`` says which file of an application it is (``pipeline``, ``gateways``...), so
    problems inside one of its gateways or agents can name it.
    """

    name: str
    data: Any
    lines: dict[YamlPath, int] = field(default_factory=dict)
    kind: str = ""

    def line(self, path: YamlPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


class YamlSyntaxError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def parse_yaml(text: str, name: str) -> YamlFile:
    """Parse one YAML document; syntax errors and duplicate keys raise :class:`YamlSyntaxError`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlSyntaxError(Problem(name, "", f"YAML syntax error: {reason}", line)) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Problem(name, "", f"YAML syntax error: {exc}")) from None
    result = YamlFile(name, None)
    if node is None:
        return result
    constructor = yaml.SafeLoader("")
    try:
        result.data = _build(node, (), result, constructor)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlSyntaxError(
            Problem(name, "", f"invalid YAML value: {exc.problem}", line)
        ) from None
    finally:
        constructor.dispose()
    return result


def load_yaml(path: Path, name: str) -> YamlFile:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise YamlSyntaxError(Problem(name, "", "the file is not UTF-8 text")) from None
    except OSError as exc:
        raise YamlSyntaxError(Problem(name, "", f"cannot read the file: {exc.strerror}")) from None
    return parse_yaml(text, name)


def _build(node: yaml.Node, path: YamlPath, out: YamlFile, constructor: yaml.SafeLoader) -> Any:
    out.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        constructor.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise YamlSyntaxError(
                    Problem(
                        out.name,
                        format_path(path),
                        "a mapping key must be a scalar",
                        key_node.start_mark.line + 1,
                    )
                )
            if key in mapping:
                raise YamlSyntaxError(
                    Problem(
                        out.name,
                        format_path((*path, str(key))),
                        f'duplicate key "{key}"',
                        key_node.start_mark.line + 1,
                    )
                )
            child = (*path, str(key))
            mapping[key] = _build(value_node, child, out, constructor)
            # A value is reported on the line of its key: a nested block starts one line below.
            out.lines[child] = key_node.start_mark.line + 1
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), out, constructor) for i, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def walk(data: Any, path: YamlPath = ()) -> Iterator[tuple[YamlPath, Any]]:
    """Every leaf value with its path."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from walk(value, (*path, i))
    else:
        yield path, data
