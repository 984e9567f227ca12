"""The record: what flows between agents, topics and gateways."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Record:
    """An immutable record.

    ``value`` and ``key`` are a ``str``, ``bytes`` or any JSON-compatible value (``None`` too).
    ``headers`` are plain string headers; the runtime carries an input's headers to its outputs
    unless an agent sets the same header itself. ``origin`` is the topic (or source URI) the
    record came from and ``timestamp`` its time in milliseconds since the epoch.

    ``destination`` is a topic an agent sends this record to instead of its executor's output
    (``dispatch``, ``trigger-event``, ``compute`` writing ``destinationTopic``). Such a record
    leaves its executor at once: agents fused after the one that set it do not see it. It is
    not part of the event on the wire.

    >>> r = Record("hello", headers={"session": "s1"})
    >>> r.with_value("HELLO").headers["session"]
    's1'
    """

    value: Any
    key: Any = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    origin: str | None = None
    timestamp: int | None = None
    destination: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.headers, MappingProxyType):
            object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def with_value(self, value: Any) -> Record:
        """The same record with another value (key, headers and origin kept)."""
        return replace(self, value=value)

    def with_key(self, key: Any) -> Record:
        return replace(self, key=key)

    def to(self, topic: str | None) -> Record:
        """The same record sent to ``topic`` instead of the executor's output (None: back to
        the output)."""
        return replace(self, destination=topic)

    def with_headers(self, headers: Mapping[str, str] | None = None, **more: str) -> Record:
        """The same record with these headers added or replaced."""
        merged = dict(self.headers)
        merged.update(headers or {})
        merged.update(more)
        return replace(self, headers=merged)
