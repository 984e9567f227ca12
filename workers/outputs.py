"""An executor's outputs as the Kafka messages it writes, checked against the topic's limit.

Pull and push mode both encode before writing: an output that cannot be encoded, or that is
larger than Kafka takes for the topic, would fail the same way on every attempt, so it is a
failure of its input (through ``errors.on-failure``), not an outage to wait out.
"""

from __future__ import annotations

from typing import Final

from sluice.events import UnencodableRecord, WireMessage, to_kafka
from sluice.kafka.producer import RECORD_OVERHEAD, Producer, RecordTooLarge, encoded_size
from sluice.record import Record

__all__ = ["BAD_OUTPUT", "encode_outputs"]

BAD_OUTPUT: Final = (UnencodableRecord, RecordTooLarge)
"""What :func:`encode_outputs` raises for outputs Kafka will never take."""


async def encode_outputs(
    producer: Producer, topic: str, records: list[Record], *, source: str
) -> list[WireMessage]:
    """``records`` as Kafka messages for ``topic``, CloudEvents from ``source``.

    Raises :class:`UnencodableRecord` for a record that cannot be a CloudEvent and
    :class:`RecordTooLarge` for one over the topic's limit (``max.message.bytes`` or the
    producer's ``max.request.size``, whichever is smaller).
    """
    messages = [to_kafka(record, source=source) for record in records]
    if messages:
        limit = await producer.record_limit(topic) - RECORD_OVERHEAD
        for message in messages:
            size = encoded_size(message)
            if size > limit:
                raise RecordTooLarge(
                    f"an output is {size} bytes once encoded; topic {topic} takes records "
                    f"up to {limit} bytes",
                    topic=topic,
                )
    return messages
