"""Configuration of the flow-control agents: dispatch, trigger-event, log-event, timer-source.

LangStream injects no defaults for these; the defaults here are its runtime's. Besides the key
tables, :func:`destination_topics` names the topics an agent writes to by configuration, so the
application's check can require them to be declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import FIELDS, Check, Key, Problem
from sluice.templates import TemplateSyntaxError, compile_template

ROUTE: tuple[Key, ...] = (
    # LangStream's schema marks it optional, but an empty condition does not compile there.
    Key("when", "predicate", required=True),
    Key("destination", "string"),
    Key("action", "string", default="dispatch", choices=("dispatch", "drop")),
)
"""One ``routes[]`` entry of ``dispatch``."""

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "dispatch": (Key("routes", "objects", default=(), items=ROUTE),),
    "trigger-event": (
        Key("destination", "string", required=True),
        Key("when", "predicate", default="true"),
        Key("continue-processing", "boolean", default=True),
        Key("fields", "objects", default=(), items=FIELDS),
    ),
    "log-event": (
        Key("when", "predicate", default="true"),
        Key("fields", "objects", default=(), items=FIELDS),
        Key("message", "string", default=""),
    ),
    "timer-source": (
        Key("period-seconds", "integer", default=60, minimum=1),
        Key("fields", "objects", default=(), items=FIELDS),
    ),
}


def _routes(config: Mapping[str, Any]) -> list[Problem]:
    """A ``drop`` route names no destination; a ``dispatch`` route needs one."""
    out: list[Problem] = []
    for index, route in enumerate(config.get("routes") or ()):
        action = str(route.get("action") or "dispatch")
        destination = route.get("destination")
        if action == "drop" and destination:
            out.append(
                (("routes", index, "destination"), "drop action cannot have a destination", True)
            )
        elif action == "dispatch" and not destination:
            out.append(
                (
                    ("routes", index, "destination"),
                    "is required by a dispatch route (or action: drop)",
                    True,
                )
            )
    return out


def _message(config: Mapping[str, Any]) -> list[Problem]:
    """``message`` is a Mustache template: it must compile."""
    message = config.get("message")
    if not isinstance(message, str) or not message:
        return []
    try:
        compile_template(message)
    except TemplateSyntaxError as error:
        return [(("message",), f"is not a valid Mustache template: {error}", True)]
    return []


CHECKS: dict[str, Check] = {"dispatch": _routes, "log-event": _message}


def destination_topics(
    agent_type: str, config: Mapping[str, Any]
) -> list[tuple[tuple[str | int, ...], str]]:
    """(path inside the configuration, topic) of each topic ``config`` sends records to:
    dispatch routes, trigger-event's destination, the ``stream-to-topic`` of streaming agents."""
    stream = config.get("stream-to-topic")
    if isinstance(stream, str) and stream:
        return [(("stream-to-topic",), stream)]
    if agent_type == "trigger-event":
        destination = config.get("destination")
        return (
            [(("destination",), destination)]
            if isinstance(destination, str) and destination
            else []
        )
    if agent_type != "dispatch" or not isinstance(config.get("routes"), list):
        return []
    return [
        (("routes", index, "destination"), route["destination"])
        for index, route in enumerate(config["routes"])
        if isinstance(route, dict)
        and isinstance(route.get("destination"), str)
        and route["destination"]
    ]
