"""Records <-> CloudEvents <-> Kafka messages, in the Kafka binding's binary content mode.

Pure functions over frozen data; the aiokafka adapter (:mod:`sluice.kafka`) calls them.
docs/events.md has the attribute table. The rules this module adds:

Values (``datacontenttype`` is the ``content-type`` header):

- ``str``: ``text/plain; charset=utf-8``, the UTF-8 bytes;
- ``bytes``: ``application/octet-stream``, the bytes as they are;
- anything else JSON can hold (dict, list, number, bool): ``application/json``, compact JSON;
- ``None``: no data and no ``content-type``; the Kafka value is empty, as the SDK writes it
  (aiokafka cannot send a message whose key and value are both null).

Reading a CloudEvent decodes its value by content type: JSON types (``application/json``,
``*+json``) are parsed strictly, ``text/*`` is decoded with its charset (UTF-8 by default), any
other type stays bytes. Without a content type an empty or null value is no data (``None``) and
any other value is decoded per the topic's schema, as for plain records.

Keys travel as the Kafka key and as the ``partitionkey`` attribute (``ce_partitionkey``). A
``str`` key is its UTF-8 text. Any other key carries the extension attribute
``sluicekeyencoding`` (header ``ce_sluicekeyencoding``), which tells a reader how to get the key
back from ``partitionkey``: ``json`` (dicts, lists, numbers, bools: JSON with sorted object keys,
so equal keys land on the same partition) or ``base64`` (``bytes`` keys; the Kafka key holds the
raw bytes). Without the marker ``partitionkey`` is a string key. So ``"42"`` and ``42`` stay
apart, and the key survives any CloudEvents transport, not only Kafka.

Record headers are plain Kafka headers with UTF-8 values, next to the ``ce_`` ones. Record headers
that would collide with the binding (names starting with ``ce_``, or ``content-type``, in any case)
are not written: the event's own attributes win.

Plain records (no ``ce_specversion`` header, written by a plain Kafka producer) are decoded per
the topic's schema type: ``string`` as UTF-8 text, ``json`` parsed, ``bytes`` (and ``avro``,
which Sluice does not decode) as they are. A topic without a schema gets UTF-8 text when the bytes
are valid UTF-8 and the bytes otherwise. Keys follow the same rules with the key schema. All
headers of a plain record, ``content-type`` included, become record headers.

A message that cannot be decoded is not an exception: :func:`from_kafka` returns
:class:`Undecodable` with the reason and the raw message, for the dead-letter path.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from sluice import jsonstrict
from sluice.errors import SluiceError
from sluice.media import JSON_CONTENT_TYPE
from sluice.record import Record

if TYPE_CHECKING:
    from sluice.application.model import SchemaType

__all__ = [
    "BYTES_CONTENT_TYPE",
    "KEY_ENCODING_ATTRIBUTE",
    "RECORD_TYPE",
    "TEXT_CONTENT_TYPE",
    "Consumed",
    "ConsumedRecord",
    "KafkaHeaders",
    "Undecodable",
    "UnencodableRecord",
    "WireMessage",
    "agent_source",
    "event_to_kafka",
    "from_kafka",
    "to_cloudevent",
    "to_kafka",
]

RECORD_TYPE: Final = "ai.sluice.record"
TEXT_CONTENT_TYPE: Final = "text/plain; charset=utf-8"
BYTES_CONTENT_TYPE: Final = "application/octet-stream"
KEY_ENCODING_ATTRIBUTE: Final = "sluicekeyencoding"


def agent_source(tenant: str, application: str, agent_id: str) -> str:
    """The CloudEvent ``source`` of what an agent writes, as LangStream names an agent.

    >>> agent_source("default", "chat", "ask")
    '/default/chat/agents/ask'
    """
    return f"/{tenant}/{application}/agents/{agent_id}"


_PARTITIONKEY: Final = "partitionkey"
_CE_PREFIX: Final = "ce_"
_CONTENT_TYPE_HEADER: Final = "content-type"
_REQUIRED_ATTRIBUTES: Final = ("id", "source", "type", "specversion")
_FORMAT: Final = JSONFormat()
_CHARSET = re.compile(r"""charset\s*=\s*"?([^";\s]+)"?""", re.IGNORECASE)

KafkaHeaders: TypeAlias = tuple[tuple[str, bytes], ...]
"""Kafka headers as aiokafka takes and gives them (names may repeat)."""


