"""aiokafka errors as Sluice's KafkaError: retriable or not, never a TypeError."""

from __future__ import annotations

import aiokafka.errors
import pytest

from sluice.kafka.errors import kafka_error


@pytest.mark.parametrize(
    ("error", "retriable"),
    [
        # Not retriable by aiokafka's flag: the sequence/timeout check runs (a TypeError before).
        (aiokafka.errors.CommitFailedError("group rebalanced"), False),
        (aiokafka.errors.UnknownMemberIdError(), False),
        (aiokafka.errors.OutOfOrderSequenceNumber(), True),
        (aiokafka.errors.KafkaTimeoutError(), True),
        (aiokafka.errors.RequestTimedOutError(), True),
    ],
)
def test_kafka_error_keeps_what_failed_and_whether_to_retry(
    error: Exception, retriable: bool
) -> None:
    converted = kafka_error(error, "committing offsets of group 'g' failed")
    assert converted.retriable is retriable
    assert str(converted).startswith("committing offsets of group 'g' failed: ")
    assert type(error).__name__ in str(converted)
