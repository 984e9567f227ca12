"""Compiling and evaluating expressions against a record.

:func:`compile_expression` parses once (at validation or agent start) into a tree of closures;
:meth:`Expression.evaluate` runs them against an :class:`EvaluationContext` the agent builds from
its record. Evaluation reads the record's JSON data by map key and list index only, calls only
the ``fn:`` functions, and never changes the data it reads.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sluice.expressions import operators
from sluice.expressions.errors import ExpressionError, ExpressionSyntaxError, PropertyNotFound
from sluice.expressions.functions import FUNCTIONS
from sluice.expressions.syntax import Node, parse
from sluice.expressions.values import (
    CoercionError,
    NotFound,
    describe,
    is_empty,
    to_boolean,
    to_text,
)

#: How deep ``fn:filter`` calls may nest at run time (their predicate can come from the record).
MAX_FILTER_DEPTH = 4

#: The top-level names an expression can read, and what each is bound to.
IDENTIFIERS = (
    "value",
    "key",
    "properties",
    "topicName",
    "eventTime",
    "destinationTopic",
    "messageKey",
    "record",
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """What an expression sees of a record.

    ``value`` and ``key`` are the record's working forms (a dict for a JSON object, otherwise the
    raw text, bytes or number); ``properties`` are its headers as texts; ``topic_name`` is the
    topic it was read from and ``event_time`` its timestamp in epoch milliseconds. ``key`` falls
    back to ``message_key`` when it is None. ``record`` is the current element inside
    ``fn:filter`` and the agents' ``loop-over``. ``clock`` gives ``fn:now()``.
    """

    value: Any = None
    key: Any = None
    properties: Mapping[str, str] = field(default_factory=dict)
    topic_name: str | None = None
    event_time: int | None = None
    destination_topic: str | None = None
    message_key: Any = None
    record: Any = None
    clock: Callable[[], datetime] = _utc_now
    filter_depth: int = 0


_Evaluator = Callable[[EvaluationContext], Any]

_READERS: dict[str, _Evaluator] = {
    "value": lambda c: c.value,
    "key": lambda c: c.message_key if c.key is None else c.key,
    "properties": lambda c: c.properties,
    "topicName": lambda c: c.topic_name,
    "eventTime": lambda c: c.event_time,
    "destinationTopic": lambda c: c.destination_topic,
    "messageKey": lambda c: c.message_key,
    "record": lambda c: c.record,
}

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": operators.add,
    "sub": operators.subtract,
    "mul": operators.multiply,
    "div": operators.divide,
    "mod": operators.modulo,
    "concat": operators.concatenate,
    "eq": operators.equals,
    "ne": lambda a, b: not operators.equals(a, b),
    "lt": operators.relational("lt"),
    "gt": operators.relational("gt"),
    "le": operators.relational("le"),
    "ge": operators.relational("ge"),
    "index": operators.get_property,
}


class Expression:
    """A compiled expression; :meth:`evaluate` may be called any number of times, from any
    thread."""

    __slots__ = ("_run", "text")

    def __init__(self, text: str, run: _Evaluator) -> None:
        self.text = text
        self._run = run

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def evaluate(self, context: EvaluationContext) -> Any:
        """The expression's value for ``context``; raises :class:`ExpressionError` (or its
        subclass :class:`PropertyNotFound`) naming the expression and what failed.

        The result may share lists and maps with the context's data: copy before changing it.
        """
        try:
            return self._run(context)
        except NotFound as error:
            raise PropertyNotFound(self.text, str(error)) from None
        except CoercionError as error:
            raise ExpressionError(self.text, str(error)) from None
        except (ArithmeticError, ValueError, OverflowError) as error:
            if isinstance(error, ExpressionError):
                raise
            raise ExpressionError(self.text, f"{type(error).__name__}: {error}") from None


class Predicate:
    """A compiled ``when`` condition (see :meth:`test`)."""

    __slots__ = ("expression",)

    def __init__(self, expression: Expression) -> None:
        self.expression = expression

    @property
    def text(self) -> str:
        return self.expression.text

    def __repr__(self) -> str:
        return f"Predicate({self.text!r})"

    def test(self, context: EvaluationContext) -> bool:
        """Whether the condition holds: true, or a text saying "true" (any case). A name the
        record does not have (an unknown identifier, ``value.x`` on plain text) makes it false,
        as does null; a number or another non-boolean fails with :class:`ExpressionError`."""
        try:
            result = self.expression.evaluate(context)
        except PropertyNotFound:
            return False
        if result is None or isinstance(result, bool | str):
            return to_boolean(result)
        raise ExpressionError(
            self.text, f"a condition must be true or false, got {describe(result)}"
        )


@functools.lru_cache(maxsize=1024)
def compile_expression(text: str) -> Expression:
    """Compile ``text`` (an expression without ``${ }``); raises
    :class:`ExpressionSyntaxError` with the column of the problem."""
    if not isinstance(text, str):
        raise ExpressionSyntaxError(
            repr(text), 1, f"an expression must be a text, got {type(text).__name__}"
        )
    return Expression(text, _Compiler(text).compile(parse(text)))


def compile_predicate(text: str) -> Predicate:
    """Compile a ``when`` condition (see :meth:`Predicate.test`)."""
    return Predicate(compile_expression(text))


class _Compiler:
    def __init__(self, text: str) -> None:
        self.text = text

    def compile(self, node: Node) -> _Evaluator:
        kind = node.kind
        if kind == "literal":
            constant = node.children[0]
            return lambda c: constant
        if kind == "ident":
            return self._identifier(node)
        if kind in _BINARY:
            return self._binary(_BINARY[kind], node)
        if kind == "and_":
            left, right = map(self.compile, node.children)
            return lambda c: to_boolean(left(c)) and to_boolean(right(c))
        if kind == "or_":
            left, right = map(self.compile, node.children)
            return lambda c: to_boolean(left(c)) or to_boolean(right(c))
        if kind == "not_":
            operand = self.compile(node.children[0])
            return lambda c: not to_boolean(operand(c))
        if kind == "neg":
            operand = self.compile(node.children[0])
            return lambda c: operators.negate(operand(c))
        if kind == "empty":
            operand = self.compile(node.children[0])
            return lambda c: is_empty(operand(c))
        if kind == "cond":
            test, then, otherwise = map(self.compile, node.children)
            return lambda c: then(c) if to_boolean(test(c)) else otherwise(c)
        if kind == "list":
            items = [self.compile(child) for child in node.children]
            return lambda c: [item(c) for item in items]
        if kind == "map":
            pairs = [(self.compile(k), self.compile(v)) for k, v in node.children]
            return lambda c: _build_map([(k(c), v(c)) for k, v in pairs])
        if kind == "function":
            return self._function(node)
        raise ExpressionSyntaxError(self.text, node.column, f"unsupported construct {kind}")

    def _identifier(self, node: Node) -> _Evaluator:
        name = node.children[0]
        reader = _READERS.get(name)
        if reader is not None:
            return reader
        known = ", ".join(IDENTIFIERS)

        def unknown(context: EvaluationContext) -> Any:
            raise NotFound(f"unknown identifier {name!r} (an expression can read {known})")

        return unknown

    def _binary(self, op: Callable[[Any, Any], Any], node: Node) -> _Evaluator:
        left_node, right_node = node.children
        left = self.compile(left_node)
        if right_node.kind == "literal":
            # ``value.n``, ``value.n + 1``: a constant right side is not a call per evaluation.
            constant = right_node.children[0]
            if op is operators.get_property and isinstance(constant, str):
                get_property = operators.get_property

                def read(c: EvaluationContext) -> Any:
                    base = left(c)
                    # A JSON object's key, as get_property reads it, without its checks.
                    return (
                        base.get(constant) if type(base) is dict else get_property(base, constant)
                    )

                return read
            return lambda c: op(left(c), constant)
        right = self.compile(right_node)
        return lambda c: op(left(c), right(c))

    def _function(self, node: Node) -> _Evaluator:
        qualified, *arguments = node.children
        namespace, name = qualified.split(":")
        if namespace != "fn":
            raise ExpressionSyntaxError(
                self.text, node.column, f"unknown function {qualified}: functions are fn:name(...)"
            )
        args = [self.compile(argument) for argument in arguments]
        if name == "now":
            self._arity(node, name, len(args), 0, 0)
            return lambda c: c.clock()
        if name == "filter":
            self._arity(node, name, len(args), 2, 2)
            return self._filter(arguments[1], args)
        function = FUNCTIONS.get(name)
        if function is None:
            known = ", ".join(f"fn:{n}" for n in sorted([*FUNCTIONS, "now", "filter"]))
            raise ExpressionSyntaxError(
                self.text, node.column, f"unknown function fn:{name} (known: {known})"
            )
        self._arity(node, name, len(args), function.least, function.most)
        call = function.call
        if len(args) == 1:
            [only] = args

            def apply_one(context: EvaluationContext) -> Any:
                value = only(context)
                try:
                    return call(value)
                except CoercionError as error:
                    raise CoercionError(f"fn:{name}: {error}") from None

            return apply_one

        def apply(context: EvaluationContext) -> Any:
            values = [arg(context) for arg in args]
            try:
                return call(*values)
            except CoercionError as error:
                raise CoercionError(f"fn:{name}: {error}") from None

        return apply

    def _arity(self, node: Node, name: str, count: int, least: int, most: int | None) -> None:
        if count < least or (most is not None and count > most):
            wanted = (
                f"{least}"
                if least == most
                else f"at least {least}"
                if most is None
                else f"{least} to {most}"
            )
            raise ExpressionSyntaxError(
                self.text, node.column, f"fn:{name} takes {wanted} arguments, got {count}"
            )

    def _filter(self, condition_node: Node, args: list[_Evaluator]) -> _Evaluator:
        items_of, condition_of = args
        fixed: Predicate | None = None
        if condition_node.kind == "literal" and isinstance(condition_node.children[0], str):
            try:
                fixed = compile_predicate(condition_node.children[0])
            except ExpressionSyntaxError as error:
                raise ExpressionSyntaxError(
                    self.text, condition_node.column, f"in fn:filter's condition: {error.reason}"
                ) from None

        def apply(context: EvaluationContext) -> Any:
            items = items_of(context)
            if items is None:
                return None
            if not isinstance(items, list | tuple):
                raise CoercionError(f"fn:filter needs a list, got {describe(items)}")
            if context.filter_depth >= MAX_FILTER_DEPTH:
                raise CoercionError(f"fn:filter nested more than {MAX_FILTER_DEPTH} deep")
            predicate = fixed
            if predicate is None:
                try:
                    predicate = compile_predicate(to_text(condition_of(context)))
                except ExpressionSyntaxError as error:
                    raise CoercionError(f"fn:filter's condition: {error}") from None
            inner = dataclasses.replace(context, filter_depth=context.filter_depth + 1)
            return [
                item
                for item in items
                if item is not None and predicate.test(dataclasses.replace(inner, record=item))
            ]

        return apply


def _build_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key, value in pairs:
        if isinstance(key, dict | list):
            raise CoercionError(f"{describe(key)} cannot be a map key")
        result[key] = value
    return result
