"""The shapes of LangStream's ``langstream`` package (records, agents, context)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Union


class Record(ABC):
    """A LangStream record: accessors are methods, headers a list of (name, value) pairs."""

    @abstractmethod
    def key(self) -> Any: ...

    @abstractmethod
    def value(self) -> Any: ...

    @abstractmethod
    def origin(self) -> str | None: ...

    @abstractmethod
    def timestamp(self) -> int | None: ...

    @abstractmethod
    def headers(self) -> list[tuple[str, Any]]: ...


class SimpleRecord(Record):
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
        self._headers = list(headers or [])
        self._origin = origin
        self._timestamp = timestamp

    def key(self) -> Any:
        return self._key

    def value(self) -> Any:
        return self._value

    def origin(self) -> str | None:
        return self._origin

    def timestamp(self) -> int | None:
        return self._timestamp

    def headers(self) -> list[tuple[str, Any]]:
        return self._headers

    def __repr__(self) -> str:
        return (
            f"SimpleRecord(value={self._value!r}, key={self._key!r}, headers={self._headers!r}, "
            f"origin={self._origin!r}, timestamp={self._timestamp!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.value(), self.key(), self.headers(), self.origin(), self.timestamp()) == (
            other.value(),
            other.key(),
            other.headers(),
            other.origin(),
            other.timestamp(),
        )

    __hash__ = None  # type: ignore[assignment]


RecordType = Union[Record, dict[str, Any], list[Any], tuple[Any, ...]]  # noqa: UP007


@dataclass
class AvroValue:
    schema: dict[str, Any]
    value: Any


class TopicProducer(ABC):
    @abstractmethod
    def write(self, topic: str, record: RecordType) -> Future[None]: ...

    @abstractmethod
    async def awrite(self, topic: str, record: RecordType) -> None: ...


class AgentContext(ABC):
    @abstractmethod
    def get_persistent_state_directory(self) -> str | None: ...

    @abstractmethod
    def get_topic_producer(self) -> TopicProducer: ...


class Agent(ABC):  # noqa: B024 - every hook is optional, as in LangStream
    def init(self, config: dict[str, Any], context: AgentContext) -> None:  # noqa: B027
        pass

    def start(self) -> None:  # noqa: B027
        pass

    def close(self) -> None:  # noqa: B027
        pass

    def agent_info(self) -> dict[str, Any]:
        return {}


class Source(Agent):
    @abstractmethod
    def read(self) -> list[RecordType]: ...

    def commit(self, record: Record) -> None:
        pass

    def permanent_failure(self, record: Record, error: Exception) -> None:
        raise error


class Processor(Agent):
    @abstractmethod
    def process(self, record: Record) -> list[RecordType] | Future[list[RecordType]]: ...


class Sink(Agent):
    @abstractmethod
    def write(self, record: Record) -> Future[None] | None: ...


class Service(Agent):
    @abstractmethod
    def main(self) -> None: ...
