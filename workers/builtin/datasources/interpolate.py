"""LangStream's JSON queries for vector databases: each ``?`` of the query text replaced by the
JSON of a parameter, then the text read as JSON (pure).

The parameters fill the ``?`` from left to right, anywhere in the text (inside a JSON string
too, as Solr's ``"{!knn f=embeddings topK=10}?"``). Unlike LangStream, the search for the next
``?`` starts after the text just inserted, so a ``?`` inside a parameter's value is not filled
by the next parameter. Extra parameters are ignored and ``?`` without one are left as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from workers.builtin.datasources.errors import DataSourceError

__all__ = ["interpolate", "json_query"]


def interpolate(query: str, params: Sequence[Any]) -> str:
    """``query`` with its ``?`` replaced by the JSON of ``params`` (see the module)."""
    out: list[str] = []
    position = 0
    for param in params:
        found = query.find("?", position)
        if found < 0:
            break
        out.append(query[position:found])
        out.append(json.dumps(param, ensure_ascii=False))
        position = found + 1
    out.append(query[position:])
    return "".join(out)


def json_query(where: str, query: str, params: Sequence[Any]) -> dict[str, Any]:
    """The JSON object ``query`` gives with ``params``; :class:`DataSourceError` when the text
    is not a JSON object."""
    text = interpolate(query, params)
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise DataSourceError(
            f"{where}: the query is not JSON once its ? are filled ({error}): {text[:300]}"
        ) from None
    if not isinstance(parsed, dict):
        raise DataSourceError(f"{where}: the query must be a JSON object, got {text[:300]}")
    return parsed
