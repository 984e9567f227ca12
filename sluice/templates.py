"""Mustache templates as LangStream's agents render them (JMustache 1.15, default settings).

The ``http-request`` agent's query string, headers and body, ``langserve-invoke``'s headers and
``log-event``'s message are Mustache templates rendered over a record's view: ``key``, ``value``,
``properties``, ``topicName``, ``destinationTopic``, ``eventTime``. LangStream renders them with
JMustache, whose defaults differ from the Mustache specification in ways applications rely on:

- a variable that is missing or null is an **error** (the record fails), not an empty string;
- ``{{ x }}`` escapes seven characters (``&`` ``<`` ``>`` ``"`` ``'`` backtick ``=``);
  ``{{{ x }}}`` and ``{{& x }}`` insert the text as it is;
- dotted names walk dicts and, with a number, lists: ``{{ value.docs.0.text }}``;
- a section iterates a list, renders once for any other value but ``false``, and not at all for
  an empty list, ``false``, null or a missing name (so a section is how a template tests for
  presence); ``{{^ x }}`` inverts; ``{{ -index }}`` is the 1-based index inside a list section,
  ``-first``/``-last`` tell the ends;
- values print as Java prints them: ``true``, ``1.0``, ``1.0E10``, a dict as ``{k=v}``, a list as
  ``[a, b]``.

Python's Mustache libraries (chevron, pystache) render missing names as empty text and escape
a different set of characters, so this module implements the language itself: a template is
parsed once (:func:`compile_template`; a template that does not parse raises
:class:`TemplateSyntaxError` with the line and column) and rendered per record
(:meth:`Template.render`; a missing or null name raises :class:`TemplateRenderError`).
Partials (``{{> name }}``) are refused: LangStream's agents had no way to supply them.

>>> template = compile_template("Hi {{ value.name }}{{# value.tags }}, {{.}}{{/ value.tags }}")
>>> template.render({"value": {"name": "<Jo>", "tags": ["a", "b"]}})
'Hi &lt;Jo&gt;, a, b'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.errors import SluiceError
from sluice.javatext import java_text

__all__ = [
    "Template",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "compile_template",
    "record_view",
]

_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#39;",
        "`": "&#x60;",
        "=": "&#x3D;",
    }
)
_STANDALONE_KINDS = frozenset("#^/!=>")
_MISSING = object()


class TemplateSyntaxError(SluiceError, ValueError):
    """A template does not parse: an unclosed tag or section, a mismatched close, an empty name.

    ``line`` and ``column`` (1-based) locate the tag inside the template.
    """

    def __init__(self, template: str, line: int, column: int, reason: str) -> None:
        self.template = template
        self.line = line
        self.column = column
        self.reason = reason
        super().__init__(f"invalid template {template!r} at line {line}, column {column}: {reason}")


class TemplateRenderError(SluiceError, ValueError):
    """Rendering failed: a name the template uses is missing or null in the record."""

    def __init__(self, template: str, name: str, line: int, column: int) -> None:
        self.template = template
        self.name = name
        self.line = line
        self.column = column
        super().__init__(
            f"template {template!r}: no value for {{{{ {name} }}}} at line {line}, "
            f"column {column} (missing or null in the record)"
        )


@dataclass(frozen=True)
class _Variable:
    name: str
    path: tuple[str, ...]
    raw: bool
    where: tuple[int, int]


@dataclass(frozen=True)
class _Section:
    name: str
    path: tuple[str, ...]
    inverted: bool
    children: tuple[_Node, ...]
    where: tuple[int, int]


_Node = str | _Variable | _Section


@dataclass(frozen=True)
class _Frame:
    value: Any
    index: int | None = None
    last: bool = False


@dataclass(frozen=True)
class Template:
    """A parsed template; :meth:`render` it over a view (a mapping of top-level names)."""

    source: str
    nodes: tuple[_Node, ...]

    def render(self, view: Mapping[str, Any]) -> str:
        """The text of the template over ``view``; raises :class:`TemplateRenderError`."""
        out: list[str] = []
        self._render(self.nodes, [_Frame(view)], out)
        return "".join(out)

    def _render(self, nodes: Sequence[_Node], stack: list[_Frame], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, _Variable):
                value = _lookup(stack, node.path)
                if value is _MISSING or value is None:
                    raise TemplateRenderError(self.source, node.name, *node.where)
                text = java_text(value)
                out.append(text if node.raw else text.translate(_ESCAPES))
            else:
                self._section(node, stack, out)

    def _section(self, node: _Section, stack: list[_Frame], out: list[str]) -> None:
        value = _lookup(stack, node.path)
        empty = value is _MISSING or value is None or value is False
        if isinstance(value, list | tuple):
            empty = not value
        if node.inverted:
            if empty:
                self._render(node.children, stack, out)
            return
        if empty:
            return
        if isinstance(value, list | tuple):
            for position, item in enumerate(value):
                frame = _Frame(item, position + 1, position == len(value) - 1)
                self._render(node.children, [*stack, frame], out)
        else:
            self._render(node.children, [*stack, _Frame(value)], out)


def compile_template(text: str) -> Template:
    """Parse ``text`` once; raises :class:`TemplateSyntaxError` naming line and column."""
    return Template(text, _Parser(text).parse())


def record_view(
    *,
    value: Any,
    key: Any,
    properties: Mapping[str, str],
    topic_name: str | None,
    destination_topic: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """What a template sees of a record: its working value and key (a JSON object as a dict),
    its headers as ``properties``, ``topicName``, ``destinationTopic`` and ``eventTime``."""
    return {
        "key": key,
        "value": value,
        "properties": properties,
        "topicName": topic_name,
        "destinationTopic": destination_topic,
        "eventTime": event_time,
    }


def _lookup(stack: list[_Frame], path: tuple[str, ...]) -> Any:
    """The value of a name: the first part searched from the innermost context outwards, the
    rest walked inside it. ``_MISSING`` when any part is absent."""
    first = path[0]
    if first in (".", "this"):
        value = stack[-1].value
    elif first in ("-index", "-first", "-last"):
        frame = next((f for f in reversed(stack) if f.index is not None), None)
        if frame is None or frame.index is None:
            return _MISSING
        value = {"-index": frame.index, "-first": frame.index == 1, "-last": frame.last}[first]
    else:
        for frame in reversed(stack):
            value = _fetch(frame.value, first)
            if value is not _MISSING and value is not None:
                break
        else:
            return _MISSING
    for part in path[1:]:
        value = _fetch(value, part)
        if value is _MISSING or value is None:
            return _MISSING
    return value


def _fetch(holder: Any, name: str) -> Any:
    if isinstance(holder, Mapping):
        return holder.get(name, _MISSING)
    if isinstance(holder, list | tuple) and name.isdigit():
        index = int(name)
        return holder[index] if index < len(holder) else _MISSING
    return _MISSING


class _Parser:
    """Tags and text into a tree, with the specification's standalone-line rule: a line
    holding only a section, close, comment or delimiter tag leaves no blank line behind."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.open = "{{"
        self.close = "}}"

    def parse(self) -> tuple[_Node, ...]:
        root: list[_Node] = []
        # Open sections: (name, path, inverted, where, the children list it collects into).
        open_sections: list[tuple[str, tuple[str, ...], bool, tuple[int, int], list[_Node]]] = []
        current = root
        position = 0
        text = self.text
        while position < len(text):
            start = text.find(self.open, position)
            if start < 0:
                current.append(text[position:])
                break
            where = self._where(start)
            kind, content, end = self._tag(start, where)
            before = text[position:start]
            if kind in _STANDALONE_KINDS:
                line_start = before.rfind("\n") + 1
                after_end = text.find("\n", end)
                after_end = len(text) if after_end < 0 else after_end + 1
                if (
                    not before[line_start:].strip(" \t")
                    and not text[end:after_end].strip(" \t\r\n")
                    and (line_start > 0 or position == 0 or text[position - 1] == "\n")
                ):
                    before = before[:line_start]
                    end = after_end
            if before:
                current.append(before)
            position = end
            if kind == "!":
                continue
            if kind == "=":
                self._delimiters(content, where)
                continue
            if kind == ">":
                raise TemplateSyntaxError(text, *where, "partials ({{> name }}) are not supported")
            name = content.strip()
            if not name:
                raise TemplateSyntaxError(text, *where, "a tag without a name")
            path = (name,) if name == "." else tuple(name.split("."))
            if any(not part for part in path):
                raise TemplateSyntaxError(text, *where, f"invalid name {name!r}")
            if kind in ("#", "^"):
                children: list[_Node] = []
                open_sections.append((name, path, kind == "^", where, children))
                current = children
            elif kind == "/":
                if not open_sections:
                    raise TemplateSyntaxError(text, *where, f"{{{{/{name}}}}} closes no section")
                opened, opened_path, inverted, opened_where, children = open_sections.pop()
                if opened != name:
                    raise TemplateSyntaxError(
                        text, *where, f"{{{{/{name}}}}} closes the section {opened!r}"
                    )
                current = open_sections[-1][4] if open_sections else root
                current.append(
                    _Section(opened, opened_path, inverted, tuple(children), opened_where)
                )
            else:
                current.append(_Variable(name, path, kind in ("{", "&"), where))
        if open_sections:
            name, _, _, where, _ = open_sections[-1]
            raise TemplateSyntaxError(text, *where, f"section {name!r} is not closed")
        return tuple(root)

    def _tag(self, start: int, where: tuple[int, int]) -> tuple[str, str, int]:
        """(kind, content, end) of the tag at ``start``; kind is "" for a plain variable."""
        inner = start + len(self.open)
        kind = self.text[inner : inner + 1]
        close = self.close
        if kind == "{" and self.open == "{{":
            close = "}" + self.close
        elif kind == "=":
            close = "=" + self.close
        elif kind not in ("&", "#", "^", "/", "!", ">"):
            kind = ""
        body = inner + len(kind)
        stop = self.text.find(close, body)
        if stop < 0:
            raise TemplateSyntaxError(self.text, *where, f"tag not closed by {close!r}")
        return kind, self.text[body:stop], stop + len(close)

    def _delimiters(self, content: str, where: tuple[int, int]) -> None:
        parts = content.split()
        if len(parts) != 2:
            raise TemplateSyntaxError(self.text, *where, f"invalid delimiters {content!r}")
        self.open, self.close = parts

    def _where(self, offset: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, offset) + 1
        return line, offset - (self.text.rfind("\n", 0, offset) + 1) + 1
