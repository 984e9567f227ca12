"""CloudEvents over HTTP, as KafkaSource delivers them, -> what a consumer yields. Pure.

Push mode must treat a delivered event exactly like the record pull mode would have read from
the topic, so an HTTP request is turned back into the Kafka message it came from and decoded by
:func:`sluice.events.from_kafka` (same value, key, header and poison rules):

- **binary** content mode (``ce-`` headers, a Content-Type that is no CloudEvents format): the
  attributes are decoded by the SDK's HTTP binding (percent-decoding, ``time`` parsing,
  attribute validation) and become ``ce_`` headers; ``Content-Type`` is ``datacontenttype``;
  the body is the Kafka value, byte for byte.
- **structured** content mode (``Content-Type: application/cloudevents+json``): the event is
  read by the SDK's JSON format; ``data`` is re-encoded per ``datacontenttype`` (JSON values as
  JSON, strings as UTF-8 text), ``data_base64`` is the bytes. Without ``datacontenttype``,
  ``data`` is JSON (the JSON format's default) and ``data_base64`` is
  ``application/octet-stream``.
- Every other header that is neither hop-by-hop nor about the HTTP transport (the set below)
  becomes a plain record header: KafkaSource copies the record's plain Kafka headers
  (``langstream-client-session-id``...) into HTTP headers. Names arrive lower-cased (HTTP names
  are case-insensitive); values are decoded as UTF-8.

Anything else is malformed: a request with neither ``ce-`` headers nor a structured content
type, a batch (``application/cloudevents-batch+json``) or another event format, a missing
required attribute (``id``, ``source``, ``type``, ``specversion``: the SDK would invent an id
and a time), an invalid attribute or data that does not decode. It comes
back as :class:`~sluice.events.Undecodable` carrying the would-be Kafka message, so a dead letter
holds what was delivered.

The partition and offset of a pushed event are not known to the worker (KafkaSource does not send
them for events that already are CloudEvents): they are ``-1``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Final

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from sluice.application.model import TopicSpec
from sluice.events import (
    BYTES_CONTENT_TYPE,
    Consumed,
    Undecodable,
    WireMessage,
    from_kafka,
)
from sluice.media import CLOUDEVENTS_CONTENT_TYPE, JSON_CONTENT_TYPE

__all__ = ["TRANSPORT_HEADERS", "UNKNOWN_POSITION", "from_http"]

UNKNOWN_POSITION: Final = -1
"""The partition and offset of a pushed event."""

TRANSPORT_HEADERS: Final = frozenset(
    {
        # hop-by-hop (RFC 9110 section 7.6.1), plus whatever the Connection header names
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        # the message framing and the binding's own header
        "host",
        "content-length",
        "content-type",
        "expect",
        # added by HTTP clients and proxies on the way (Knative's dispatcher and queue-proxy),
        # never a Kafka header of the record
        "accept",
        "accept-encoding",
        "user-agent",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-real-ip",
        "x-request-id",
        "k-proxy-request",
        "prefer",
    }
)
"""Header names (lower case) that are not record headers."""

_CE_HTTP_PREFIX: Final = "ce-"
_CLOUDEVENTS_MEDIA: Final = "application/cloudevents"
_REQUIRED: Final = ("id", "source", "type", "specversion")
_FORMAT: Final = JSONFormat()


class _Malformed(Exception):
    """Why a request is not a CloudEvent; becomes an :class:`Undecodable`."""


def from_http(headers: Iterable[tuple[bytes, bytes]], body: bytes, *, topic: TopicSpec) -> Consumed:
    """Decode a pushed request (ASGI's raw headers and the body) as if read from ``topic``.

    Never raises for bad content: a malformed request is an :class:`Undecodable`.

    >>> from sluice.application.model import TopicSpec
    >>> raw = [(b"ce-id", b"1"), (b"ce-source", b"/s"), (b"ce-type", b"t"),
    ...        (b"ce-specversion", b"1.0"), (b"content-type", b"text/plain"),
    ...        (b"langstream-client-session-id", b"s1")]
    >>> item = from_http(raw, b"hi", topic=TopicSpec("in"))
    >>> item.record.value, dict(item.record.headers), item.event_id
    ('hi', {'langstream-client-session-id': 's1'}, '1')
    >>> from_http([(b"content-type", b"text/plain")], b"hi", topic=TopicSpec("in")).reason
    'not a CloudEvent: no ce- headers and Content-Type is not application/cloudevents+json'
    """
    fields = [(name.decode("latin-1").lower(), value) for name, value in headers]
    plain = _plain_headers(fields)
    content_type = dict(fields).get("content-type", b"")
    try:
        media = _media(_text(content_type))
        # The HTTP binding decides by Content-Type first: a structured event may carry ce- too.
        if media == CLOUDEVENTS_CONTENT_TYPE:
            message = _from_structured(body, plain)
        elif media.startswith(_CLOUDEVENTS_MEDIA):
            raise _Malformed(f"unsupported CloudEvents format {media} (batches are not supported)")
        elif any(name.startswith(_CE_HTTP_PREFIX) for name, _ in fields):
            message = _from_binary(fields, body, plain)
        else:
            raise _Malformed(
                "not a CloudEvent: no ce- headers and Content-Type is not "
                f"{CLOUDEVENTS_CONTENT_TYPE}"
            )
    except _Malformed as error:
        raw = ((("content-type", content_type),) if content_type else ()) + plain
        return Undecodable(
            str(error), topic.name, UNKNOWN_POSITION, UNKNOWN_POSITION, None, body, raw
        )
    return from_kafka(
        message,
        topic=topic.name,
        partition=UNKNOWN_POSITION,
        offset=UNKNOWN_POSITION,
        value_type=topic.value_type,
        key_type=topic.key_type,
    )


def _plain_headers(fields: list[tuple[str, bytes]]) -> tuple[tuple[str, bytes], ...]:
    named = {
        token.strip().lower()
        for name, value in fields
        if name == "connection"
        for token in value.decode("latin-1").split(",")
    }
    return tuple(
        (name, value)
        for name, value in fields
        if name not in TRANSPORT_HEADERS
        and name not in named
        and not name.startswith((_CE_HTTP_PREFIX, "ce_"))
    )


def _from_binary(
    fields: list[tuple[str, bytes]], body: bytes, plain: tuple[tuple[str, bytes], ...]
) -> WireMessage:
    binding = {
        name: _text(value)
        for name, value in fields
        if name.startswith(_CE_HTTP_PREFIX) or name == "content-type"
    }
    missing = [a for a in _REQUIRED if not binding.get(f"{_CE_HTTP_PREFIX}{a}")]
    if missing:
        raise _Malformed(f"CloudEvent without required attribute(s) {', '.join(missing)}")
    # The SDK decodes the attributes only: the body is decoded by sluice.events, as in pull mode.
    event = _sdk(lambda: ce_http.from_binary(ce_http.HTTPMessage(binding, b""), _FORMAT))
    return WireMessage(None, body, _binding_headers(event) + plain)


def _from_structured(body: bytes, plain: tuple[tuple[str, bytes], ...]) -> WireMessage:
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _Malformed(f"structured CloudEvent is not valid JSON: {error}") from error
    except RecursionError:
        # One event nested deeper than the interpreter's recursion limit is a bad event, not a
        # crash of the request (as pull mode reads such a record).
        raise _Malformed("structured CloudEvent is JSON nested too deeply to decode") from None
    if not isinstance(document, dict):
        raise _Malformed(f"a structured CloudEvent is a JSON object, not {type(document).__name__}")
    missing = [a for a in _REQUIRED if not document.get(a)]
    if missing:
        raise _Malformed(f"CloudEvent without required attribute(s) {', '.join(missing)}")
    if "data" in document and "data_base64" in document:
        raise _Malformed("a CloudEvent cannot have both data and data_base64")
    event = _sdk(
        lambda: ce_http.from_structured(
            ce_http.HTTPMessage({"content-type": CLOUDEVENTS_CONTENT_TYPE}, body), _FORMAT
        )
    )
    data = event.get_data()
    content_type = event.get_datacontenttype()
    if data is not None and content_type is None:
        # data_base64 holds bytes; data holds JSON (the JSON format's default content type).
        content_type = BYTES_CONTENT_TYPE if isinstance(data, bytes) else JSON_CONTENT_TYPE
        attributes = {**event.get_attributes(), "datacontenttype": content_type}
        event = _sdk(lambda: CloudEvent(attributes))
    return WireMessage(None, _structured_data(data, content_type), _binding_headers(event) + plain)


def _structured_data(data: Any, content_type: str | None) -> bytes | None:
    if data is None:
        return None
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and not JSONFormat.JSON_CONTENT_TYPE_PATTERN.match(
        _media(content_type or "")
    ):
        return data.encode("utf-8")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _binding_headers(event: BaseCloudEvent) -> tuple[tuple[str, bytes], ...]:
    """The event's attributes as the Kafka binding writes them (``ce_*``, ``content-type``)."""
    message = ce_kafka.to_binary(
        CloudEvent(event.get_attributes()), _FORMAT, key_mapper=lambda _event: None
    )
    return tuple(message.headers.items())


def _sdk(call: Callable[[], BaseCloudEvent]) -> BaseCloudEvent:
    try:
        event: BaseCloudEvent = call()
    except (BaseCloudEventException, ValueError, TypeError, AttributeError) as error:
        raise _Malformed(f"invalid CloudEvent: {error}") from error
    except RecursionError:
        raise _Malformed("invalid CloudEvent: nested too deeply to decode") from None
    return event


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Malformed(f"a CloudEvent header is not UTF-8: {error}") from error
