"""Configuration of ``re-rank`` (LangStream's keys and defaults).

Besides the key table, the check requires the three accessors MMR reads (``query-text``,
``text-field``, ``embeddings-field``) when ``algorithm`` is ``MMR`` (LangStream required all four,
``query-embeddings`` too, whatever the algorithm, and only failed at start), checks that
``lambda``, ``k1`` and ``b`` are numbers and that ``output-field`` is a name of the result field
grammar (``value``, ``value.x``, ``properties.x``...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import COMPOSABLE, Check, Key, Problem

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "re-rank": (
        COMPOSABLE,
        Key("field", "expression", required=True),
        Key("output-field", "string", required=True),
        Key("algorithm", "string", default="none", choices=("none", "MMR")),
        Key("query-text", "expression"),
        Key("query-embeddings", "expression"),
        Key("text-field", "expression"),
        Key("embeddings-field", "expression"),
        Key("max", "integer", default=100, minimum=0),
        Key("lambda", "any", default=0.5),
        Key("k1", "any", default=1.5),
        Key("b", "any", default=0.75),
    ),
}

_NUMBERS = ("lambda", "k1", "b")
_MMR_NEEDS = ("query-text", "text-field", "embeddings-field")
_WHOLE = ("value", "key", "destinationTopic", "messageKey")
_PREFIXES = ("value.", "key.", "properties.")


def _re_rank(config: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for name in _NUMBERS:
        value = config.get(name)
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number):
            out.append(((name,), f"must be a number, got {value!r}", True))
    if str(config.get("algorithm", "none")) == "MMR":
        for name in _MMR_NEEDS:
            if not str(config.get(name) or "").strip():
                out.append(((name,), "is required with algorithm MMR", True))
    field = str(config.get("output-field", ""))
    if field and not (
        field in _WHOLE
        or any(field.startswith(prefix) and len(field) > len(prefix) for prefix in _PREFIXES)
    ):
        message = (
            f"invalid field name {field!r}: it should be value, key, destinationTopic, "
            "messageKey, or start with value., key. or properties."
        )
        out.append((("output-field",), message, True))
    return out


CHECKS: dict[str, Check] = {"re-rank": _re_rank}
"""Checks of the whole configuration, after its keys are checked."""
