"""LangStream's expression language: the ``when`` conditions and field expressions of the
built-in agents (``value.a + 1``, ``fn:uppercase(key)``, ``properties.lang == 'en'``).

Pure and I/O-free: compile once with :func:`compile_expression` / :func:`compile_predicate`,
evaluate against an :class:`EvaluationContext` built from a record.
"""

from sluice.expressions.errors import ExpressionError, ExpressionSyntaxError, PropertyNotFound
from sluice.expressions.evaluator import (
    IDENTIFIERS,
    EvaluationContext,
    Expression,
    Predicate,
    compile_expression,
    compile_predicate,
)
from sluice.expressions.syntax import MAX_DEPTH, MAX_LENGTH
from sluice.expressions.values import MAX_TEXT, to_boolean, to_text

__all__ = [
    "IDENTIFIERS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_TEXT",
    "EvaluationContext",
    "Expression",
    "ExpressionError",
    "ExpressionSyntaxError",
    "Predicate",
    "PropertyNotFound",
    "compile_expression",
    "compile_predicate",
    "to_boolean",
    "to_text",
]
