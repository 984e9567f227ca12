"""Configuration of ``flare-controller``, the FLARE pattern's loop controller.

LangStream's planner required ``tokens-field``, ``logprobs-field``, ``loop-topic`` and
``retrieve-documents-field`` and refused every other key, so its runtime's tunables (``min-prob``,
``min-token-gap``, ``num-pad-tokens``, ``max-iterations``, ``num-iterations-field``) always kept
their defaults. Sluice accepts them, with those defaults. Besides the key table, the check wants
``min-prob`` to be a probability and ``retrieve-documents-field`` to be a name of the result field
grammar (``value.x``, ``properties.x``...); :func:`loop_topics` names the topic the agent sends
records back to, so the application's check can require it to be declared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import COMPOSABLE, Check, Key, Problem, field_name_problem

AGENT_TYPE = "flare-controller"

SCHEMAS: dict[str, tuple[Key, ...]] = {
    AGENT_TYPE: (
        COMPOSABLE,
        Key("tokens-field", "expression", required=True),
        Key("logprobs-field", "expression", required=True),
        Key("loop-topic", "string", required=True),
        Key("retrieve-documents-field", "string", required=True),
        Key("min-prob", "any", default=0.2),
        Key("min-token-gap", "integer", default=5, minimum=0),
        Key("num-pad-tokens", "integer", default=2, minimum=0),
        Key("max-iterations", "integer", default=10, minimum=0),
        Key("num-iterations-field", "expression", default="value.flare_iterations"),
    ),
}


def _flare_controller(config: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    probability = config.get("min-prob")
    if probability is not None:
        try:
            number = float(probability)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(probability, bool) or not 0 <= number <= 1:
            message = f"must be a probability between 0 and 1, got {probability!r}"
            out.append((("min-prob",), message, True))
    wrong = field_name_problem(str(config.get("retrieve-documents-field", "")))
    if wrong is not None:
        out.append((("retrieve-documents-field",), wrong, True))
    return out


CHECKS: dict[str, Check] = {AGENT_TYPE: _flare_controller}
"""Checks of the whole configuration, after its keys are checked."""


def loop_topics(
    agent_type: str, config: Mapping[str, Any]
) -> list[tuple[tuple[str | int, ...], str]]:
    """(path inside the configuration, topic) of the topic ``flare-controller`` sends the records
    that need more documents to; nothing for other types."""
    topic = config.get("loop-topic")
    if agent_type != AGENT_TYPE or not isinstance(topic, str) or not topic:
        return []
    return [(("loop-topic",), topic)]
