"""aiokafka errors as :class:`~sluice.errors.KafkaError`."""

from __future__ import annotations

import aiokafka.errors

from sluice.errors import KafkaError

__all__ = ["RecordTooLarge", "UnknownTopic", "kafka_error"]


class RecordTooLarge(KafkaError):
    """Kafka refused a record for its size: the producer's ``max.request.size`` or the topic's
    ``max.message.bytes``. Never retriable: the same record fails the same way again."""

    def __init__(self, message: str, *, topic: str) -> None:
        super().__init__(message, retriable=False)
        self.topic = topic


class UnknownTopic(KafkaError):
    """A topic the cluster does not have. Never retriable for the record that named it (a
    ``destination`` no topic holds); the topic may be created later."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist", retriable=False)
        self.topic = topic


# Errors after which the idempotent producer's sequence for a partition is broken: the batch
# used sequence numbers the broker never saw. A fresh producer (a new producer id) heals it, so
# for the caller they are worth retrying.
_SEQUENCE_ERRORS = (
    aiokafka.errors.OutOfOrderSequenceNumber,
    aiokafka.errors.UnknownProducerId,
    aiokafka.errors.InvalidProducerEpoch,
    aiokafka.errors.ProducerFenced,
)
_SIZE_ERRORS = (aiokafka.errors.MessageSizeTooLargeError, aiokafka.errors.RecordTooLargeError)


def kafka_error(error: Exception, what: str, *, topic: str | None = None) -> KafkaError:
    """``error`` from aiokafka as a :class:`~sluice.errors.KafkaError` saying ``what`` failed.

    ``retriable`` follows aiokafka's own flag; timeouts and broken producer sequences count as
    retriable too. A size refusal is :class:`RecordTooLarge` when ``topic`` is given.
    """
    detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if topic is not None and isinstance(error, _SIZE_ERRORS):
        return RecordTooLarge(f"{what}: {detail}", topic=topic)
    retriable = bool(getattr(error, "retriable", False)) or isinstance(
        error, (aiokafka.errors.KafkaTimeoutError, *_SEQUENCE_ERRORS)
    )
    return KafkaError(f"{what}: {detail}", retriable=retriable)
