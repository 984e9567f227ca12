"""``langstream.util``: SimpleRecord and AvroValue behave as in the published langstream-ai 0.4."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

import langstream
import langstream.util
from langstream.api import Record
from langstream.util import AvroValue, SimpleRecord


def test_util_exports_the_two_helpers() -> None:
    assert sorted(langstream.util.__all__) == ["AvroValue", "SimpleRecord"]
    assert langstream.SimpleRecord is SimpleRecord
    assert langstream.AvroValue is AvroValue


# Identity: LangStream's SimpleRecord has no __eq__ ----------------------------------------------


def test_records_with_the_same_fields_are_distinct_in_a_set() -> None:
    # Sources keep the records they read in a set until commit() gives them back.
    first, second = SimpleRecord("v", key="k"), SimpleRecord("v", key="k")
    pending = {first, second}
    assert len(pending) == 2
    pending.discard(first)
    assert pending == {second}


def test_a_record_is_equal_to_itself_only() -> None:
    record = SimpleRecord("v")
    assert record == record
    assert record != SimpleRecord("v")
    assert hash(record) == object.__hash__(record)


def test_a_record_is_a_dict_key() -> None:
    record = SimpleRecord({"unhashable": ["value"]}, headers=[("h", ["list"])])
    acked = {record: "read"}
    assert acked[record] == "read"


# str() and repr() -------------------------------------------------------------------------------


def test_str_is_langstreams_text() -> None:
    record = SimpleRecord("v", key="k", headers=[("h", 1)], origin="in", timestamp=5)
    assert str(record) == (
        "SimpleRecord(value=v, key=k, origin=in,timestamp=5, headers=[('h', 1)])"
    )


def test_str_of_the_defaults() -> None:
    assert str(SimpleRecord(42)) == (
        "SimpleRecord(value=42, key=None, origin=None,timestamp=None, headers=[])"
    )


def test_repr_is_str() -> None:
    record = SimpleRecord({"a": "b"}, key=b"k")
    assert repr(record) == str(record)
    assert (
        repr([record])
        == "[SimpleRecord(value={'a': 'b'}, key=b'k', origin=None,timestamp=None, headers=[])]"
    )


# Constructor ------------------------------------------------------------------------------------


def test_constructor_parameters_and_defaults() -> None:
    parameters = inspect.signature(SimpleRecord).parameters
    assert [(p.name, p.default) for p in parameters.values()] == [
        ("value", inspect.Parameter.empty),
        ("key", None),
        ("headers", None),
        ("origin", None),
        ("timestamp", None),
    ]


def test_defaults() -> None:
    record = SimpleRecord("v")
    assert (record.value(), record.key(), record.origin(), record.timestamp()) == (
        "v",
        None,
        None,
        None,
    )
    assert record.headers() == []
    assert record.headers() is not SimpleRecord("v").headers()


def test_built_from_a_tuple_or_a_dict_as_the_runtime_does() -> None:
    fields: tuple[Any, ...] = ("v", "k", [("h", "1")], "in", 7)
    positional = SimpleRecord(*fields)
    as_dict: dict[str, Any] = {
        "value": "v",
        "key": "k",
        "headers": [("h", "1")],
        "origin": "in",
        "timestamp": 7,
    }
    named = SimpleRecord(**as_dict)
    for record in (positional, named):
        assert (
            record.value(),
            record.key(),
            record.headers(),
            record.origin(),
            record.timestamp(),
        ) == fields


def test_headers_are_kept_as_given() -> None:
    headers = [("a", "1")]
    record = SimpleRecord("v", headers=headers)
    assert record.headers() is headers
    headers.append(("b", "2"))
    assert record.headers() == [("a", "1"), ("b", "2")]


def test_a_runtime_subclass_adds_a_field() -> None:
    # LangStream's runtime subclasses SimpleRecord to carry its record id.
    class WithId(SimpleRecord):
        def __init__(self, record_id: int, value: Any, key: Any = None) -> None:
            super().__init__(value, key)
            self.record_id = record_id

    record = WithId(3, "v", "k")
    assert isinstance(record, Record)
    assert (record.record_id, record.value(), record.key()) == (3, "v", "k")
    assert str(record).startswith("SimpleRecord(value=v, key=k,")
    assert len({record, WithId(3, "v", "k")}) == 2


def test_record_accessors_are_methods() -> None:
    record = SimpleRecord(1, key=2, headers=[("h", 3)], origin="o", timestamp=4)
    for name in ("value", "key", "headers", "origin", "timestamp"):
        assert callable(getattr(record, name))


# AvroValue --------------------------------------------------------------------------------------


def test_avro_value_is_a_dataclass_of_schema_and_value() -> None:
    schema = {"type": "record", "name": "T", "fields": [{"name": "f", "type": "string"}]}
    avro = AvroValue(schema=schema, value={"f": "x"})
    assert [f.name for f in dataclasses.fields(AvroValue)] == ["schema", "value"]
    assert AvroValue(schema, {"f": "x"}) == avro
    assert SimpleRecord(avro).value() is avro


def test_avro_value_needs_both_fields() -> None:
    with pytest.raises(TypeError, match="value"):
        AvroValue(schema={})  # type: ignore[call-arg]
