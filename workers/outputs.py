"""An executor's outputs as the Kafka messages it writes, checked before anything is written.

Each output goes to its ``destination`` when an agent set one (``dispatch``, ``trigger-event``,
``compute``'s ``destinationTopic``), else to the executor's output topic; an executor without an
output topic writes only the routed ones. Pull and push mode both encode before writing: an
output that cannot be encoded, that is larger than Kafka takes for its topic, or whose
destination topic does not exist would fail the same way on every attempt, so it is a failure
of its input (through ``errors.on-failure``), not an outage to wait out.
"""

from __future__ import annotations

from typing import Final

from sluice.events import UnencodableRecord, WireMessage, to_kafka
from sluice.kafka.errors import UnknownTopic
from sluice.kafka.producer import RECORD_OVERHEAD, Producer, RecordTooLarge, encoded_size
from sluice.record import Record

__all__ = ["BAD_OUTPUT", "Routed", "encode_outputs"]

BAD_OUTPUT: Final = (UnencodableRecord, RecordTooLarge, UnknownTopic)
"""What :func:`encode_outputs` raises for outputs Kafka will never take."""

Routed = tuple[str, WireMessage]
"""An output as written: its topic and its message."""


async def encode_outputs(
    producer: Producer, output_topic: str | None, records: list[Record], *, source: str
) -> list[Routed]:
    """``records`` as Kafka messages, each with its topic; CloudEvents from ``source``.

    Raises :class:`UnencodableRecord` for a record that cannot be a CloudEvent,
    :class:`RecordTooLarge` for one over its topic's limit (``max.message.bytes`` or the
    producer's ``max.request.size``, whichever is smaller) and :class:`UnknownTopic` for a
    destination the cluster does not have.
    """
    routed: list[Routed] = []
    limits: dict[str, int] = {}
    for record in records:
        topic = record.destination or output_topic
        if topic is None:
            continue
        message = to_kafka(record, source=source)
        if topic not in limits:
            limit = await producer.record_limit(topic, must_exist=topic != output_topic)
            limits[topic] = limit - RECORD_OVERHEAD
        size = encoded_size(message)
        if size > limits[topic]:
            raise RecordTooLarge(
                f"an output is {size} bytes once encoded; topic {topic} takes records "
                f"up to {limits[topic]} bytes",
                topic=topic,
            )
        routed.append((topic, message))
    return routed
