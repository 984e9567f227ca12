"""Keeping aiokafka's retry loops from flooding the log.

While a broker is away aiokafka logs every failed attempt: ``Unable connect to node``, ``Unable
to update metadata``... thousands of lines a second, which drown the one line that matters and
fill disks. :func:`quiet_retry_logs` lets each of its warnings and errors through once per
``window`` seconds (per logger and message template) and says how many it held back. The state
changes themselves (Kafka away, Kafka back) are logged by the producer.
"""

from __future__ import annotations

import logging
import time
from typing import Final

__all__ = ["DEFAULT_WINDOW", "quiet_retry_logs"]

DEFAULT_WINDOW: Final = 60.0


class _RepeatFilter(logging.Filter):
    """Lets one record per (logger, template) through per window; counts the others."""

    def __init__(self, window: float) -> None:
        super().__init__()
        self.window = window
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.levelno >= logging.CRITICAL:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        self._seen[key] = (now, 0)
        if seen is not None and seen[1]:
            record.msg = f"{record.msg} [{seen[1]} more like this in the last {self.window:g} s]"
        return True


_FILTER: Final = _RepeatFilter(DEFAULT_WINDOW)


def quiet_retry_logs() -> None:
    """Rate-limit the warnings and errors of every aiokafka logger (idempotent).

    A filter on a logger only sees that logger's own records, so it goes on each aiokafka
    module's logger; call it after aiokafka is imported (starting a client does).
    """
    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name == "aiokafka" or name.startswith("aiokafka.")
    ]
    for name in ["aiokafka", *names]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
