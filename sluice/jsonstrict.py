"""Strict JSON: Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON
(RFC 8259) and which other consumers of a topic (LangStream's Java runtime, browsers) reject.
The gateway refuses them in request bodies and the worker in record values, with one message.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

__all__ = ["loads"]


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str) -> Any:
    """``json.loads`` that raises ``ValueError`` for ``NaN``, ``Infinity`` and ``-Infinity``.

    >>> loads('{"a": [1, 2.5]}')
    {'a': [1, 2.5]}
    >>> loads("[NaN]")
    Traceback (most recent call last):
    ValueError: NaN is not valid JSON
    """
    return json.loads(text, parse_constant=_reject_constant)
