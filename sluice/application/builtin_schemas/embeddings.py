"""Configuration of ``compute-ai-embeddings`` (LangStream's keys and defaults).

Besides the key table, the check compiles the ``text`` template (a template that does not parse
is a validation error, with its line and column inside the template) and checks
``embeddings-field``: with ``loop-over`` it must be ``record.<name>`` (the field set on each
element), without it a field name of the result grammar (``value``, ``value.x``,
``properties.x``...); ``loop-over`` must be such a name too, as the embedded list is written
back there. LangStream found these only when the first record failed. ``timeout-seconds`` and
``max-retries`` are Sluice's own keys, as for the completion agents: how long one call to a
remote provider may take and how many times a 429, 5xx or failed connection is tried again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import TOOLKIT, Check, Key, Problem
from sluice.templates import TemplateSyntaxError, compile_template

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "compute-ai-embeddings": (
        *TOOLKIT,
        Key("model", "string", default="text-embedding-ada-002"),
        Key("model-url", "string"),
        Key("text", "string", required=True),
        Key("embeddings-field", "string", required=True),
        Key("loop-over", "expression"),
        Key("batch-size", "integer", default=10, minimum=1),
        Key("flush-interval", "integer", default=0, minimum=0),
        Key("concurrency", "integer", default=4, minimum=1),
        Key("ai-service", "string"),
        Key("options", "any"),
        Key("arguments", "any"),
        Key("timeout-seconds", "integer", default=120, minimum=1),
        Key("max-retries", "integer", default=2, minimum=0),
    ),
}

_WHOLE = ("value", "key", "destinationTopic", "messageKey")
_PREFIXES = ("value.", "key.", "properties.")


def _compute_ai_embeddings(config: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    text = str(config.get("text", ""))
    try:
        compile_template(text.replace("{{%", "{{"))
    except TemplateSyntaxError as error:
        message = (
            f"is not a valid Mustache template: {error.reason} "
            f"(line {error.line}, column {error.column})"
        )
        out.append((("text",), message, True))
    field = str(config.get("embeddings-field", ""))
    loop_over = config.get("loop-over")
    if loop_over is not None:
        name = field.removeprefix("record.")
        if not field.startswith("record.") or not name or "." in name:
            message = (
                f"must be record.<name> with loop-over (the field set on each element), "
                f"got {field!r}"
            )
            out.append((("embeddings-field",), message, True))
        if not _writable(str(loop_over)):
            message = (
                f"must name where the list is (value.<name>, key.<name>...), as the embedded "
                f"list is written back there, got {loop_over!r}"
            )
            out.append((("loop-over",), message, True))
    elif not _writable(field):
        message = (
            f"invalid field name {field!r}: it should be value, key, destinationTopic, "
            "messageKey, or start with value., key. or properties."
        )
        out.append((("embeddings-field",), message, True))
    return out


def _writable(field: str) -> bool:
    """Whether ``field`` is a name of the result field grammar (``value.x``, ``key``...)."""
    return field in _WHOLE or any(
        field.startswith(prefix) and len(field) > len(prefix) for prefix in _PREFIXES
    )


CHECKS: dict[str, Check] = {"compute-ai-embeddings": _compute_ai_embeddings}
"""Checks of the whole configuration, after its keys are checked."""
