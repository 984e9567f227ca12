"""The record <-> CloudEvent <-> Kafka message mapping, without a broker."""

from __future__ import annotations

import doctest
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

import sluice.events
from sluice.events import (
    KEY_ENCODING_ATTRIBUTE,
    RECORD_TYPE,
    ConsumedRecord,
    Undecodable,
    UnencodableRecord,
    WireMessage,
    event_to_kafka,
    from_kafka,
    to_cloudevent,
    to_kafka,
)
from sluice.record import Record

SOURCE = "/default/app/gateways/produce-input"


def roundtrip(record: Record, **kwargs: Any) -> ConsumedRecord:
    message = to_kafka(record, source=SOURCE)
    result = from_kafka(message, topic="t", partition=0, offset=0, **kwargs)
    assert isinstance(result, ConsumedRecord), result
    return result


def decode(message: WireMessage, **kwargs: Any) -> ConsumedRecord | Undecodable:
    return from_kafka(message, topic="t", partition=2, offset=5, **kwargs)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (True == 1 in Python, not here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def event_headers(**headers: str) -> tuple[tuple[str, bytes], ...]:
    base = {"ce_id": "1", "ce_source": "/s", "ce_type": "t", "ce_specversion": "1.0"}
    base.update(headers)
    return tuple((name, value.encode()) for name, value in base.items())


def test_doctests() -> None:
    assert doctest.testmod(sluice.events).failed == 0


@pytest.mark.parametrize(
    ("value", "content_type", "wire"),
    [
        (
            {"q": "what?", "n": [1, 2.5, None]},
            "application/json",
            b'{"q":"what?","n":[1,2.5,null]}',
        ),
        ({}, "application/json", b"{}"),
        (42, "application/json", b"42"),
        (0, "application/json", b"0"),
        (-1.5, "application/json", b"-1.5"),
        ([1, "x", {"y": False}], "application/json", b'[1,"x",{"y":false}]'),
        ([], "application/json", b"[]"),
        (True, "application/json", b"true"),
        (False, "application/json", b"false"),
        ("hello", "text/plain; charset=utf-8", b"hello"),
        ("", "text/plain; charset=utf-8", b""),
        ("ünï €", "text/plain; charset=utf-8", "ünï €".encode()),
        ('{"looks": "like json"}', "text/plain; charset=utf-8", b'{"looks": "like json"}'),
        (b"\x00\xffraw", "application/octet-stream", b"\x00\xffraw"),
        (b"", "application/octet-stream", b""),
        (None, None, b""),
    ],
)
def test_values_round_trip_exactly(
    value: Any, content_type: str | None, wire: bytes | None
) -> None:
    message = to_kafka(Record(value), source=SOURCE)
    assert message.value == wire
    assert message.header("content-type") == (content_type.encode() if content_type else None)
    for value_type in (None, "string", "json", "bytes"):
        # With a content type the schema does not matter for events.
        result = roundtrip(Record(value), value_type=value_type)
        assert same(result.record.value, value), (value_type, result.record.value)


def test_bytearray_value_is_bytes() -> None:
    assert roundtrip(Record(bytearray(b"ab"))).record.value == b"ab"


@pytest.mark.parametrize(
    ("key", "kafka_key", "partitionkey", "encoding"),
    [
        ("user-1", b"user-1", "user-1", None),
        ("42", b"42", "42", None),
        ("", b"", "", None),
        ("ключ", "ключ".encode(), "ключ", None),
        (42, b"42", "42", "json"),
        (1.25, b"1.25", "1.25", "json"),
        (True, b"true", "true", "json"),
        ({"b": 1, "a": [1, 2]}, b'{"a":[1,2],"b":1}', '{"a":[1,2],"b":1}', "json"),
        ([1, "x"], b'[1,"x"]', '[1,"x"]', "json"),
        (b"\x00\xff", b"\x00\xff", "AP8=", "base64"),
    ],
)
def test_keys_round_trip_with_their_type(
    key: Any, kafka_key: bytes, partitionkey: str, encoding: str | None
) -> None:
    message = to_kafka(Record("v", key=key), source=SOURCE)
    assert message.key == kafka_key
    assert message.header("ce_partitionkey") == partitionkey.encode()
    marker = message.header(f"ce_{KEY_ENCODING_ATTRIBUTE}")
    assert marker == (encoding.encode() if encoding else None)
    for key_type in (None, "string", "json", "bytes"):
        assert same(roundtrip(Record("v", key=key), key_type=key_type).record.key, key)


def test_json_keys_are_canonical_so_equal_keys_share_a_partition() -> None:
    first = to_kafka(Record(1, key={"a": 1, "b": 2}), source=SOURCE)
    second = to_kafka(Record(1, key={"b": 2, "a": 1}), source=SOURCE)
    assert first.key == second.key


def test_no_key_means_no_kafka_key_and_no_partitionkey() -> None:
    message = to_kafka(Record("v"), source=SOURCE)
    assert message.key is None
    assert message.header("ce_partitionkey") is None
    assert roundtrip(Record("v")).record.key is None


def test_attributes() -> None:
    before = datetime.now(UTC)
    message = to_kafka(Record({"a": 1}), source=SOURCE)
    names = [name for name, _ in message.headers]
    assert names[: len(set(names))] == names  # no duplicates
    assert message.header("ce_specversion") == b"1.0"
    assert message.header("ce_type") == RECORD_TYPE.encode()
    assert message.header("ce_source") == SOURCE.encode()
    event_id = message.header("ce_id")
    assert event_id is not None
    assert uuid.UUID(event_id.decode()).version == 4
    result = decode(message)
    assert isinstance(result, ConsumedRecord)
    assert result.event_id == event_id.decode()
    assert result.event_type == RECORD_TYPE
    assert result.event_source == SOURCE
    assert result.event_time is not None
    assert before - timedelta(seconds=1) <= result.event_time <= datetime.now(UTC)
    assert (result.topic, result.partition, result.offset, result.next_offset) == ("t", 2, 5, 6)
    assert result.record.origin == "t"


def test_given_id_type_and_time_are_kept() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone(timedelta(hours=2)))
    message = to_kafka(Record("x"), source=SOURCE, type="com.example.ask", id="abc", time=when)
    assert message.header("ce_time") == b"2024-05-06T07:08:09.123000+02:00"
    result = decode(message)
    assert isinstance(result, ConsumedRecord)
    assert (result.event_id, result.event_type, result.event_time) == (
        "abc",
        "com.example.ask",
        when,
    )