class UnencodableRecord(SluiceError, ValueError):
    """A record cannot become a CloudEvent: a value or key JSON cannot hold, a header that is not
    a string, or an attribute the CloudEvents spec rejects."""


@dataclass(frozen=True)
class WireMessage:
    """A Kafka message as aiokafka sends and receives it; ``timestamp`` in ms since the epoch."""

    key: bytes | None
    value: bytes | None
    headers: KafkaHeaders = ()
    timestamp: int | None = None

    def header(self, name: str) -> bytes | None:
        """The last value of the header ``name`` (compared without case), or ``None``."""
        found = None
        for header_name, value in self.headers:
            if header_name.lower() == name.lower():
                found = value
        return found


@dataclass(frozen=True)
class ConsumedRecord:
    """A decoded record and where it was read. The ``event_*`` fields are the CloudEvent
    attributes; they are ``None`` for a plain record (one without ``ce_specversion``)."""

    record: Record
    topic: str
    partition: int
    offset: int
    event_id: str | None = None
    event_type: str | None = None
    event_source: str | None = None
    event_time: datetime | None = None

    @property
    def next_offset(self) -> int:
        """The offset to commit once this record is done."""
        return self.offset + 1


@dataclass(frozen=True)
class Undecodable:
    """A poison message: ``reason`` says what is wrong; the raw message is kept for a dead
    letter."""

    reason: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: KafkaHeaders = ()
    timestamp: int | None = None

    @property
    def next_offset(self) -> int:
        """The offset to commit once this message was dead-lettered or skipped."""
        return self.offset + 1

    @property
    def message(self) -> WireMessage:
        """The raw message, to write it elsewhere unchanged."""
        return WireMessage(self.key, self.value, self.headers, self.timestamp)


Consumed: TypeAlias = ConsumedRecord | Undecodable
"""What a consumer yields for each Kafka message."""


# --- writing ---------------------------------------------------------------------------------


