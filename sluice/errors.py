"""The exception tree of the ``sluice`` package.

Every error Sluice raises derives from :class:`SluiceError` and from the builtin it most resembles,
so callers can catch either. Messages say what was wrong and where.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SluiceError(Exception):
    """Root of every error raised by Sluice."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an application, located as precisely as known."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InvalidApplication(SluiceError, ValueError):
    """The application directory, instance or secrets do not validate.

    ``problems`` lists every problem found, not only the first one.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        header = f"the application has {count} error{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))


class KafkaError(SluiceError, RuntimeError):
    """A Kafka operation failed; ``retriable`` says whether trying again may help."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


class LocalKafkaError(SluiceError, RuntimeError):
    """The local Kafka broker could not be provisioned, started or stopped."""