def test_new_ids_differ() -> None:
    first = to_cloudevent(Record(1), source=SOURCE)
    second = to_cloudevent(Record(1), source=SOURCE)
    assert first.get_id() != second.get_id()


def test_headers_are_plain_utf8_kafka_headers() -> None:
    headers = {
        "langstream-client-session-id": "s-1",
        "langstream-service-request-id": "r-ü",
        "X-Mixed-Case": "",
    }
    message = to_kafka(Record("v", headers=headers), source=SOURCE)
    assert ("langstream-client-session-id", b"s-1") in message.headers
    assert ("langstream-service-request-id", "r-ü".encode()) in message.headers
    assert ("X-Mixed-Case", b"") in message.headers
    assert not any(name.startswith("ce_langstream") for name, _ in message.headers)
    assert dict(roundtrip(Record("v", headers=headers)).record.headers) == headers


def test_record_headers_cannot_override_the_binding() -> None:
    headers = {"content-type": "image/png", "CE_ID": "forged", "ce_type": "forged", "ok": "1"}
    message = to_kafka(Record({"a": 1}, headers=headers), source=SOURCE, id="real")
    assert message.header("content-type") == b"application/json"
    assert message.header("ce_id") == b"real"
    assert message.header("ce_type") == RECORD_TYPE.encode()
    result = decode(message)
    assert isinstance(result, ConsumedRecord)
    assert dict(result.record.headers) == {"ok": "1"}
    assert result.record.value == {"a": 1}


def test_record_timestamp_comes_from_kafka() -> None:
    message = to_kafka(Record("v"), source=SOURCE)
    timed = WireMessage(message.key, message.value, message.headers, timestamp=1700000000123)
    result = decode(timed)
    assert isinstance(result, ConsumedRecord)
    assert result.record.timestamp == 1700000000123


def test_the_sdk_reads_what_we_write() -> None:
    message = to_kafka(Record({"a": [1]}, key="k", headers={"h": "v"}), source=SOURCE, id="i-1")
    assert message.value is not None
    sdk = ce_kafka.KafkaMessage(dict(message.headers), message.key, message.value)
    event = ce_kafka.from_binary(sdk, JSONFormat())
    assert (event.get_id(), event.get_source(), event.get_type()) == ("i-1", SOURCE, RECORD_TYPE)
    assert event.get_data() == {"a": [1]}
    assert event.get_extension("partitionkey") == "k"


def test_foreign_cloudevent_with_dict_data() -> None:
    event = CloudEvent(
        {"id": "e", "source": "/other", "type": "com.other", "datacontenttype": "application/json"},
        {"x": 1},
    )
    message = event_to_kafka(event, {"h": "1"})
    result = decode(message)
    assert isinstance(result, ConsumedRecord)
    assert result.record.value == {"x": 1}
    assert result.event_type == "com.other"
    assert dict(result.record.headers) == {"h": "1"}


@pytest.mark.parametrize(
    "value",
    [object(), float("nan"), float("inf"), {"a": {1, 2}}, {"s": object()}],
)
def test_values_json_cannot_hold_are_rejected(value: Any) -> None:
    with pytest.raises(UnencodableRecord, match="value is not JSON-serialisable"):
        to_kafka(Record(value), source=SOURCE)


