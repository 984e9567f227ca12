"""aiokafka errors as :class:`~sluice.errors.KafkaError`."""

from __future__ import annotations

import aiokafka.errors

from sluice.errors import KafkaError

__all__ = ["kafka_error"]


def kafka_error(error: Exception, what: str) -> KafkaError:
    """``error`` from aiokafka as a :class:`~sluice.errors.KafkaError` saying ``what`` failed.

    ``retriable`` follows aiokafka's own flag; timeouts count as retriable too.
    """
    retriable = bool(getattr(error, "retriable", False)) or isinstance(
        error, aiokafka.errors.KafkaTimeoutError
    )
    detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return KafkaError(f"{what}: {detail}", retriable=retriable)