def to_cloudevent(
    record: Record,
    *,
    source: str,
    type: str = RECORD_TYPE,
    id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """The CloudEvent of ``record``: a new uuid4 ``id`` and the current UTC ``time`` unless
    given. Its data is the encoded value (bytes). Record headers are not attributes: pass them to
    :func:`event_to_kafka`, or use :func:`to_kafka`.

    >>> event = to_cloudevent(Record({"q": 1}, key="k"), source="/t/app/gateways/g")
    >>> event.get_datacontenttype(), event.get_data(), event.get_extension("partitionkey")
    ('application/json', b'{"q":1}', 'k')
    """
    attributes: dict[str, Any] = {
        "id": id if id is not None else str(uuid.uuid4()),
        "source": source,
        "type": type,
        "specversion": "1.0",
        "time": time if time is not None else datetime.now(UTC),
    }
    content_type, data = _encode_value(record.value)
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    if record.key is not None:
        partitionkey, encoding = _encode_key(record.key)
        attributes[_PARTITIONKEY] = partitionkey
        if encoding is not None:
            attributes[KEY_ENCODING_ATTRIBUTE] = encoding
    try:
        return CloudEvent(attributes, data)
    except BaseCloudEventException as error:
        raise UnencodableRecord(f"invalid CloudEvent attributes: {error}") from error


def event_to_kafka(event: BaseCloudEvent, headers: Mapping[str, str] | None = None) -> WireMessage:
    """The Kafka message of ``event`` in binary content mode, with ``headers`` as plain headers.

    Data that is not bytes is written by the SDK's JSON format (events made by
    :func:`to_cloudevent` always carry bytes).
    """
    message = ce_kafka.to_binary(event, _FORMAT, key_mapper=_kafka_key)
    key = message.key.encode("utf-8") if isinstance(message.key, str) else message.key
    plain: list[tuple[str, bytes]] = []
    for name, text in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise UnencodableRecord(
                f"record header {name!r} must map a string to a string, not {text!r}"
            )
        if _is_binding_header(name):
            continue
        plain.append((name, _utf8(text, f"record header {name!r}")))
    return WireMessage(key, message.value, (*_headers_to_kafka(message.headers), *plain))


def to_kafka(
    record: Record,
    *,
    source: str,
    type: str = RECORD_TYPE,
    id: str | None = None,
    time: datetime | None = None,
) -> WireMessage:
    """The Kafka message of ``record``: :func:`to_cloudevent` then :func:`event_to_kafka`.

    >>> message = to_kafka(Record("hi", headers={"session-id": "s1"}), source="/t/a/gateways/g")
    >>> message.value, message.header("content-type"), message.header("session-id")
    (b'hi', b'text/plain; charset=utf-8', b's1')
    """
    if not _plain_attributes(source, type, id, time):
        # Odd attributes: the SDK validates them and says what is wrong.
        event = to_cloudevent(record, source=source, type=type, id=id, time=time)
        return event_to_kafka(event, record.headers)
    # The same message as event_to_kafka(to_cloudevent(...)) builds, without the SDK's event
    # object and its validation of attributes known to be valid: this runs for every record
    # the gateway and the workers write (tests/sluice/test_events_fast_paths.py keeps them equal).
    headers: list[tuple[str, bytes]] = [
        ("ce_id", (id if id is not None else _new_id()).encode("utf-8")),
        ("ce_source", source.encode("utf-8")),
        ("ce_type", type.encode("utf-8")),
        ("ce_specversion", b"1.0"),
        ("ce_time", _time_header(time if time is not None else datetime.now(UTC))),
    ]
    content_type, data = _encode_value(record.value)
    if content_type is not None:
        headers.append((_CONTENT_TYPE_HEADER, content_type.encode("utf-8")))
    key: bytes | None = None
    if record.key is not None:
        partitionkey, encoding = _encode_key(record.key)
        headers.append(("ce_partitionkey", partitionkey.encode("utf-8")))
        if encoding is None:
            key = partitionkey.encode("utf-8")
        else:
            headers.append((f"{_CE_PREFIX}{KEY_ENCODING_ATTRIBUTE}", encoding.encode("utf-8")))
            key = bytes(record.key) if encoding == "base64" else partitionkey.encode("utf-8")
    for name, text in record.headers.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise UnencodableRecord(
                f"record header {name!r} must map a string to a string, not {text!r}"
            )
        if _is_binding_header(name):
            continue
        headers.append((name, _utf8(text, f"record header {name!r}")))
    return WireMessage(key, data if data is not None else b"", tuple(headers))


def _plain_attributes(source: Any, type: Any, id: Any, time: Any) -> bool:
    """Whether the SDK would take these attributes as they are (non-empty strings, an aware
    datetime)."""
    return (
        isinstance(source, str)
        and source != ""
        and isinstance(type, str)
        and type != ""
        and (id is None or (isinstance(id, str) and id != ""))
        and (time is None or (isinstance(time, datetime) and time.tzinfo is not None))
    )


def _time_header(time: datetime) -> bytes:
    text = time.isoformat()
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text.encode("utf-8")


_ID_BATCH: Final = 256
_random_ids: list[bytes] = []


def _new_id() -> str:
    """A random (version 4) UUID as text, like ``str(uuid.uuid4())``; the random bytes are read
    from the OS 256 ids at a time instead of one system call per id."""
    if not _random_ids:
        pool = os.urandom(16 * _ID_BATCH)
        _random_ids.extend(pool[i : i + 16] for i in range(0, len(pool), 16))
    number = int.from_bytes(_random_ids.pop(), "big")
    number = (number & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    text = f"{number:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _encode_value(value: Any) -> tuple[str | None, bytes | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        return TEXT_CONTENT_TYPE, _utf8(value, "the value")
    if isinstance(value, bytes | bytearray | memoryview):
        return BYTES_CONTENT_TYPE, bytes(value)
    return JSON_CONTENT_TYPE, _dump_json(value, "the value", sort_keys=False).encode("utf-8")


def _encode_key(key: Any) -> tuple[str, str | None]:
    """``partitionkey`` and the key-encoding marker (``None`` for a string key)."""
    if isinstance(key, str):
        _utf8(key, "the key")
        return key, None
    if isinstance(key, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(key)).decode("ascii"), "base64"
    return _dump_json(key, "the key", sort_keys=True), "json"


def _kafka_key(event: BaseCloudEvent) -> bytes | None:
    partitionkey = event.get_extension(_PARTITIONKEY)
    if partitionkey is None:
        return None
    text = str(partitionkey)
    if event.get_extension(KEY_ENCODING_ATTRIBUTE) == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")


def _dump_json(value: Any, what: str, *, sort_keys: bool) -> str:
    try:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=sort_keys
        )
    except (TypeError, ValueError) as error:
        raise UnencodableRecord(f"{what} is not JSON-serialisable: {error}") from error
    except RecursionError:
        raise UnencodableRecord(f"{what} is nested too deeply to encode as JSON") from None


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise UnencodableRecord(f"{what} is not encodable as UTF-8: {error}") from error


def _is_binding_header(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(_CE_PREFIX) or lowered == _CONTENT_TYPE_HEADER


# The one adapter between the SDK's header dict and aiokafka's header list.


def _headers_to_kafka(headers: Mapping[str, bytes]) -> KafkaHeaders:
    return tuple(headers.items())


def _headers_from_kafka(headers: Iterable[tuple[str, bytes]]) -> dict[str, bytes]:
    return dict(headers)


# --- reading ---------------------------------------------------------------------------------


class _Poison(Exception):
    """Why a message cannot be decoded; becomes an :class:`Undecodable`."""


def from_kafka(
    message: WireMessage,
    *,
    topic: str,
    partition: int,
    offset: int,
    value_type: SchemaType | None = None,
    key_type: SchemaType | None = None,
) -> Consumed:
    """Decode a consumed Kafka message; never raises for bad content.

    ``value_type`` and ``key_type`` are the topic's schema types (``TopicSpec.value_type`` and
    ``key_type``); they decide how plain records, and CloudEvents without a content type, are
    decoded.

    >>> plain = WireMessage(key=None, value=b'{"a": 1}')
    >>> from_kafka(plain, topic="t", partition=0, offset=7, value_type="json").record.value
    {'a': 1}
    >>> bad = WireMessage(key=None, value=b"\\xff")
    >>> result = from_kafka(bad, topic="t", partition=0, offset=8, value_type="string")
    >>> type(result).__name__, result.reason.split(":")[0], result.next_offset
    ('Undecodable', 'value is not UTF-8 text (schema string)', 9)
    """
    try:
        if message.header("ce_specversion") is not None:
            return _from_binary_event(message, topic, partition, offset, value_type, key_type)
        record = Record(
            _decode_plain(message.value, value_type, "value"),
            key=_decode_plain(message.key, key_type, "key"),
            headers=_decode_headers(message.headers),
            origin=topic,
            timestamp=message.timestamp,
        )
        return ConsumedRecord(record, topic, partition, offset)
    except _Poison as poison:
        return Undecodable(
            str(poison),
            topic,
            partition,
            offset,
            message.key,
            message.value,
            message.headers,
            message.timestamp,
        )


def _from_binary_event(
    message: WireMessage,
    topic: str,
    partition: int,
    offset: int,
    value_type: SchemaType | None,
    key_type: SchemaType | None,
) -> ConsumedRecord:
    binding = [(name, value) for name, value in message.headers if _is_binding_header(name)]
    plain = [(name, value) for name, value in message.headers if not _is_binding_header(name)]
    present = {name.lower() for name, _ in binding}
    missing = [a for a in _REQUIRED_ATTRIBUTES if f"{_CE_PREFIX}{a}" not in present]
    if missing:
        # The SDK would invent an id and a time; a CloudEvent without them is not one.
        raise _Poison(f"CloudEvent without required attribute(s) {', '.join(missing)}")
    attributes = _plain_binding(binding)
    if attributes is None:
        attributes = _sdk_attributes(binding)
    partitionkey = attributes.get(_PARTITIONKEY)
    if partitionkey is not None:
        key = _decode_partitionkey(str(partitionkey), attributes.get(KEY_ENCODING_ATTRIBUTE))
    else:
        key = _decode_plain(message.key, key_type, "key")
    content_type = attributes.get("datacontenttype")
    if content_type is None:
        value = _decode_plain(message.value or None, value_type, "value")
    else:
        value = _decode_data(message.value, content_type)
    record = Record(
        value,
        key=key,
        headers=_decode_headers(plain),
        origin=topic,
        timestamp=message.timestamp,
    )
    return ConsumedRecord(
        record,
        topic,
        partition,
        offset,
        event_id=attributes["id"],
        event_type=attributes["type"],
        event_source=attributes["source"],
        event_time=attributes["time"],
    )


def _sdk_attributes(binding: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The event's attributes as the SDK reads and validates them; _Poison when it refuses."""
    try:
        # The SDK decodes attributes only: the key and the data follow Sluice's rules.
        sdk_message = ce_kafka.KafkaMessage(_headers_from_kafka(binding), key=None, value=b"")
        event = ce_kafka.from_binary(sdk_message, _FORMAT)
    except (BaseCloudEventException, ValueError) as error:
        raise _Poison(f"invalid CloudEvent attributes: {error}") from error
    return event.get_attributes()


_EXTENSION_NAME: Final = re.compile(r"^[a-z0-9]+$")
_KNOWN_ATTRIBUTES: Final = frozenset(
    (*_REQUIRED_ATTRIBUTES, "datacontenttype", "dataschema", "subject", "time")
)
_NON_EMPTY: Final = ("id", "source", "type", "datacontenttype", "dataschema", "subject")
_PLAIN_TIME: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})"
)


