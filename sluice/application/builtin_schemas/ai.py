"""Configuration of the AI completion agents: ``ai-chat-completions`` and ``ai-text-completions``.

The keys are LangStream's (its planner's tables), with its defaults. Besides the key table the
checks compile every Mustache template (``messages[].content``, ``prompt[]``) so a template that
does not parse is a validation error, and check the provider parameters LangStream typed as
numbers (``temperature``, ``top-p``, the penalties) and ``logit-bias`` (token -> whole number).
``timeout-seconds`` and ``max-retries`` are Sluice's own keys: how long one call may take and how
many times the client retries a 429, 5xx or a connection that failed, so a worker never hangs on
one record (LangStream's Azure client had its own fixed policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import TOOLKIT, Check, Key, Problem
from sluice.templates import TemplateSyntaxError, compile_template

MESSAGE: tuple[Key, ...] = (
    Key("role", "string", default="user"),
    Key("content", "string", required=True),
)
"""One ``messages[]`` entry of ``ai-chat-completions``."""

_NUMBERS = ("temperature", "top-p", "presence-penalty", "frequency-penalty")

COMMON: tuple[Key, ...] = (
    *TOOLKIT,
    Key("model", "string", required=True),
    Key("ai-service", "string"),
    Key("completion-field", "string"),
    Key("log-field", "string"),
    Key("stream-to-topic", "string"),
    Key("stream-response-completion-field", "string"),
    Key("min-chunks-per-message", "integer", default=20, minimum=1),
    Key("stream", "boolean", default=True),
    Key("max-tokens", "integer", minimum=1),
    *(Key(name, "any") for name in _NUMBERS),
    Key("logit-bias", "any"),
    Key("user", "string"),
    Key("stop", "texts"),
    Key("options", "any"),
    Key("timeout-seconds", "integer", default=120, minimum=1),
    Key("max-retries", "integer", default=2, minimum=0),
)
"""Keys both agents take (Sluice's ``timeout-seconds`` and ``max-retries`` last)."""

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "ai-chat-completions": (*COMMON, Key("messages", "objects", required=True, items=MESSAGE)),
    "ai-text-completions": (
        *COMMON,
        Key("prompt", "texts", required=True),
        Key("logprobs", "integer", minimum=0),
        Key("logprobs-field", "string"),
    ),
}


def _template_problem(path: tuple[str | int, ...], text: str) -> list[Problem]:
    try:
        compile_template(text)
    except TemplateSyntaxError as error:
        reason = f"{error.reason} (line {error.line}, column {error.column})"
        return [(path, f"is not a valid Mustache template: {reason}", True)]
    return []


def _numbers(config: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for name in _NUMBERS:
        value = config.get(name)
        if value is None:
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            out.append(((name,), f"must be a number, got {value!r}", True))
        else:
            if isinstance(value, bool):
                out.append(((name,), f"must be a number, got {value!r}", True))
    bias = config.get("logit-bias")
    if bias is not None:
        if not isinstance(bias, dict):
            out.append((("logit-bias",), "must be a mapping of tokens to whole numbers", True))
        else:
            for token, weight in bias.items():
                if isinstance(weight, bool) or not isinstance(weight, int):
                    message = f"must be a whole number, got {weight!r}"
                    out.append((("logit-bias", str(token)), message, True))
    options = config.get("options")
    if options is not None and not isinstance(options, dict):
        out.append((("options",), f"must be a mapping, got {options!r}", True))
    if not config.get("prompt", config.get("messages")):
        key = "prompt" if "prompt" in config else "messages"
        out.append(((key,), "must not be empty", True))
    return out


def _chat(config: Mapping[str, Any]) -> list[Problem]:
    out = _numbers(config)
    for index, message in enumerate(config.get("messages") or []):
        out.extend(
            _template_problem(
                ("messages", index, "content"), str(message["content"]).replace("{{%", "{{")
            )
        )
    return out


def _text(config: Mapping[str, Any]) -> list[Problem]:
    out = _numbers(config)
    for index, text in enumerate(config.get("prompt") or []):
        out.extend(_template_problem(("prompt", index), text))
    return out


CHECKS: dict[str, Check] = {"ai-chat-completions": _chat, "ai-text-completions": _text}
