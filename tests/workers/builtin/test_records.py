"""The GenAI-toolkit working form of a record and the result field-name grammar."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.record import Record
from workers.builtin.records import (
    FieldName,
    FieldNameError,
    FieldWriteError,
    WorkingRecord,
    parse_field_name,
    parse_json_object,
    set_field,
    to_record,
    to_working,
)


@pytest.mark.parametrize(
    ("data", "working", "form"),
    [
        ('{"a": 1, "b": 2.5}', {"a": 1, "b": 2.5}, "json-text"),
        (b' {"a": [1, 2]}', {"a": [1, 2]}, "json-bytes"),
        ("[1, 2]", "[1, 2]", "as-is"),  # only JSON objects are parsed
        ("42", "42", "as-is"),
        ("plain text", "plain text", "as-is"),
        ("{not json", "{not json", "as-is"),
        ('{"a": NaN}', '{"a": NaN}', "as-is"),  # not JSON: stays text
        ({"a": 1}, {"a": 1}, "as-is"),  # a dict (JSON CloudEvent, fused agent) stays a dict
        (7, 7, "as-is"),
        (None, None, "as-is"),
    ],
)
def test_what_the_working_form_parses(data: Any, working: Any, form: str) -> None:
    assert parse_json_object(data) == (working, form)


def test_to_working_and_back_keeps_headers_origin_and_time() -> None:
    record = Record(
        '{ "a" : 1.0, "b":[ 1, 2 ] }',
        key='{"id": 7}',
        headers={"session": "s1"},
        origin="in",
        timestamp=1700000000000,
    )
    working = to_working(record)
    assert working.value == {"a": 1.0, "b": [1, 2]}
    assert working.key == {"id": 7}
    assert working.properties == {"session": "s1"}
    assert (working.topic, working.event_time) == ("in", 1700000000000)
    assert (working.destination_topic, working.message_key) == (None, None)
    out = to_record(working, record)
    # Re-encoded compactly even when nothing changed, as LangStream does (doubles keep .0).
    assert out.value == '{"a":1.0,"b":[1,2]}'
    assert out.key == '{"id":7}'
    assert dict(out.headers) == {"session": "s1"}
    assert (out.origin, out.timestamp) == ("in", 1700000000000)


def test_back_keeps_key_order_appends_new_keys_and_writes_unicode() -> None:
    record = Record('{"z": 1, "a": "é"}')
    working = to_working(record)
    working.value["m"] = 2
    assert to_record(working, record).value == '{"z":1,"a":"é","m":2}'


def test_json_bytes_go_back_to_bytes_and_dicts_stay_dicts() -> None:
    working = to_working(Record(b'{"a": 1}', key={"k": 1}))
    out = to_record(working, Record(b""))
    assert out.value == b'{"a":1}'
    assert out.key == {"k": 1}


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("value", FieldName("value")),
        ("key", FieldName("key")),
        ("value.x", FieldName("value", "x")),
        ("value.a.b", FieldName("value", "a.b")),  # split at the first dot only
        ("key.id", FieldName("key", "id")),
        ("properties.p", FieldName("properties", "p")),
        ("destinationTopic", FieldName("destinationTopic")),
        ("messageKey", FieldName("messageKey")),
    ],
)
def test_field_names(text: str, parsed: FieldName) -> None:
    # ComputeFieldTest (LangStream) pins the same grammar.
    assert parse_field_name(text) == parsed


@pytest.mark.parametrize("text", ["", "values.x", "value.", "properties", "header.x", "topic"])
def test_bad_field_names(text: str) -> None:
    with pytest.raises(FieldNameError, match="invalid field name"):
        parse_field_name(text)


def test_set_field_targets() -> None:
    working = to_working(Record('{"a": 1}', key='{"id": 7}', headers={"h": "1"}))
    set_field(working, "x", "value.b")
    set_field(working, 8, "key.n")
    set_field(working, 42, "properties.count")
    set_field(working, {"j": True}, "properties.json")
    set_field(working, "t2", "destinationTopic")
    set_field(working, "mk", "messageKey")
    out = to_record(working, Record(""))
    assert out.value == '{"a":1,"b":"x"}'
    assert dict(out.headers) == {"h": "1", "count": "42", "json": '{"j":true}'}
    # LangStream's runtime dropped these two; Sluice routes the record and keys it as its
    # documentation says: the message key replaces the key written before it.
    assert (out.destination, out.key) == ("t2", "mk")
    set_field(working, None, "messageKey")
    assert to_record(working, Record("")).key == '{"id":7,"n":8}'


def test_set_whole_value_to_a_dict_goes_out_as_json_text() -> None:
    working = to_working(Record("plain"))
    set_field(working, {"answer": 1}, None)
    assert to_record(working, Record("")).value == '{"answer":1}'


def test_set_field_on_plain_text_or_null_property_fails() -> None:
    working = WorkingRecord("plain text")
    with pytest.raises(FieldWriteError, match="value is not a JSON object"):
        set_field(working, 1, "value.x")
    with pytest.raises(FieldWriteError, match="key is not a JSON object"):
        set_field(working, 1, "key.x")
    with pytest.raises(FieldWriteError, match="to null"):
        set_field(working, None, "properties.p")
