"""Configuration of the HTTP agents: ``http-request`` and ``langserve-invoke``.

Defaults are LangStream's runtime's. Besides the key tables, the checks compile every Mustache
template (query-string and header values, the body) so a template that does not parse is a
validation error, and require a ``langserve-invoke`` URL that ends with ``/invoke`` or
``/stream`` (LangStream failed every record with "Unsupported url" instead).
``timeout-seconds`` is Sluice's own key: how long one request may take (for ``/stream``, how
long the server may stay silent), so a worker never hangs on one record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sluice.application.builtin_keys import FIELDS, Check, Key, Problem
from sluice.templates import TemplateSyntaxError, compile_template

TIMEOUT = Key("timeout-seconds", "integer", default=120, minimum=1)
"""Sluice's bound on one request (LangStream had none)."""

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "http-request": (
        Key("url", "string", required=True),
        Key("output-field", "string", required=True),
        Key("method", "string", default="GET"),
        Key("query-string", "mapping", default={}),
        Key("headers", "mapping", default={}),
        Key("body", "string"),
        Key("allow-redirects", "boolean", default=True),
        Key("handle-cookies", "boolean", default=True),
        TIMEOUT,
    ),
    "langserve-invoke": (
        Key("url", "string", required=True),
        Key("output-field", "string", default="value"),
        Key("fields", "objects", default=(), items=FIELDS),
        Key("stream-to-topic", "string"),
        Key("stream-response-field", "string"),
        Key("min-chunks-per-message", "integer", default=20, minimum=1),
        Key("content-field", "string", default="content"),
        Key("method", "string", default="POST"),
        Key("headers", "mapping", default={}),
        Key("debug", "boolean", default=False),
        Key("allow-redirects", "boolean", default=True),
        Key("handle-cookies", "boolean", default=True),
        TIMEOUT,
    ),
}


def _templates(config: Mapping[str, Any], *names: str) -> list[Problem]:
    """Each template among ``names`` (a mapping's values, or one text) must parse."""
    out: list[Problem] = []
    for name in names:
        value = config.get(name)
        entries = value.items() if isinstance(value, dict) else [(None, value)]
        for entry, text in entries:
            if text is None or isinstance(text, dict | list):
                continue
            try:
                compile_template(str(text))
            except TemplateSyntaxError as error:
                path = (name,) if entry is None else (name, str(entry))
                out.append(
                    (
                        path,
                        f"is not a valid Mustache template: {error.reason} "
                        f"(line {error.line}, column {error.column})",
                        True,
                    )
                )
    return out


def _http_request(config: Mapping[str, Any]) -> list[Problem]:
    return _templates(config, "query-string", "headers", "body")


def _langserve_invoke(config: Mapping[str, Any]) -> list[Problem]:
    out = _templates(config, "headers")
    path = urlsplit(str(config.get("url", ""))).path
    if not path.endswith(("/invoke", "/stream")):
        message = "must end with /invoke (one answer) or /stream (streamed answer)"
        out.append((("url",), f"{message}, got {config.get('url')!r}", True))
    return out


CHECKS: dict[str, Check] = {"http-request": _http_request, "langserve-invoke": _langserve_invoke}
