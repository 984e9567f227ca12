"""drop-fields, merge-key-value, unwrap-key-value, cast and flatten on in-memory records.

Expected values come from LangStream's step tests (``langstream-ai-agents``, package
``com.datastax.oss.streaming.ai``) where they cover JSON or text records; the test ids name them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sluice.application.builtin_config import BadConfiguration
from sluice.record import Record
from sluice.testing import AgentHarness
from workers.builtin import BUILTIN_AGENTS
from workers.builtin.casting import CastError

KEY = '{"keyField1": "key1", "keyField2": "key2", "keyField3": "key3"}'
VALUE = '{"valueField1": "value1", "valueField2": "value2", "valueField3": "value3"}'


async def run(agent_type: str, config: dict[str, Any], record: Record) -> Record:
    agent = BUILTIN_AGENTS[agent_type]()
    await agent.init({**config, "resources": {}, "globals": {}})
    [out] = await agent.process(record)  # type: ignore[union-attr]
    return out


# -- drop-fields ---------------------------------------------------------------------------------


async def test_drop_fields_string_json_DropFieldStepTest_testStringJson() -> None:
    # "value1" is no field name: nothing is dropped, but the JSON goes out compact.
    out = await run("drop-fields", {"fields": ["value1"], "part": "value"}, Record(VALUE))
    assert out.value == '{"valueField1":"value1","valueField2":"value2","valueField3":"value3"}'


async def test_drop_fields_bytes_json_DropFieldStepTest_testBytesJson() -> None:
    out = await run(
        "drop-fields", {"fields": ["valueField1"], "part": "value"}, Record(VALUE.encode())
    )
    assert out.value == b'{"valueField2":"value2","valueField3":"value3"}'


async def test_drop_fields_key_and_value_DropFieldStepTest_testKeyValueStringJson() -> None:
    config = {"fields": ["keyField1", "keyField2", "valueField1", "valueField2"]}
    out = await run("drop-fields", config, Record(VALUE, key=KEY))
    assert out.key == '{"keyField3":"key3"}'
    assert out.value == '{"valueField3":"value3"}'


async def test_drop_fields_part_key_names_and_plain_text() -> None:
    key, value = '{"id":7,"name":"keyname"}', '{"name":"Jane","age":42,"addr":{"city":"Rome"}}'
    out = await run(
        "drop-fields", {"fields": ["age", "missing"], "part": "value"}, Record(value, key)
    )
    assert (out.key, out.value) == (key, '{"name":"Jane","addr":{"city":"Rome"}}')
    out = await run("drop-fields", {"fields": ["name"]}, Record(value, key))
    assert (out.key, out.value) == ('{"id":7}', '{"age":42,"addr":{"city":"Rome"}}')
    out = await run("drop-fields", {"fields": ["name"], "part": "key"}, Record(value, key))
    assert (out.key, out.value) == ('{"id":7}', '{"name":"Jane","age":42,"addr":{"city":"Rome"}}')
    out = await run("drop-fields", {"fields": ["addr.city"]}, Record(value))  # not a path
    assert json.loads(out.value)["addr"] == {"city": "Rome"}
    out = await run("drop-fields", {"fields": ["x"]}, Record("plain text", headers={"h": "1"}))
    assert (out.value, dict(out.headers)) == ("plain text", {"h": "1"})


# -- merge-key-value -----------------------------------------------------------------------------


async def test_merge_key_value_MergeKeyValueStepTest_testKeyValueStringJson() -> None:
    out = await run("merge-key-value", {}, Record(VALUE, key=KEY))
    assert out.value == (
        '{"valueField1":"value1","valueField2":"value2","valueField3":"value3",'
        '"keyField1":"key1","keyField2":"key2","keyField3":"key3"}'
    )
    assert out.key == '{"keyField1":"key1","keyField2":"key2","keyField3":"key3"}'


async def test_merge_key_value_MergeKeyValueStepTest_testKeyValueBytesJson() -> None:
    out = await run("merge-key-value", {}, Record(VALUE.encode(), key=KEY.encode()))
    assert out.value == (
        b'{"valueField1":"value1","valueField2":"value2","valueField3":"value3",'
        b'"keyField1":"key1","keyField2":"key2","keyField3":"key3"}'
    )


async def test_merge_key_value_value_fields_win_and_primitives_pass() -> None:
    # MergeKeyValueStepTest.testPrimitive: a plain value and key go on unchanged.
    out = await run("merge-key-value", {}, Record("test-message", key="test-key"))
    assert (out.value, out.key) == ("test-message", "test-key")
    out = await run(
        "merge-key-value", {}, Record('{"name":"Jane","age":42}', key='{"id":7,"name":"keyname"}')
    )
    assert out.value == '{"name":"Jane","age":42,"id":7}'


# -- unwrap-key-value ----------------------------------------------------------------------------


async def test_unwrap_key_value_drops_or_unwraps_the_key() -> None:
    # UnwrapKeyValueStepTest.testKeyValueUnwrapValue / testKeyValueUnwrapKey, on JSON text.
    out = await run("unwrap-key-value", {}, Record(VALUE, key=KEY))
    assert (out.value, out.key) == (json.dumps(json.loads(VALUE), separators=(",", ":")), None)
    out = await run("unwrap-key-value", {"unwrapKey": True}, Record(VALUE, key=KEY))
    assert (out.value, out.key) == (
        '{"keyField1":"key1","keyField2":"key2","keyField3":"key3"}',
        None,
    )
    out = await run("unwrap-key-value", {"unwrap-key": "true"}, Record("v", key="k"))
    assert (out.value, out.key) == ("k", None)
    out = await run("unwrap-key-value", {"unwrapKey": True}, Record("no key"))
    assert (out.value, out.key) == ("no key", None)


# -- cast ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "schema_type", "expected"),
    [
        # CastStepTest.testPrimitiveSchemaTypes (dates as ISO text, see docs/agents.md)
        ("test", "BYTES", b"test"),
        ("true", "BOOLEAN", True),
        ("42", "INT8", 42),
        ("42", "INT32", 42),
        ("42", "INT64", 42),
        ("42.8", "FLOAT", 42.8),
        ("42.8", "DOUBLE", 42.8),
        ("2023-01-02T22:04:05.000000006-01:00", "DATE", "2023-01-02"),
        ("2023-01-02T22:04:05.000000006-01:00", "TIMESTAMP", "2023-01-02T23:04:05Z"),
        ("23:04:05.000000006", "TIME", "23:04:05"),
        ("2023-01-02T23:04:05.000000006", "LOCAL_DATE_TIME", "2023-01-02T23:04:05"),
        ("2023-01-02T22:04:05.000000006-01:00", "INSTANT", "2023-01-02T23:04:05Z"),
        ("2023-01-02", "LOCAL_DATE", "2023-01-02"),
        ("23:04:05.000000006", "LOCAL_TIME", "23:04:05"),
        # More of LangStream's converter rules
        ("4.7", "INT32", 4),
        ("", "INT64", 0),
        ("yes", "BOOLEAN", False),
        (42, "STRING", "42"),
        (True, "STRING", "true"),
        (b"\x00\x00\x00\x2a", "INT32", 42),
        (19359, "DATE", "2023-01-02"),
        (1672653600000, "TIMESTAMP", "2023-01-02T10:00:00Z"),
        ({"a": 1}, "STRING", '{"a":1}'),
    ],
)
async def test_cast(given: Any, schema_type: str, expected: Any) -> None:
    out = await run("cast", {"schema-type": schema_type, "part": "value"}, Record(given))
    assert out.value == expected
    assert type(out.value) is type(expected)


async def test_cast_json_text_to_string_is_a_no_op_and_key_part() -> None:
    out = await run("cast", {"schema-type": "STRING"}, Record('{"a": 1}', key="7"))
    assert (out.value, out.key) == ('{"a":1}', "7")
    out = await run("cast", {"schema-type": "INT32", "part": "key"}, Record("v", key="7"))
    assert (out.value, out.key) == ("v", 7)
    out = await run("cast", {"schema-type": "INT32"}, Record("5"))  # no key: key left alone
    assert (out.value, out.key) == (5, None)
    out = await run("cast", {"schema-type": "STRING"}, Record(b'{"a": 1}'))  # re-parsed JSON
    assert out.value == '{"a":1}'


@pytest.mark.parametrize(
    ("given", "schema_type", "message"),
    [
        ('{"a": 1}', "INT32", "cannot cast a JSON object to INT32"),
        ("abc", "INT32", "cannot cast 'abc' to INT32: not a number"),
        ("300", "INT8", "'300' does not fit in INT8"),
        (True, "DOUBLE", "cannot cast a boolean to DOUBLE"),
        ("not a date", "DATE", "cannot cast 'not a date' to DATE"),
        (b"\xff\xfe", "STRING", "not UTF-8"),
    ],
)
async def test_cast_errors(given: Any, schema_type: str, message: str) -> None:
    with pytest.raises(CastError, match=message):
        await run("cast", {"schema-type": schema_type}, Record(given))


# -- flatten -------------------------------------------------------------------------------------

NESTED = '{"a":{"b":{"c":1,"d":[1,{"x":1}]},"e":"f"},"g":{},"h":null}'


async def test_flatten_nested_json() -> None:
    # FlattenStepTest.testNestedValueFlattened: level names joined with "_", on JSON here.
    out = await run("flatten", {}, Record(NESTED, key='{"k":{"id":1}}'))
    assert out.value == '{"a_b_c":1,"a_b_d":[1,{"x":1}],"a_e":"f","g":{},"h":null}'
    assert out.key == '{"k_id":1}'


async def test_flatten_delimiter_and_part() -> None:
    # FlattenStepTest.testNestedKeyValueFlattenedWithCustomDelimiter / ...ValueOnlyFlattened
    out = await run("flatten", {"delimiter": ".", "part": "value"}, Record(NESTED, '{"k":{"i":1}}'))
    assert json.loads(out.value)["a.b.c"] == 1
    assert out.key == '{"k":{"i":1}}'
    out = await run("flatten", {"part": "key"}, Record("plain", key={"k": {"i": 1}}))
    assert (out.value, out.key) == ("plain", {"k_i": 1})
    out = await run("flatten", {}, Record({"a": {"b": 1}}))  # a dict stays a dict
    assert out.value == {"a_b": 1}


async def test_flatten_refuses_plain_text() -> None:
    with pytest.raises(ValueError, match="flatten needs a JSON object value, got str"):
        await run("flatten", {}, Record("plain text"))


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent_type", "config", "message"),
    [
        ("drop-fields", {}, "drop-fields: fields: is required by drop-fields"),
        ("drop-fields", {"fields": "a"}, "must be a list of names"),
        ("cast", {"schema-type": "AVRO"}, "schema-type: must be one of STRING"),
        ("flatten", {"part": "both"}, "part: must be one of key, value"),
        ("unwrap-key-value", {"unwrapKey": "maybe"}, "must be true or false"),
        ("merge-key-value", {"when": "value.a +"}, "when: .* at column"),
    ],
)
async def test_bad_configuration_fails_init(
    agent_type: str, config: dict[str, Any], message: str
) -> None:
    agent = BUILTIN_AGENTS[agent_type]()
    with pytest.raises(BadConfiguration, match=message):
        await agent.init(config)


# -- through sluice.testing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent_type", "config", "given", "expected"),
    [
        ("drop-fields", {"fields": ["b"]}, '{"a":1,"b":2}', '{"a":1}'),
        ("merge-key-value", {}, '{"a":1}', '{"a":1,"id":7}'),
        ("unwrap-key-value", {"unwrapKey": True}, '{"a":1}', '{"id":7}'),
        ("cast", {"schema-type": "INT64", "part": "value"}, "12", 12),
        ("flatten", {}, '{"a":{"b":1}}', '{"a_b":1}'),
    ],
)
async def test_through_the_agent_harness(
    agent_type: str, config: dict[str, Any], given: Any, expected: Any
) -> None:
    async with AgentHarness(agent_type, config=config) as harness:
        results = await harness.send({"value": given, "key": '{"id":7}', "headers": {"s": "1"}})
        assert harness.instance is not None
    assert results.values == [expected]
    assert results.outputs[0].headers["s"] == "1"


async def test_a_bad_record_under_the_harness_error_policy() -> None:
    errors = {"on-failure": "dead-letter"}
    config = {"schema-type": "INT32"}
    async with AgentHarness("cast", config=config, errors=errors) as harness:
        results = await harness.send("1", "one", "3")
    assert results.values == [1, 3]
    [letter] = harness.history.dead_letters
    assert letter.value == "one"
    assert letter.headers["error-class"] == "workers.builtin.casting.CastError"


async def test_the_harness_finds_a_built_in_agent_in_an_application(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        "topics: [{name: in}, {name: out}]\n"
        "pipeline:\n"
        "  - {id: flat, type: flatten, input: in, output: out, errors: {on-failure: skip},\n"
        "     configuration: {delimiter: '/'}}\n"
    )
    async with AgentHarness.from_application(tmp_path, "flat") as harness:
        results = await harness.send('{"a":{"b":1}}', "plain text")
    assert results.values == ['{"a/b":1}']
    assert harness.errors.on_failure == "skip"
