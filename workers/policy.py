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
from sluice.sdk import FatalError, Retry, SkipRecord
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