def _plain_binding(binding: list[tuple[str, bytes]]) -> dict[str, Any] | None:
    """The attributes :func:`_sdk_attributes` would give, read directly when every header is
    unremarkable (UTF-8, version 1.0, non-empty values, a time with its offset in the usual
    ISO 8601 shape, lowercase extension names); None sends the message through the SDK. This
    runs for every record a worker or the gateway reads (tests/sluice/test_events_fast_paths.py
    keeps the two equal)."""
    attributes: dict[str, Any] = {}
    try:
        for name, raw in _headers_from_kafka(binding).items():
            lowered = name.lower()
            if lowered == _CONTENT_TYPE_HEADER:
                attributes["datacontenttype"] = raw.decode("utf-8")
            else:
                attributes[lowered[len(_CE_PREFIX) :]] = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if attributes.get("specversion") != "1.0":
        return None
    for attribute in _NON_EMPTY:
        if attributes.get(attribute, "x") == "":
            return None
    for attribute in attributes:
        if attribute not in _KNOWN_ATTRIBUTES and (
            attribute == "data" or _EXTENSION_NAME.match(attribute) is None
        ):
            return None
    time = attributes.get("time")
    if time is None:
        attributes["time"] = datetime.now(UTC)  # as the SDK does for an event without one
    else:
        if _PLAIN_TIME.fullmatch(time) is None:
            return None
        attributes["time"] = datetime.fromisoformat(time.replace("Z", "+00:00", 1))
    return attributes


