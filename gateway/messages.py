"""The gateway's wire messages: produce requests, produce responses, push frames, offset tokens,
and HTTP bodies by Content-Type. Pure functions over plain data.

Decisions beyond LangStream (docs/gateway.md):

- Push frames return values as they were produced: ``str`` as a string, JSON values as JSON,
  ``bytes`` (values that are neither text nor JSON) as a base64 string.
- Offset tokens are opaque base64url (no padding) of LangStream's JSON
  ``{"offsets": {"<partition>": "<next offset>"}}``; standard base64 (LangStream's own tokens)
  is accepted too. A partition missing from a token starts at the end.
- A structured CloudEvent (``application/cloudevents+json``) becomes one produce request:
  ``data`` is the value (JSON as JSON; a string under a non-JSON ``datacontenttype`` as a string),
  ``data_base64`` the value as bytes, ``partitionkey`` the (string) key, ``id`` and ``type`` are
  kept as ``event_id`` / ``event_type``. Other extension attributes are ignored: a structured
  event has no place for record headers, and CloudEvents extension names cannot be spelled like
  the hyphenated header names gateways use.
- In a batch (a JSON array, or ``application/cloudevents-batch+json``) an error names the item:
  ``message [<i>]: <LangStream's message>``; one bad item rejects the whole batch.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypedDict

from gateway.errors import BadRequest, UnsupportedMediaType
from sluice import jsonstrict
from sluice.events import ConsumedRecord
from sluice.media import CLOUDEVENTS_CONTENT_TYPE, JSON_CONTENT_TYPE

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "CLOUDEVENTS_BATCH_CONTENT_TYPE",
    "TEXT_CONTENT_TYPE",
    "ProduceRequest",
    "ProduceResponse",
    "ProduceStatus",
    "PushMessage",
    "PushRecord",
    "check_message_headers",
    "decode_offset",
    "encode_offset",
    "media_type",
    "parse_http_body",
    "parse_produce_request",
    "produce_response",
    "push_frame",
    "push_message",
]

TEXT_CONTENT_TYPE = "text/plain"
CLOUDEVENTS_BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
ACCEPTED_MEDIA_TYPES = (
    JSON_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    CLOUDEVENTS_CONTENT_TYPE,
    CLOUDEVENTS_BATCH_CONTENT_TYPE,
)
"""The bodies an HTTP produce reads (``parse_http_body``), in the order ``Accept-Post`` lists."""

ProduceStatus = Literal["OK", "BAD_REQUEST", "PRODUCER_ERROR"]
_REQUEST_FIELDS = ("key", "value", "headers")
_JSON_ERROR = "Error while parsing JSON payload: "
_CE_REQUIRED = ("id", "source", "type")


@dataclass(frozen=True)
class ProduceRequest:
    """One record to produce: ``key`` and ``value`` are any JSON value, ``str`` or ``bytes``.

    ``event_id`` / ``event_type`` / ``event_source`` are set when the request came as a
    CloudEvent (its source only identifies it: the record's source is the gateway's).
    """

    key: Any = None
    value: Any = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    event_id: str | None = None
    event_type: str | None = None
    event_source: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.headers, MappingProxyType):
            object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))


class ProduceResponse(TypedDict):
    status: ProduceStatus
    reason: str | None


class PushRecord(TypedDict):
    key: Any
    value: Any
    headers: dict[str, str]


class PushMessage(TypedDict):
    record: PushRecord
    offset: str


# --- produce requests ------------------------------------------------------------------------


def _load_json(body: bytes | str) -> Any:
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return jsonstrict.loads(text)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadRequest(f"{_JSON_ERROR}{error}") from error
    except RecursionError as error:
        raise BadRequest(f"{_JSON_ERROR}the JSON is nested too deeply") from error


def _checked(request: ProduceRequest) -> ProduceRequest:
    if request.key is None and request.value is None:
        raise BadRequest("Either key or value must be set.")
    return request


def _request_from_json(data: Any) -> ProduceRequest:
    if not isinstance(data, dict):
        raise BadRequest(f"{_JSON_ERROR}expected a JSON object, not {_json_type(data)}")
    unknown = [name for name in data if name not in _REQUEST_FIELDS]
    if unknown:
        names = ", ".join(f'"{name}"' for name in unknown)
        raise BadRequest(
            f"{_JSON_ERROR}unknown field{'s' if len(unknown) > 1 else ''} {names} "
            "(known fields: key, value, headers)"
        )
    headers = data.get("headers")
    if headers is None:
        headers = {}
    if not isinstance(headers, dict):
        raise BadRequest(f"{_JSON_ERROR}headers must be an object, not {_json_type(headers)}")
    for name, text in headers.items():
        if not isinstance(text, str):
            raise BadRequest(f"{_JSON_ERROR}header {name} must be a string, not {_json_type(text)}")
    return _checked(ProduceRequest(data.get("key"), data.get("value"), headers))


def parse_produce_request(body: bytes | str) -> ProduceRequest:
    """A produce request from its JSON text (a WebSocket frame or an HTTP ``application/json``
    body): ``{"key": ..., "value": ..., "headers": {"name": "text"}}``.

    >>> parse_produce_request('{"value": "hi", "headers": {"session": "s1"}}').headers["session"]
    's1'
    """
    return _request_from_json(_load_json(body))


def check_message_headers(headers: Mapping[str, str], configured: Collection[str]) -> None:
    """Reject a message header that the gateway sets itself (``configured`` keys), in any
    letter case: agents may read headers case-insensitively, as HTTP does."""
    lowered = {name.lower() for name in configured}
    for name in headers:
        if name.lower() in lowered:
            raise BadRequest(f"Header {name} is configured as parameter-level header.")


def produce_response(status: ProduceStatus, reason: str | None = None) -> ProduceResponse:
    """The answer to one produce request; ``OK`` has no reason."""
    return {"status": status, "reason": reason}


# --- push frames and offsets -----------------------------------------------------------------


def _wire_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def push_message(consumed: ConsumedRecord, offset_token: str) -> PushMessage:
    """The frame that pushes ``consumed`` to a client; ``bytes`` keys and values are base64."""
    record = consumed.record
    return {
        "record": {
            "key": _wire_value(record.key),
            "value": _wire_value(record.value),
            "headers": dict(record.headers),
        },
        "offset": offset_token,
    }


_FRAME_CACHE_SIZE = 256
_frames: OrderedDict[tuple[int, tuple[tuple[int, int], ...]], tuple[ConsumedRecord, str]] = (
    OrderedDict()
)


def push_frame(consumed: ConsumedRecord, positions: Mapping[int, int]) -> str:
    """The JSON text of :func:`push_message` for ``consumed`` with the offset token of
    ``positions``, built once and shared by every socket that pushes the same record from the
    same positions (all the unfiltered subscribers of a topic): a fan-out to N sockets encodes
    each record once, not N times. The last few hundred frames are kept."""
    key = (id(consumed), tuple(sorted(positions.items())))
    entry = _frames.get(key)
    # The entry holds the record itself, so its id cannot be reused while the entry lives.
    if entry is not None and entry[0] is consumed:
        _frames.move_to_end(key)
        return entry[1]
    text = json.dumps(push_message(consumed, encode_offset(positions)))
    _frames[key] = (consumed, text)
    if len(_frames) > _FRAME_CACHE_SIZE:
        _frames.popitem(last=False)
    return text


def encode_offset(partition_offsets: Mapping[int, int]) -> str:
    """An opaque position token: for each partition, the next offset to read.

    >>> decode_offset(encode_offset({0: 12, 3: 4}))
    {0: 12, 3: 4}
    """
    payload = {"offsets": {str(p): str(o) for p, o in sorted(partition_offsets.items())}}
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_offset(token: str) -> dict[int, int]:
    """The partition offsets of a token from :func:`encode_offset` (or from LangStream)."""
    try:
        text = token.strip().replace("+", "-").replace("/", "_").rstrip("=")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw.decode("utf-8"))
        offsets = data["offsets"]
        if not isinstance(offsets, dict):
            raise TypeError("offsets is not an object")
        decoded: dict[int, int] = {}
        for partition, offset in offsets.items():
            if isinstance(offset, bool) or not isinstance(offset, str | int):
                raise TypeError("offset is not a number")
            number, index = int(offset), int(partition)
            if number < 0 or index < 0:
                raise ValueError("negative")
            decoded[index] = number
    except (binascii.Error, ValueError, TypeError, KeyError) as error:
        raise BadRequest(f"invalid position {token}") from error
    return decoded


# --- HTTP bodies -----------------------------------------------------------------------------


def media_type(content_type: str | None) -> str | None:
    """The media type of a Content-Type, lower case, without parameters; None when absent."""
    if content_type is None:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    return media or None


def parse_http_body(content_type: str | None, body: bytes) -> list[ProduceRequest]:
    """The produce requests of an HTTP body, by its media type (parameters ignored).

    ``text/plain`` or no Content-Type: the UTF-8 body is the value. ``application/json``: a
    produce request, or a JSON array of them (a batch). ``application/cloudevents+json``: one
    structured CloudEvent; ``application/cloudevents-batch+json``: an array of them.

    >>> parse_http_body("text/plain; charset=utf-8", b"hello")[0].value
    'hello'
    """
    media = media_type(content_type)
    if media is None or media == TEXT_CONTENT_TYPE:
        try:
            return [ProduceRequest(value=body.decode("utf-8"))]
        except UnicodeDecodeError as error:
            raise BadRequest(f"the body is not UTF-8 text: {error}") from error
    if media == JSON_CONTENT_TYPE:
        data = _load_json(body)
        if isinstance(data, list):
            return _batch(data, _request_from_json)
        return [_request_from_json(data)]
    if media == CLOUDEVENTS_CONTENT_TYPE:
        return [_request_from_event(_load_json(body))]
    if media == CLOUDEVENTS_BATCH_CONTENT_TYPE:
        data = _load_json(body)
        if not isinstance(data, list):
            raise BadRequest(
                f"{_JSON_ERROR}a CloudEvents batch is a JSON array, not {_json_type(data)}"
            )
        return _batch(data, _request_from_event)
    raise UnsupportedMediaType(
        f"Unsupported content type: {content_type}", accepted=ACCEPTED_MEDIA_TYPES
    )


def _batch(items: list[Any], parse: Callable[[Any], ProduceRequest]) -> list[ProduceRequest]:
    requests: list[ProduceRequest] = []
    for index, item in enumerate(items):
        try:
            requests.append(parse(item))
        except BadRequest as error:
            raise BadRequest(f"message [{index}]: {error.detail}") from error
    return requests


def _request_from_event(event: Any) -> ProduceRequest:
    if not isinstance(event, dict):
        raise BadRequest(f"a CloudEvent is a JSON object, not {_json_type(event)}")
    if event.get("specversion") != "1.0":
        raise BadRequest(
            f"unsupported CloudEvent specversion {event.get('specversion')!r} (expected '1.0')"
        )
    for name in _CE_REQUIRED:
        if not isinstance(event.get(name), str) or not event[name]:
            raise BadRequest(f"the CloudEvent attribute {name} must be a non-empty string")
    if "data" in event and "data_base64" in event:
        raise BadRequest("a CloudEvent cannot have both data and data_base64")
    value: Any = event.get("data")
    if "data_base64" in event:
        encoded = event["data_base64"]
        try:
            if not isinstance(encoded, str):
                raise TypeError("not a string")
            value = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError, TypeError) as error:
            raise BadRequest("the CloudEvent data_base64 is not base64 text") from error
    key = event.get("partitionkey")
    if key is not None and not isinstance(key, str):
        raise BadRequest("the CloudEvent attribute partitionkey must be a string")
    return _checked(
        ProduceRequest(
            key,
            value,
            event_id=event["id"],
            event_type=event["type"],
            event_source=event["source"],
        )
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
