"""The messages a client sends and reads, pure: command-line values, the produce request and
the frames of a chat socket."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sluice.client.errors import GatewayClientError

__all__ = ["ChatFrame", "chat_frame", "parse_pair", "parse_value", "produce_request"]


def parse_pair(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` split at the first ``=``; ValueError when there is none or no name.

    >>> parse_pair("q=a=b")
    ('q', 'a=b')
    """
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_value(text: str, *, as_string: bool = False) -> Any:
    """The JSON value ``text`` spells, else ``text`` itself (always itself with ``as_string``).

    >>> parse_value('{"q": 1}'), parse_value("42"), parse_value("hello"), parse_value("NaN")
    ({'q': 1}, 42, 'hello', 'NaN')
    """
    if as_string:
        return text
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def produce_request(
    value: Any = None, key: str | None = None, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The gateway's produce request (``{"key", "value", "headers"}``) with the fields given."""
    body: dict[str, Any] = {"value": value}
    if key is not None:
        body["key"] = key
    if headers:
        body["headers"] = dict(headers)
    return body


@dataclass(frozen=True)
class ChatFrame:
    """One frame of a chat socket, as the chat command reads it.

    ``ack``: the gateway wrote a question; ``refused``: it did not (``reason`` says why);
    ``chunk``: a part of a streamed answer (header ``stream-last-message: false``); ``answer``: a
    whole answer or the last chunk of one. ``value`` is the pushed record's value.
    """

    kind: Literal["ack", "refused", "chunk", "answer"]
    value: Any = None
    reason: str = ""


def chat_frame(frame: str | bytes) -> ChatFrame:
    """Read a chat frame; GatewayClientError when it is none of the gateway's shapes.

    >>> chat_frame('{"record": {"value": "hi", "headers": {"stream-last-message": "false"}}}')
    ChatFrame(kind='chunk', value='hi', reason='')
    """
    try:
        data = json.loads(frame)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("record"), dict):
        record = data["record"]
        headers = record.get("headers") or {}
        last = str(headers.get("stream-last-message", "true")).lower() != "false"
        return ChatFrame("answer" if last else "chunk", record.get("value"))
    if isinstance(data, dict) and "status" in data:
        if data["status"] == "OK":
            return ChatFrame("ack")
        return ChatFrame("refused", reason=f"{data['status']}: {data.get('reason')}")
    raise GatewayClientError(f"unexpected frame from the gateway: {str(frame)[:200]!r}")
