"""A small rule-based bot: greetings, the time, arithmetic; anything else is echoed back.

The reply keeps the request's headers (the runtime carries them over), among them
``langstream-service-request-id``, by which the service gateway finds the reply to each request.
"""

from __future__ import annotations

import ast
import datetime
import operator
import re
from typing import Any

from sluice import AgentContext, Processor, Record

_OPERATORS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
}
_SUM = re.compile(r"[\d\s.+\-*/()]+")


def _evaluate(node: ast.AST) -> float:
    """Numbers and + - * / only: never ``eval``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError("not arithmetic")


def reply_to(text: str, name: str) -> str:
    words = text.lower().strip(" ?!.")
    if words in ("hi", "hello", "hey"):
        return f"Hello! I am {name}. Ask me the time, or a sum like 6 * 7."
    if "time" in words:
        now = datetime.datetime.now(datetime.UTC)
        return f"It is {now:%H:%M} UTC."
    sums = [s.strip() for s in _SUM.findall(text) if any(c.isdigit() for c in s)]
    if sums:
        try:
            result = _evaluate(ast.parse(sums[0], mode="eval").body)
        except (SyntaxError, ValueError, ZeroDivisionError):
            return f"I cannot work out {sums[0]}."
        return f"{sums[0]} = {result:g}"
    return f"You said: {text}"


class Bot(Processor):
    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        self.name = config.get("name", "bot")

    def process(self, record: Record) -> Record:
        text = record.value if isinstance(record.value, str) else str(record.value)
        return record.with_value(reply_to(text, self.name))