def test_unencodable_keys_headers_and_attributes() -> None:
    with pytest.raises(UnencodableRecord, match="key is not JSON-serialisable"):
        to_kafka(Record("v", key=object()), source=SOURCE)
    with pytest.raises(UnencodableRecord, match="record header 'n'"):
        to_kafka(Record("v", headers={"n": 1}), source=SOURCE)  # type: ignore[dict-item]
    with pytest.raises(UnencodableRecord, match="not encodable as UTF-8"):
        to_kafka(Record("\ud800"), source=SOURCE)
    with pytest.raises(UnencodableRecord, match="time"):
        to_kafka(Record("v"), source=SOURCE, time=datetime(2024, 1, 1))  # naive
    with pytest.raises(UnencodableRecord, match="source"):
        to_kafka(Record("v"), source="")
    assert issubclass(UnencodableRecord, ValueError)


# --- plain records (no ce_specversion) ------------------------------------------------------


@pytest.mark.parametrize(
    ("value_type", "raw", "expected"),
    [
        ("string", b"hello \xc3\xbc", "hello ü"),
        ("string", b'{"a":1}', '{"a":1}'),
        ("json", b'{"a": [1, 2]}', {"a": [1, 2]}),
        ("json", b"7", 7),
        ("json", b"null", None),
        ("bytes", b"\x00\x01", b"\x00\x01"),
        ("bytes", b"text", b"text"),
        ("avro", b"\x02\x06abc", b"\x02\x06abc"),
        (None, b"text \xc3\xbc", "text ü"),
        (None, b'{"a":1}', '{"a":1}'),
        (None, b"\xff\xfe", b"\xff\xfe"),
        (None, b"", ""),
        ("string", None, None),
        ("json", None, None),
    ],
)
def test_plain_values_decode_per_topic_schema(
    value_type: Any, raw: bytes | None, expected: Any
) -> None:
    result = decode(WireMessage(None, raw, (("content-type", b"whatever"),)), value_type=value_type)
    assert isinstance(result, ConsumedRecord)
    assert same(result.record.value, expected)
    assert dict(result.record.headers) == {"content-type": "whatever"}
    assert result.event_id is None
    assert result.event_time is None


@pytest.mark.parametrize(
    ("key_type", "raw", "expected"),
    [
        ("string", b"42", "42"),
        ("json", b"42", 42),
        ("json", b'{"id":1}', {"id": 1}),
        ("bytes", b"\x00", b"\x00"),
        (None, b"user", "user"),
        (None, b"\xff", b"\xff"),
        (None, None, None),
    ],
)
def test_plain_keys_decode_per_key_schema(key_type: Any, raw: bytes | None, expected: Any) -> None:
    result = decode(WireMessage(raw, b"v"), key_type=key_type)
    assert isinstance(result, ConsumedRecord)
    assert same(result.record.key, expected)


def test_cloudevent_without_content_type_uses_the_schema() -> None:
    message = WireMessage(b"kk", b'{"a":1}', event_headers())
    json_result = decode(message, value_type="json", key_type="string")
    assert isinstance(json_result, ConsumedRecord)
    assert json_result.record.value == {"a": 1}
    assert json_result.record.key == "kk"  # no ce_partitionkey: the Kafka key, per key schema
    bytes_result = decode(message, value_type="bytes", key_type="bytes")
    assert isinstance(bytes_result, ConsumedRecord)
    assert bytes_result.record.value == b'{"a":1}'
    assert bytes_result.record.key == b"kk"


def test_cloudevent_content_types() -> None:
    def value(content_type: str, raw: bytes) -> Any:
        result = decode(WireMessage(None, raw, event_headers(**{"content-type": content_type})))
        assert isinstance(result, ConsumedRecord), result
        return result.record.value

    assert value("application/cloudevents-batch+json", b"[1]") == [1]
    assert value("application/vnd.x+json; charset=utf-8", b'{"a":1}') == {"a": 1}
    assert value("text/json", b"3") == 3
    assert value("text/plain; charset=iso-8859-1", b"\xfc") == "ü"
    assert value("text/csv", b"a,b") == "a,b"
    assert value("image/png", b"\x89PNG") == b"\x89PNG"


def test_a_partitionkey_without_marker_is_a_string() -> None:
    message = WireMessage(b"7", b"x", event_headers(ce_partitionkey="7"))
    result = decode(message, key_type="json")
    assert isinstance(result, ConsumedRecord)
    assert result.record.key == "7"


