"""The per-record error policy: retries with backoff, then skip, dead-letter or fail.

Retries count per record (LangStream counted per process and never reset: a bug not copied).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sluice.application.model import ErrorsSpec
from sluice.events import Consumed, WireMessage
from sluice.sdk import FatalError, Retry, SkipRecord
from workers.deadletter import dead_letter
from workers.errors import ExecutorFailed

T = TypeVar("T")
log = logging.getLogger("sluice.worker")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between retries of one record, in seconds."""

    first: float = 0.2
    limit: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.limit, self.first * 2**attempt))


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T


@dataclass(frozen=True)
class Skipped:
    """The agent raised SkipRecord: drop the record, no error."""


@dataclass(frozen=True)
class Failed:
    """Retries are exhausted; ``errors.on-failure`` says what happens next."""

    error: BaseException
    attempts: int


async def attempt(
    call: Callable[[], Awaitable[T]],
    errors: ErrorsSpec,
    backoff: Backoff,
    *,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Done[T] | Skipped | Failed:
    """Run ``call`` until it succeeds or ``errors.retries`` retries are used up.

    ``FatalError`` stops the executor at once (:class:`ExecutorFailed`). ``sleep`` waits between
    attempts; ``sluice.testing`` passes one that notes the delay instead of waiting, so users'
    tests of retries are fast.
    """
    tries = 0
    while True:
        try:
            return Done(await call())
        except SkipRecord:
            return Skipped()
        except FatalError as error:
            raise ExecutorFailed(f"{what}: the agent raised FatalError: {error}") from error
        except Retry as error:
            failure: Exception = error
            delay = error.after
        except Exception as error:
            failure = error
            delay = backoff.delay(tries)
        if tries >= errors.retries:
            return Failed(failure, tries + 1)
        tries += 1
        log.warning(
            "%s failed (%s: %s); retry %d of %d in %.1fs",
            what,
            type(failure).__name__,
            failure,
            tries,
            errors.retries,
            delay,
        )
        await sleep(delay)


@dataclass(frozen=True)
class Drop:
    """``on-failure: skip``: the failed record is dropped (counted, logged, not written)."""


@dataclass(frozen=True)
class DeadLetter:
    """``on-failure: dead-letter``: ``message`` (the input plus error headers) goes to ``topic``."""

    topic: str
    message: WireMessage


@dataclass(frozen=True)
class Stop:
    """``on-failure: fail``, or ``dead-letter`` without a dead-letter topic: the record is not
    finished; pull mode stops the executor, push mode answers 500 so KafkaSource retries."""


def after_failure(
    item: Consumed,
    failed: Failed,
    errors: ErrorsSpec,
    dead_letter_topic: str | None,
    *,
    source: str,
    reason: BaseException | str | None = None,
) -> Drop | DeadLetter | Stop:
    """What ``errors.on-failure`` says to do with ``item`` once ``failed``. Pure.

    The one place pull mode, push mode and ``sluice.testing`` take this decision, so the three
    cannot drift apart. ``reason`` is what the dead letter's error headers report (an
    undecodable record's reason string); by default the failure's error.
    """
    if errors.on_failure == "skip":
        return Drop()
    if errors.on_failure == "dead-letter" and dead_letter_topic is not None:
        why = failed.error if reason is None else reason
        return DeadLetter(dead_letter_topic, dead_letter(item, why, source=source))
    return Stop()


def describe(failed: Failed) -> str:
    """``TypeName: message`` of the failure's error, as the logs and answers quote it."""
    return f"{type(failed.error).__name__}: {failed.error}"


def stopped(what: str, failed: Failed) -> ExecutorFailed:
    """The error that stops an executor when ``what`` failed and ``on-failure`` is ``fail``
    (raise it ``from failed.error``)."""
    return ExecutorFailed(
        f"{what} failed after {failed.attempts} attempt(s) and errors.on-failure is fail: "
        f"{describe(failed)}"
    )