def _decode_partitionkey(partitionkey: str, encoding: Any) -> Any:
    if encoding is None:
        return partitionkey
    if encoding == "json":
        return _parse_json(partitionkey.encode("utf-8"), "partitionkey")
    if encoding == "base64":
        try:
            return base64.b64decode(partitionkey, validate=True)
        except (binascii.Error, ValueError) as error:
            raise _Poison(f"partitionkey is not base64: {error}") from error
    raise _Poison(f"unknown {KEY_ENCODING_ATTRIBUTE} {encoding!r} (expected json or base64)")


def _decode_data(raw: bytes | None, content_type: str) -> Any:
    if raw is None:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if JSONFormat.JSON_CONTENT_TYPE_PATTERN.match(media):
        return _parse_json(raw, f"value ({content_type})")
    if media.startswith("text/"):
        match = _CHARSET.search(content_type)
        charset = match.group(1) if match else "utf-8"
        try:
            codecs.lookup(charset)
        except LookupError as error:
            raise _Poison(f"value has an unknown charset {charset!r}") from error
        try:
            return raw.decode(charset)
        except UnicodeDecodeError as error:
            raise _Poison(f"value ({content_type}) is not valid {charset}: {error}") from error
    return raw


def _decode_plain(raw: bytes | None, schema_type: SchemaType | None, what: str) -> Any:
    if raw is None:
        return None
    if schema_type == "string":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _Poison(f"{what} is not UTF-8 text (schema string): {error}") from error
    if schema_type == "json":
        return _parse_json(raw, f"{what} (schema json)")
    if schema_type is None:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return raw


def _parse_json(raw: bytes, what: str) -> Any:
    try:
        return jsonstrict.loads(raw.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _Poison(f"{what} is not valid JSON: {error}") from error
    except RecursionError:
        # One record nested deeper than the interpreter's recursion limit must not stop the
        # consumer that reads it.
        raise _Poison(f"{what} is JSON nested too deeply to decode") from None


def _decode_headers(headers: Iterable[tuple[str, bytes]]) -> Mapping[str, str]:
    decoded: dict[str, str] = {}
    for name, value in _headers_from_kafka(headers).items():
        try:
            decoded[name] = value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _Poison(f"header {name!r} is not UTF-8: {error}") from error
    return MappingProxyType(decoded)