def test_header_names_are_case_insensitive_for_the_binding() -> None:
    headers = (
        ("CE_ID", b"1"),
        ("Ce_Source", b"/s"),
        ("ce_TYPE", b"t"),
        ("CE_SPECVERSION", b"1.0"),
        ("Content-Type", b"application/json"),
        ("Session", b"s"),
    )
    result = decode(WireMessage(None, b"[true]", headers))
    assert isinstance(result, ConsumedRecord), result
    assert result.record.value == [True]
    assert dict(result.record.headers) == {"Session": "s"}


def test_repeated_plain_headers_keep_the_last_value() -> None:
    result = decode(WireMessage(None, b"v", (("h", b"1"), ("h", b"2"))))
    assert isinstance(result, ConsumedRecord)
    assert dict(result.record.headers) == {"h": "2"}


# --- poison messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "schema", "reason"),
    [
        (
            WireMessage(None, b"{not json", event_headers(**{"content-type": "application/json"})),
            None,
            "value (application/json) is not valid JSON",
        ),
        (
            WireMessage(None, b"", event_headers(**{"content-type": "application/json"})),
            None,
            "is not valid JSON",
        ),
        (
            WireMessage(None, b"NaN", event_headers(**{"content-type": "application/json"})),
            None,
            "is not valid JSON: NaN is not valid JSON",
        ),
        (
            WireMessage(None, b"\xff", event_headers(**{"content-type": "text/plain"})),
            None,
            "is not valid utf-8",
        ),
        (
            WireMessage(None, b"x", event_headers(**{"content-type": "text/plain; charset=nope"})),
            None,
            "unknown charset 'nope'",
        ),
        (WireMessage(None, b"\xff", ()), "string", "value is not UTF-8 text (schema string)"),
        (WireMessage(None, b"{", ()), "json", "value (schema json) is not valid JSON"),
        (WireMessage(None, b"\xff", event_headers()), "string", "value is not UTF-8 text"),
        (
            WireMessage(None, b"x", (("ce_specversion", b"1.0"), ("ce_source", b"/s"))),
            None,
            "without required attribute(s) id, type",
        ),
        (
            WireMessage(None, b"x", (("ce_specversion", b"1.0"), ("ce_id", b"1"))),
            None,
            "without required attribute(s) source, type",
        ),
        (WireMessage(None, b"x", event_headers(ce_id="")), None, "invalid CloudEvent attributes"),
        (
            WireMessage(None, b"x", event_headers(ce_specversion="2.0")),
            None,
            "invalid CloudEvent attributes",
        ),
        (
            WireMessage(None, b"x", event_headers(ce_time="yesterday")),
            None,
            "invalid CloudEvent attributes",
        ),
        (
            WireMessage(None, b"x", event_headers(**{"ce_bad-name": "1"})),
            None,
            "invalid CloudEvent attributes",
        ),
        (
            WireMessage(None, b"x", (*event_headers(), ("ce_type", b"\xff"))),
            None,
            "invalid CloudEvent attributes",
        ),
        (
            WireMessage(
                b"k", b"x", event_headers(ce_partitionkey="{", **{"ce_sluicekeyencoding": "json"})
            ),
            None,
            "partitionkey is not valid JSON",
        ),
        (
            WireMessage(
                b"k", b"x", event_headers(ce_partitionkey="!!", ce_sluicekeyencoding="base64")
            ),
            None,
            "partitionkey is not base64",
        ),
        (
            WireMessage(b"k", b"x", event_headers(ce_partitionkey="k", ce_sluicekeyencoding="x")),
            None,
            "unknown sluicekeyencoding 'x'",
        ),
        (WireMessage(None, b"x", (("h", b"\xff"),)), None, "header 'h' is not UTF-8"),
        (WireMessage(None, b"x", (*event_headers(), ("h", b"\xff"))), None, "header 'h'"),
    ],
)
def test_poison_messages_are_undecodable_not_exceptions(
    message: WireMessage, schema: Any, reason: str
) -> None:
    result = decode(message, value_type=schema)
    assert isinstance(result, Undecodable)
    assert reason in result.reason
    assert (result.topic, result.partition, result.offset, result.next_offset) == ("t", 2, 5, 6)
    assert result.message == message


def test_bad_plain_keys_are_undecodable() -> None:
    result = decode(WireMessage(b"\xff", b"v"), key_type="string")
    assert isinstance(result, Undecodable)
    assert result.reason.startswith("key is not UTF-8 text")
    result = decode(WireMessage(b"{", b"v"), key_type="json")
    assert isinstance(result, Undecodable)
    assert result.reason.startswith("key (schema json) is not valid JSON")


@pytest.mark.parametrize("raw", [None, b""])
@pytest.mark.parametrize("schema", [None, "string", "json", "bytes"])
def test_cloudevent_without_content_type_or_value_has_no_data(
    raw: bytes | None, schema: Any
) -> None:
    result = decode(WireMessage(None, raw, event_headers()), value_type=schema)
    assert isinstance(result, ConsumedRecord)
    assert result.record.value is None
