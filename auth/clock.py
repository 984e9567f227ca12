"""The clocks providers read, injectable so that tests move time instead of sleeping."""

from __future__ import annotations

import time
from typing import Final, Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """Two clocks: ``time()`` (epoch seconds) checks token claims such as ``exp``;
    ``monotonic()`` ages caches, immune to the wall clock being set."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clocks: :func:`time.time` and :func:`time.monotonic`."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Final[Clock] = SystemClock()
