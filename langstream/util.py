"""The helpers of LangStream's ``langstream.util``: :class:`SimpleRecord` and :class:`AvroValue`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langstream.api import Record

__all__ = ["AvroValue", "SimpleRecord"]


class SimpleRecord(Record):
    """A plain :class:`Record` holding the values it was given.

    As in LangStream, records compare and hash by identity (sources keep the records they
    read in sets and dicts until ``commit``), and ``headers`` is kept as given, not copied.
    """

    def __init__(
        self,
        value: Any,
        key: Any = None,
        headers: list[tuple[str, Any]] | None = None,
        origin: str | None = None,
        timestamp: int | None = None,
    ) -> None:
        self._value = value
        self._key = key
        self._headers = headers or []
        self._origin = origin
        self._timestamp = timestamp

    def key(self) -> Any:
        return self._key

    def value(self) -> Any:
        return self._value

    def headers(self) -> list[tuple[str, Any]]:
        return self._headers

    def origin(self) -> str | None:
        return self._origin

    def timestamp(self) -> int | None:
        return self._timestamp

    def __str__(self) -> str:
        # LangStream's exact text (no space after the comma before timestamp), which agents
        # log and tests compare.
        return (
            f"SimpleRecord(value={self._value}, key={self._key}, "
            f"origin={self._origin},timestamp={self._timestamp}, "
            f"headers={self._headers})"
        )

    def __repr__(self) -> str:
        return self.__str__()


@dataclass
class AvroValue:
    """A value to send as Avro with ``schema`` (a parsed Avro schema)."""

    schema: dict[str, Any]
    value: Any
