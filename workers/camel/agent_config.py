"""A camel-source agent's configuration, as LangStream defined it, and its endpoint URI.

``component-uri`` (required) is the Camel endpoint to consume from; ``component-options`` are
appended to it as query parameters (``?`` or ``&`` chosen from the URI), each value encoded so
that Camel reads it back exactly, so secrets and regular expressions need no escaping by hand
(LangStream URL-encoded them, which Camel undoes before splitting the query: a ``&`` or ``+`` in
a value broke the URI; Camel's ``RAW(...)`` does not); ``key-header`` names the Camel
header whose value becomes the record key; ``max-buffered-records`` (default 100) bounds the
exchanges waiting for the worker to read them.

Camel simple expressions such as ``${file:name}`` pass through Sluice's placeholders (those
hold no colon), so ``move: done/${file:name}`` works as in a Camel route.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from workers.errors import AgentLoadError

__all__ = ["DEFAULT_MAX_BUFFERED", "CamelSourceConfig", "parse_config"]

DEFAULT_MAX_BUFFERED = 100
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_PLAIN = re.compile(r"[A-Za-z0-9_.\-~*:/,@]*")


@dataclass(frozen=True)
class CamelSourceConfig:
    component_uri: str
    component_options: tuple[tuple[str, str], ...] = ()
    key_header: str = ""
    max_buffered_records: int = DEFAULT_MAX_BUFFERED

    @property
    def scheme(self) -> str:
        """The component's scheme: ``timer`` in ``timer://tick?period=1000``."""
        return self.component_uri.split(":", 1)[0]

    @property
    def endpoint_uri(self) -> str:
        """``component-uri`` with ``component-options`` appended, values URL-encoded.

        >>> CamelSourceConfig("file:in", (("delay", "10"), ("include", "a+b.*"))).endpoint_uri
        'file:in?delay=10&include=RAW(a+b.*)'
        """
        uri = self.component_uri
        for name, value in self.component_options:
            uri += ("&" if "?" in uri else "?") + f"{name}={_encode(value)}"
        return uri


def parse_config(agent_id: str, config: Mapping[str, Any]) -> CamelSourceConfig:
    """The agent's configuration, or an :class:`AgentLoadError` saying what is wrong."""

    def fail(reason: str) -> AgentLoadError:
        return AgentLoadError(agent_id, None, f"camel-source: {reason}")

    uri = config.get("component-uri")
    if not isinstance(uri, str) or not uri.strip():
        raise fail("configuration.component-uri is required (a Camel URI such as timer:tick)")
    uri = uri.strip()
    scheme = uri.split(":", 1)[0]
    if ":" not in uri or not _SCHEME.fullmatch(scheme):
        raise fail(f"component-uri {uri!r} does not start with a Camel scheme (timer:, file:...)")
    options = config.get("component-options") or {}
    if not isinstance(options, Mapping):
        raise fail("component-options must be a mapping of option names to values")
    pairs = tuple((str(k), _option_text(v)) for k, v in options.items() if v is not None)
    key_header = config.get("key-header") or ""
    if not isinstance(key_header, str):
        raise fail("key-header must be the name of a Camel header")
    size = config.get("max-buffered-records", DEFAULT_MAX_BUFFERED)
    if isinstance(size, str) and size.strip().isdigit():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise fail(f"max-buffered-records must be a whole number of at least 1, not {size!r}")
    return CamelSourceConfig(uri, pairs, key_header, size)


def _encode(value: str) -> str:
    """A query parameter value Camel reads back exactly.

    Camel decodes a URI's query before splitting it into options, so a percent-encoded ``&``
    would still end the option and ``+`` would turn into a space; its ``RAW(...)`` syntax takes
    a value verbatim (``RAW{...}`` when the value has a closing parenthesis). Plain values stay
    as they are.
    """
    if _PLAIN.fullmatch(value):
        return value
    if ")" in value and "}" not in value:
        return f"RAW{{{value}}}"
    if ")" not in value:
        return f"RAW({value})"
    return quote_plus(value, safe="*")  # both brackets: the best Camel's syntax allows


def _option_text(value: Any) -> str:
    """The text of an option value as Java's ``toString()`` writes scalars."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))
