"""The errors of the expression language.

Both name the expression they are about, so a message read in a log or printed by
``sluice validate`` says which of an application's many expressions is wrong.
"""

from __future__ import annotations

from sluice.errors import SluiceError


class ExpressionSyntaxError(SluiceError, ValueError):
    """An expression does not compile: bad syntax, an unknown function, a limit exceeded.

    ``column`` is the 1-based position inside ``expression`` where the problem starts.
    """

    def __init__(self, expression: str, column: int, reason: str) -> None:
        self.expression = expression
        self.column = column
        self.reason = reason
        super().__init__(f"invalid expression {expression!r} at column {column}: {reason}")


class ExpressionError(SluiceError, ValueError):
    """Evaluating a compiled expression failed (a type that does not convert, a function's
    argument out of its domain, ...)."""

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"expression {expression!r} failed: {reason}")


class PropertyNotFound(ExpressionError):
    """A name that the record does not have: an unknown top-level identifier, or a property of
    something that is not a JSON object (``value.x`` when the value is plain text).

    A ``when`` predicate counts this as false instead of failing the record, as LangStream does.
    """
