"""The grammar of LangStream's expression language and its syntax tree.

LangStream evaluates agent expressions with Jakarta EL 5.0, method calls disabled. This is the
part of EL those expressions use: literals (strings in either quote, integers, decimals, true,
false, null, lists ``[a, b]`` and maps ``{'k': v}``), ``value.a.b`` and ``value['a'][0]`` access,
arithmetic, comparison and logic with their word aliases, ``empty``, ``a ? b : c``, the string
concatenation ``+=`` and ``fn:name(...)`` calls. EL's assignment, lambdas, ``;`` sequences, set
literals and method calls are refused when compiling, with the column of the offending part.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import lark
from lark import Lark, Token, Transformer, Tree, v_args

from sluice.expressions.errors import ExpressionSyntaxError

#: Longest expression text accepted; bounds the work of compiling and of evaluating one.
MAX_LENGTH = 4096
#: Deepest nesting of the syntax tree (operators, calls, brackets) accepted.
MAX_DEPTH = 48

_GRAMMAR = r"""
?start: ternary

?ternary: or_expr
    | or_expr "?" ternary ":" ternary -> cond

?or_expr: and_expr
    | or_expr ("||" | "or") and_expr -> or_

?and_expr: eq_expr
    | and_expr ("&&" | "and") eq_expr -> and_

?eq_expr: rel_expr
    | eq_expr ("==" | "eq") rel_expr -> eq
    | eq_expr ("!=" | "ne") rel_expr -> ne

?rel_expr: cat_expr
    | rel_expr ("<" | "lt") cat_expr -> lt
    | rel_expr (">" | "gt") cat_expr -> gt
    | rel_expr ("<=" | "le") cat_expr -> le
    | rel_expr (">=" | "ge") cat_expr -> ge

?cat_expr: add_expr
    | cat_expr "+=" add_expr -> concat

?add_expr: mul_expr
    | add_expr "+" mul_expr -> add
    | add_expr "-" mul_expr -> sub

?mul_expr: unary
    | mul_expr "*" unary -> mul
    | mul_expr ("/" | "div") unary -> div
    | mul_expr ("%" | "mod") unary -> mod

?unary: postfix
    | "-" unary -> neg
    | ("!" | "not") unary -> not_
    | "empty" unary -> empty

?postfix: primary
    | postfix "." NAME -> attr
    | postfix "[" ternary "]" -> index
    | postfix "(" [arguments] ")" -> method_call

?primary: INT -> int_
    | DECIMAL -> decimal
    | STRING -> string
    | "true" -> true
    | "false" -> false
    | "null" -> null
    | NAME -> ident
    | FUNCTION "(" [arguments] ")" -> function
    | "(" ternary ")"
    | "[" [arguments] "]" -> list_
    | "{" [entries] "}" -> map_
    | "{" arguments "}" -> set_

arguments: ternary ("," ternary)*
entries: entry ("," entry)*
entry: ternary ":" ternary

FUNCTION.3: /[A-Za-z_$][A-Za-z0-9_$]*:[A-Za-z_$][A-Za-z0-9_$]*(?=\s*\()/
NAME: /[A-Za-z_$][A-Za-z0-9_$]*/
DECIMAL.2: /(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|\d+[eE][+-]?\d+/
INT: /\d+/
STRING: /'(\\.|[^'\\])*'/ | /"(\\.|[^"\\])*"/

%import common.WS
%ignore WS
"""


@functools.cache
def _parser() -> Lark:
    # Built on first use (no work at import time); LALR keeps parsing linear and non-recursive.
    return Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=True)


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the syntax tree: ``kind`` names the construct, ``column`` where it starts."""

    kind: str
    column: int
    children: tuple[Any, ...] = ()


