"""A consumed record as a structured CloudEvent (``application/cloudevents+json``).

Service gateways answer with it when the client asks (``Accept: application/cloudevents+json``).
The attributes are the record's own (id, source, type, time as written), ``partitionkey`` is its
key, and ``data`` its value: JSON and text inline, bytes as ``data_base64``. Record headers are
not CloudEvent attributes (their names have hyphens); the push-message answer carries them.
"""

from __future__ import annotations

from typing import Final

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from sluice.events import RECORD_TYPE, ConsumedRecord, to_cloudevent

__all__ = ["structured_event"]

_FORMAT: Final = JSONFormat()


def structured_event(consumed: ConsumedRecord) -> bytes:
    """The JSON bytes of ``consumed`` as a structured CloudEvent."""
    source = consumed.event_source or f"/kafka/{consumed.topic}"
    event = to_cloudevent(
        consumed.record,
        source=source,
        type=consumed.event_type or RECORD_TYPE,
        id=consumed.event_id,
        time=consumed.event_time,
    )
    value = consumed.record.value
    if value is not None and not isinstance(value, bytes | bytearray | memoryview):
        event = CloudEvent(dict(event.get_attributes()), value)
    return _FORMAT.write(event)
