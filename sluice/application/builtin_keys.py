"""The vocabulary of built-in agents' configuration tables: :class:`Key` and its kinds.

Each family of built-in agents declares its table in ``builtin_schemas``; ``builtin_config``
checks a configuration against it (for ``sluice validate``) and reads it (for the worker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal[
    "string",
    "boolean",
    "integer",
    "names",
    "texts",
    "mapping",
    "objects",
    "expression",
    "predicate",
    "any",
]
"""What a key holds.

``string``: text (numbers are read as their text). ``boolean``: true/false (also as text).
``integer``: a whole number (also as text), at least ``minimum``. ``names``: a non-empty list of
non-blank strings. ``texts``: a list of strings, possibly empty, blanks allowed. ``mapping``:
names to texts (``headers``, ``query-string``). ``objects``: a list of mappings, each checked
against ``items``. ``expression``/``predicate``: an expression of the expression language,
compiled when checked (a predicate is a ``when`` condition). ``any``: not checked.
"""


@dataclass(frozen=True)
class Key:
    """One configuration key of a built-in agent."""

    name: str
    kind: Kind
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] | None = None
    items: tuple[Key, ...] = ()
    """For ``objects``: the keys of each element (their defaults are filled in too)."""
    minimum: int | None = None
    """For ``integer``: the smallest value accepted."""


Problem = tuple[tuple[str | int, ...], str, bool]
"""(path of the key inside the configuration, message, fatal): fatal ones are errors."""

Check = Callable[[Mapping[str, Any]], list[Problem]]
"""A family's extra check of one agent type's whole configuration (after the keys are checked)."""

COMPOSABLE = Key("composable", "boolean", default=True)
"""``composable: false`` keeps an agent out of a fused executor (read by the planner)."""

TOOLKIT: tuple[Key, ...] = (Key("when", "predicate"), Key("composable", "boolean", default=True))
"""Keys every GenAI-toolkit step of LangStream accepts; ``composable`` is read by the planner."""

FIELDS: tuple[Key, ...] = (
    Key("name", "string", required=True),
    Key("expression", "expression", required=True),
)
"""One ``fields[]`` entry of ``trigger-event``, ``log-event`` and ``timer-source``."""

RESULT_WHOLE = ("value", "key", "destinationTopic", "messageKey")
RESULT_PREFIXES = ("value.", "key.", "properties.")


def field_name_problem(name: str) -> str | None:
    """Why ``name`` is not a result field name (``value``, ``key``, ``value.<f>``, ``key.<f>``,
    ``properties.<f>``, ``destinationTopic``, ``messageKey``), or None when it is one: the
    grammar the worker's field writer accepts, checked at validation."""
    if name in RESULT_WHOLE or any(
        name.startswith(prefix) and len(name) > len(prefix) for prefix in RESULT_PREFIXES
    ):
        return None
    return (
        f"invalid field name {name!r}: it should be value, key, destinationTopic, messageKey, "
        "or start with value., key. or properties."
    )
