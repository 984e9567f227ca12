"""The read loop of a gateway's group-less shared consumer (fanout and reply routing).

One consumer per topic serves every subscriber or waiting request of the process, so a read
failure must not end it when Kafka may recover: a retriable error is logged and the read tried
again a second later; only a non-retriable one ends the loop, and the owner fails whoever waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from sluice.errors import KafkaError
from sluice.events import Consumed
from sluice.kafka import Consumer

__all__ = ["read_forever"]

POLL_TIMEOUT_MS: Final = 1000
RETRY_DELAY_S: Final = 1.0


async def read_forever(
    consumer: Consumer,
    deliver: Callable[[list[Consumed]], None],
    *,
    what: str,
    max_records: int | None = None,
    log: logging.Logger,
) -> KafkaError:
    """Hand every batch ``consumer`` polls to ``deliver``, retrying retriable read errors
    (logged on the owner's ``log`` as "reading {what} failed, retrying"); returns the first
    error that is not retriable, for the owner to report and fail its waiters with."""
    while True:
        try:
            items = await consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=max_records)
        except KafkaError as error:
            if not error.retriable:
                return error
            log.warning("reading %s failed, retrying: %s", what, error)
            await asyncio.sleep(RETRY_DELAY_S)
            continue
        deliver(items)