def unescape(text: str) -> str:
    """The value of an EL string literal (quotes included in ``text``): only ``\\\\``, ``\\'``
    and ``\\"`` are escapes; any other backslash stays, so regular expressions like ``'\\d+'``
    read as written."""
    body = text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in "\\'\"":
            out.append(body[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


_REFUSED_TOKENS = {
    "=": "assignment is not supported (compare with == or eq)",
    ";": "';' sequences are not supported",
    "->": "lambda expressions are not supported",
    "#": "'#{...}' deferred expressions are not supported",
}


class _ToNodes(Transformer[Token, Node]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def _refuse(self, column: int, reason: str) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(self._text, column, reason)

    @v_args(meta=True)
    def __default__(self, data: str, children: list[Any], meta: Any) -> Node:
        return Node(data, meta.column, tuple(children))

    @v_args(meta=True)
    def int_(self, meta: Any, children: list[Token]) -> Node:
        text = str(children[0])
        return Node("literal", meta.column, (int(text),))

    @v_args(meta=True)
    def decimal(self, meta: Any, children: list[Token]) -> Node:
        return Node("literal", meta.column, (float(str(children[0])),))

    @v_args(meta=True)
    def string(self, meta: Any, children: list[Token]) -> Node:
        return Node("literal", meta.column, (unescape(str(children[0])),))

    @v_args(meta=True)
    def true(self, meta: Any, children: list[Any]) -> Node:
        return Node("literal", meta.column, (True,))

    @v_args(meta=True)
    def false(self, meta: Any, children: list[Any]) -> Node:
        return Node("literal", meta.column, (False,))

    @v_args(meta=True)
    def null(self, meta: Any, children: list[Any]) -> Node:
        return Node("literal", meta.column, (None,))

    @v_args(meta=True)
    def ident(self, meta: Any, children: list[Token]) -> Node:
        return Node("ident", meta.column, (str(children[0]),))

    @v_args(meta=True)
    def attr(self, meta: Any, children: list[Any]) -> Node:
        base, name = children
        if str(name).startswith("__"):
            raise self._refuse(
                name.column, f"property names starting with '__' are not allowed: {name}"
            )
        return Node("index", meta.column, (base, Node("literal", name.column, (str(name),))))

    @v_args(meta=True)
    def function(self, meta: Any, children: list[Any]) -> Node:
        name, arguments = children
        args = () if arguments is None else arguments.children
        return Node("function", meta.column, (str(name), *args))

    @v_args(meta=True)
    def method_call(self, meta: Any, children: list[Any]) -> Node:
        callee = self._text[meta.column - 1 : meta.end_column - 1].split("(")[0].strip()
        raise self._refuse(
            meta.column,
            f"method calls are not supported: {callee}(...); "
            "use the fn: functions (fn:uppercase, fn:length, ...)",
        )

    @v_args(meta=True)
    def set_(self, meta: Any, children: list[Any]) -> Node:
        raise self._refuse(meta.column, "set literals are not supported; write a list [a, b]")

    @v_args(meta=True)
    def list_(self, meta: Any, children: list[Any]) -> Node:
        arguments = children[0]
        return Node("list", meta.column, () if arguments is None else arguments.children)

    @v_args(meta=True)
    def map_(self, meta: Any, children: list[Any]) -> Node:
        entries = children[0]
        pairs = () if entries is None else tuple(entry.children for entry in entries.children)
        return Node("map", meta.column, pairs)


def _depth(tree: Tree[Token]) -> int:
    deepest = 0
    stack: list[tuple[Tree[Token], int]] = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in node.children if isinstance(child, Tree))
    return deepest


def parse(text: str) -> Node:
    """The syntax tree of ``text``, or :class:`ExpressionSyntaxError` with the column."""
    if not text.strip():
        raise ExpressionSyntaxError(text, 1, "the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionSyntaxError(
            text[:80] + "...", MAX_LENGTH + 1, f"longer than {MAX_LENGTH} characters"
        )
    stripped = text.strip()
    if stripped.startswith(("${", "#{")) and stripped.endswith("}"):
        raise ExpressionSyntaxError(
            text, text.index(stripped[0]) + 1, "write the expression without the surrounding ${ }"
        )
    try:
        tree = _parser().parse(text)
    except lark.UnexpectedCharacters as error:
        position = error.pos_in_stream or 0
        found = text[position : position + 2]
        reason = next(
            (why for token, why in _REFUSED_TOKENS.items() if found.startswith(token)),
            f"unexpected character {text[position]!r}",
        )
        raise ExpressionSyntaxError(text, error.column, reason) from None
    except lark.UnexpectedToken as error:
        token = error.token
        if token.type == "$END":
            raise ExpressionSyntaxError(
                text, len(text) + 1, "the expression ends too early"
            ) from None
        found = str(token)
        reason = _REFUSED_TOKENS.get(found, f"unexpected {found!r}")
        column = token.column if isinstance(token.column, int) else 1
        if found == ">" and token.start_pos and text[token.start_pos - 1] == "-":
            reason, column = _REFUSED_TOKENS["->"], column - 1
        raise ExpressionSyntaxError(text, column, reason) from None
    except lark.UnexpectedEOF:
        raise ExpressionSyntaxError(text, len(text) + 1, "the expression ends too early") from None
    if _depth(tree) > MAX_DEPTH:
        raise ExpressionSyntaxError(text, 1, f"nested deeper than {MAX_DEPTH} levels")
    try:
        return _ToNodes(text).transform(tree)
    except lark.exceptions.VisitError as error:
        if isinstance(error.orig_exc, ExpressionSyntaxError):
            raise error.orig_exc from None
        raise
