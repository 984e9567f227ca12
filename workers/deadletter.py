"""Dead letters: the failed input, as it was, plus headers saying what went wrong. Pure."""

from __future__ import annotations

from dataclasses import replace

from sluice.events import RECORD_TYPE, Consumed, ConsumedRecord, WireMessage, to_kafka

MAX_MESSAGE_HEADER = 1000


def dead_letter(item: Consumed, error: BaseException | str, *, source: str) -> WireMessage:
    """The message to write to ``<input>-deadletter`` for ``item``.

    A decoded record keeps its CloudEvent attributes (id, type, source, time); an undecodable one
    is copied byte for byte. Either way the headers ``error-class``, ``error-message``,
    ``origin-topic``, ``origin-partition`` and ``origin-offset`` are added.
    """
    if isinstance(item, ConsumedRecord):
        message = to_kafka(
            item.record,
            source=item.event_source or source,
            type=item.event_type or RECORD_TYPE,
            id=item.event_id,
            time=item.event_time,
        )
    else:
        message = item.message
    if isinstance(error, BaseException):
        error_class = f"{type(error).__module__}.{type(error).__qualname__}"
        error_message = str(error)
    else:
        error_class, error_message = "sluice.Undecodable", error
    extra = {
        "error-class": error_class,
        "error-message": error_message[:MAX_MESSAGE_HEADER],
        "origin-topic": item.topic,
        "origin-partition": str(item.partition),
        "origin-offset": str(item.offset),
    }
    kept = tuple((k, v) for k, v in message.headers if k not in extra)
    added = tuple((k, v.encode("utf-8")) for k, v in extra.items())
    return replace(message, headers=kept + added)
