"""A typed adapter over aiokafka: connection settings, the producer and the consumer.

Every message goes through :mod:`sluice.events`: the producer writes records as CloudEvents in
binary content mode, the consumer yields :class:`~sluice.events.ConsumedRecord` or, for a
message it cannot decode, :class:`~sluice.events.Undecodable` (never an exception). aiokafka
errors become :class:`~sluice.errors.KafkaError` with ``retriable`` set from aiokafka's own flag
(timeouts count as retriable too).

The reliability settings are fixed (docs/reliability.md): the producer is idempotent with
``acks=all`` and a bounded request timeout; consumers never auto-commit and commit only the
offsets they are given.

The parts live in :mod:`sluice.kafka.connection`, :mod:`sluice.kafka.producer` and
:mod:`sluice.kafka.consumer`; this package re-exports them. Topic administration is
:mod:`sluice.kafka.admin`; the local broker for ``sluice run`` and the tests is
:mod:`sluice.kafka.local`.
"""

from __future__ import annotations

from sluice.kafka.connection import KafkaSettings, Role
from sluice.kafka.consumer import Consumer, Partition, RebalanceListener
from sluice.kafka.errors import RecordTooLarge, UnknownTopic
from sluice.kafka.producer import (
    DEFAULT_MAX_REQUEST_SIZE,
    DEFAULT_REQUEST_TIMEOUT_MS,
    Producer,
    SendResult,
)

__all__ = [
    "DEFAULT_MAX_REQUEST_SIZE",
    "DEFAULT_REQUEST_TIMEOUT_MS",
    "Consumer",
    "KafkaSettings",
    "Partition",
    "Producer",
    "RebalanceListener",
    "RecordTooLarge",
    "Role",
    "SendResult",
    "UnknownTopic",
]
