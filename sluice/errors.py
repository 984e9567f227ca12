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
    """One thing wrong with an application, located as precisely as known.

    ``subject`` names what the problem is about when it is inside a gateway or an agent
    (``gateway "ask"``, ``agent "counter"``), as LangStream names them, and ``subject_path`` is
    the start of ``path`` that this subject covers: the text then reads ``gateway "ask"
    (gateways.yaml:4) topic: ...`` instead of ``gateways.yaml:4 gateways[3].topic: ...``, since a
    position in a list is hard to find. ``path`` keeps the whole YAML path either way.
    """

    file: str
    path: str
    message: str
    line: int | None = None
    subject: str = ""
    subject_path: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        path = self.path
        if self.subject:
            if self.subject_path and path.startswith(self.subject_path):
                path = path[len(self.subject_path) :].lstrip(".")
            where = f"{self.subject} ({where})"
        return f"{where} {path}: {self.message}" if path else f"{where}: {self.message}"


def problem_report(header: str, problems: Sequence[Problem]) -> str:
    """The message of an error that lists ``problems``: ``header`` (its ``{count}`` replaced by
    their number and ``{s}`` by "s" unless there is one) then one indented line per problem.

    >>> print(problem_report("{count} error{s}:", [Problem("a.yaml", "x", "bad", line=2)]))
    1 error:
      a.yaml:2 x: bad
    """
    count = len(problems)
    lines = [header.format(count=count, s="" if count == 1 else "s")]
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)


class InvalidApplication(SluiceError, ValueError):
    """The application directory, instance or secrets do not validate.

    ``problems`` lists every problem found, not only the first one.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(problem_report("the application has {count} error{s}:", self.problems))


class KafkaError(SluiceError, RuntimeError):
    """A Kafka operation failed; ``retriable`` says whether trying again may help."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


class LocalKafkaError(SluiceError, RuntimeError):
    """The local Kafka broker could not be provisioned, started or stopped."""
