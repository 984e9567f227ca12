"""compute and drop on in-memory records, their configuration errors through ``sluice validate``,
and a user's pipeline of compute + drop + their own processor through ``sluice.testing``.

Expected values come from LangStream's tests (``ComputeStepTest`` and ``GenAIToolKitAgentTest``
in ``langstream-ai-agents``; each case names its test) and from the reference's §18.2 cases
T1-T9, which were run against LangStream's ``ComputeStep``. LangStream's Avro/JSON-schema cases
are taken where they say how a field of a JSON object is written (the same Jackson writer
writes the JSON text of a record).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sluice import Processor
from sluice.application import load_application
from sluice.application.builtin_config import BadConfiguration
from sluice.errors import InvalidApplication
from sluice.expressions import ExpressionError
from sluice.record import Record
from sluice.testing import AgentHarness
from workers.builtin import BUILTIN_AGENTS
from workers.builtin.compute import ComputeError
from workers.builtin.compute_types import ComputeTypeError

JANE = (
    '{"name":"Jane","age":42,"date":18999,"timestamp":1672525445006,"time":83085006,'
    '"integerStr":"13360"}'
)


def field(name: str, expression: str, kind: str | None = None) -> dict[str, Any]:
    entry = {"name": name, "expression": expression}
    return entry if kind is None else {**entry, "type": kind}


async def run(agent_type: str, config: dict[str, Any], record: Record) -> list[Record]:
    agent = BUILTIN_AGENTS[agent_type]()
    await agent.init({**config, "resources": {}, "globals": {}})
    return await agent.process(record)  # type: ignore[union-attr]


async def compute(record: Record, *fields: dict[str, Any]) -> Record:
    [out] = await run("compute", {"fields": list(fields)}, record)
    return out


# -- value.<field> on a JSON object --------------------------------------------------------------


async def test_T1_string_json_ComputeStepTest_testStringJson() -> None:
    out = await compute(Record(JANE, key="test-key"), field("value.age", "value.age + 1", "STRING"))
    assert out.value == JANE.replace('"age":42', '"age":"43"')
    assert out.key == "test-key"


async def test_bytes_json_stays_bytes_ComputeStepTest_testStringJson_BYTES() -> None:
    out = await compute(Record(JANE.encode()), field("value.age", "value.age + 1", "STRING"))
    assert out.value == JANE.replace('"age":42', '"age":"43"').encode()


async def test_key_fields_ComputeStepTest_testKVStringJson() -> None:
    out = await compute(
        Record("42", key=JANE),
        field("value.age", "value.age + 1", "STRING"),
        field("key.age", "key.age + 2", "STRING"),
    )
    assert out.key == JANE.replace('"age":42', '"age":"44"')
    assert out.value == "42"  # plain text: value.age is ignored


# ComputeStepTest.testJson / buildComputeFields: how each type is written into a JSON object.
TYPED_FIELDS = [
    ("'Hotaru'", "STRING", "Hotaru"),
    ("127", "INT8", 127),
    ("32767", "INT16", 32767),
    ("2147483647", "INT32", 2147483647),
    ("9223372036854775807", "INT64", 9223372036854775807),
    # Float.MAX_VALUE; Jackson writes a Java float as its shortest text, 3.4028235E38.
    ("340282346638528859999999999999999999999.999999", "FLOAT", 3.4028235e38),
    ("1.79769313486231570e+308", "DOUBLE", 1.7976931348623157e308),
    ("1 == 1", "BOOLEAN", True),
    ("'Hotaru'.bytes", "BYTES", "SG90YXJ1"),
    ("'2007-12-03'", "DATE", 13850),
    ("13850", "DATE", 13850),
    ("'2007-12-03'", "LOCAL_DATE", 13850),
    ("'10:15:30'", "TIME", 36930000),
    ("36930000", "TIME", 36930000),
    ("'10:15:30'", "LOCAL_TIME", 36930000),
    ("'2007-12-03T10:15:30+00:00'", "INSTANT", 1196676930000),
    ("1196676930000", "INSTANT", 1196676930000),
    ("'2007-12-03T10:15:30+00:00'", "TIMESTAMP", 1196676930000),
    ("'2007-12-03T10:15:30'", "LOCAL_DATE_TIME", 1196676930000),
    ("'2007-12-03T10:15:30+00:00'", "DATETIME", 1196676930000),
    # ComputeStepTest.testJson: the integerStr field read as INT32, dates of the record as text.
    ("value.integerStr", "INT32", 13360),
    # Reference §18.2 T8 (ran against LangStream's ComputeStep).
    ("'2023-01-02'", "DATE", 19359),
    ("'2023-01-02T10:00:00Z'", "TIMESTAMP", 1672653600000),
    ("'abc'", "BYTES", "YWJj"),
    ("'3.2'", "FLOAT", 3.2),
    ("1", "DOUBLE", 1.0),
    # JstlTypeConverter rules: instants as numbers, decimals, EL's own text of a map.
    ("fn:timestampAdd('2017-01-02T00:01:02Z', 1, 'days')", "INT64", 1483401662000),
    ("fn:timestampAdd('2017-01-02T00:01:02Z', 1, 'days')", "STRING", "2017-01-03T00:01:02Z"),
    ("fn:timestampAdd('2017-01-02T00:01:02Z', 1, 'days')", "LOCAL_DATE", 17169),
    ("fn:decimalFromUnscaled(12345, 2)", "DECIMAL", 123.45),
    ("'12'", "DECIMAL", 12),
    ('fn:fromJson(\'{"c":"d"}\')', "STRING", "{c=d}"),
    ("null", "STRING", None),  # null with a type is a JSON null
]


@pytest.mark.parametrize(("expression", "kind", "expected"), TYPED_FIELDS)
async def test_typed_field_ComputeStepTest_testJson(
    expression: str, kind: str, expected: Any
) -> None:
    out = await compute(Record(JANE), field("value.new", expression, kind))
    written = json.loads(out.value)
    assert written["new"] == expected
    assert type(written["new"]) is type(expected)
    assert list(written)[-1] == "new"  # new keys are appended


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'Hotaru'", "Hotaru"),
        ("42", 42),
        ("42.0", 42.0),
        ("1 == 1", True),
        ("'Hotaru'.bytes", "SG90YXJ1"),
        ("fn:split('a,b', ',')", ["a", "b"]),
        ('fn:fromJson(\'{"c":"d"}\')', {"c": "d"}),
        ("fn:timestampAdd('2017-01-02T00:01:02Z', 1, 'days')", 1483401662000),
        ("fn:dateadd('2017-01-02T00:01:02Z', 1, 'days')", 1483401662000),
    ],
)
async def test_inferred_field_types_ComputeStepTest_testAvroInferredType(
    expression: str, expected: Any
) -> None:
    out = await compute(Record('{"a":1}'), field("value.new", expression))
    assert json.loads(out.value) == {"a": 1, "new": expected}


async def test_existing_fields_are_overwritten_in_place_and_new_ones_appended() -> None:
    out = await compute(
        Record('{"a":1,"b":2}'),
        field("value.c", "3"),
        field("value.a", "'x'"),
        field("value.d", "4"),
    )
    assert out.value == '{"a":"x","b":2,"c":3,"d":4}'


@pytest.mark.parametrize(
    ("given", "expression", "expected"),
    [
        # GenAIToolKitAgentTest (reference §18.2 T9): split, str of a map, toJson of unpack.
        ("fn:split(value.fieldCsv, ',')", None, ["a", "b", "c"]),
        ("fn:str(fn:fromJson(value.fieldJson))", None, "{this=that}"),
        ("fn:toJson(fn:unpack(value.fieldCsv, 'f1,f2,f3'))", "json", {"f1": "a", "f2": "b"}),
    ],
)
async def test_T9_functions_GenAIToolKitAgentTest(
    given: str, expression: Any, expected: Any
) -> None:
    value = {
        "fieldInt": 1,
        "fieldText": "text",
        "fieldCsv": "a,b,c",
        "fieldJson": '{"this":"that"}',
    }
    out = await compute(Record(json.dumps(value)), field("value.computedField", given))
    computed = json.loads(out.value)["computedField"]
    if expression == "json":
        assert json.loads(computed) == {"f1": "a", "f2": "b", "f3": "c"}
    else:
        assert computed == expected


async def test_T2_value_field_on_plain_text_is_ignored_ComputeStepTest_testPrimitivesNotModified() -> (
    None
):
    # 'newValue' is an unknown identifier: it is not even evaluated.
    out = await compute(
        Record("value", key="test-key"), field("value.newField", "newValue", "STRING")
    )
    assert (out.value, out.key) == ("value", "test-key")


async def test_key_value_fields_on_plain_texts_ComputeStepTest_testKeyValuePrimitivesNotModified() -> (
    None
):
    out = await compute(
        Record("42", key="key"),
        field("value.newField", "newValue", "STRING"),
        field("key.newField", "newValue", "STRING"),
    )
    assert (out.value, out.key) == ("42", "key")


async def test_value_field_on_a_json_array_text_is_ignored() -> None:
    out = await compute(Record("[1, 2]"), field("value.x", "1"))
    assert out.value == "[1, 2]"


async def test_a_field_holding_the_value_itself_is_a_copy() -> None:
    out = await compute(
        Record('{"a":{"b":1}}'), field("value.c", "value.a"), field("value.d", "value")
    )
    assert json.loads(out.value) == {"a": {"b": 1}, "c": {"b": 1}, "d": {"a": {"b": 1}}}


# -- the whole value and key ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "kind", "expected"),
    [
        # ComputeStepTest.primitiveSchemaTypesProvider (reference §18.2 T3); dates and times are
        # ISO-8601 text on a Sluice record, as the cast agent leaves them.
        ("'newValue'", "STRING", "newValue"),
        ("'4'", "INT8", 4),
        ("'4'", "INT16", 4),
        ("'4'", "INT32", 4),
        ("'4'", "INT64", 4),
        ("'3.2'", "FLOAT", 3.2),
        ("'3.2'", "DOUBLE", 3.2),
        ("true", "BOOLEAN", True),
        ("'2008-02-07'", "LOCAL_DATE", "2008-02-07"),
        ("'03:04:05'", "TIME", "03:04:05"),
        ("'03:04:05'", "LOCAL_TIME", "03:04:05"),
        ("'2009-01-02T01:02:03Z'", "INSTANT", "2009-01-02T01:02:03Z"),
        ("'2009-01-02T01:02:03Z'", "DATETIME", "2009-01-02T01:02:03Z"),
        ("'2009-01-02T01:02:03Z'", "TIMESTAMP", "2009-01-02T01:02:03Z"),
        ("'2009-01-02T01:02:03'", "LOCAL_DATE_TIME", "2009-01-02T01:02:03"),
        ("'newValue'.bytes", "BYTES", b"newValue"),
    ],
)
async def test_whole_value_typed_ComputeStepTest_testPrimitiveSchemaTypes(
    expression: str, kind: str, expected: Any
) -> None:
    out = await compute(Record("", key="test-key"), field("value", expression, kind))
    assert out.value == expected
    assert type(out.value) is type(expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # ComputeStepTest.primitiveInferredSchemaTypesProvider (reference §18.2 T4).
        ("'newValue'", "newValue"),
        ("42", 42),
        ("42.0", 42.0),
        ("true", True),
        ("'newValue'.bytes", b"newValue"),
        ("fn:timestampAdd('2017-01-02T00:01:02Z', 1, 'days')", "2017-01-03T00:01:02Z"),
    ],
)
async def test_whole_value_inferred_ComputeStepTest_testPrimitiveInferredSchemaTypes(
    expression: str, expected: Any
) -> None:
    out = await compute(Record(""), field("value", expression))
    assert out.value == expected
    assert isinstance(out.value, type(expected))


@pytest.mark.parametrize(
    ("given", "expression", "expected"),
    [
        # Reference §6.1 (ran): a whole value computed from the record.
        ('{"name":"Jane"}', "value.name", "Jane"),
        ('{"name":"Jane"}', "fn:toJson(value)", '{"name":"Jane"}'),
        ("plain", "value += '!'", "plain!"),
        ("x", "'replaced'", "replaced"),
        (b"x", "'replaced'", "replaced"),
    ],
)
async def test_whole_value_from_the_record(given: Any, expression: str, expected: Any) -> None:
    out = await compute(Record(given), field("value", expression))
    assert out.value == expected


async def test_key_and_value_replaced_ComputeStepTest_testKeyValuePrimitivesModified() -> None:
    out = await compute(
        Record("42", key="key"),
        field("key", "88", "INT32"),
        field("value", "'newValue'", "STRING"),
    )
    assert (out.key, out.value) == (88, "newValue")


async def test_whole_key_is_skipped_without_a_key() -> None:
    out = await compute(Record("v"), field("key", "'k'"))
    assert (out.key, out.value) == (None, "v")


async def test_whole_value_is_skipped_on_a_map_value() -> None:
    # A value that arrived as a map (not as JSON text) has no primitive schema in LangStream.
    out = await compute(Record({"a": 1}), field("value", "'x'"), field("value.b", "2"))
    assert out.value == {"a": 1, "b": 2}


# -- the group order -----------------------------------------------------------------------------


async def test_T6_properties_see_value_fields_of_the_same_step() -> None:
    # Reference §18.2 T6 (ran): value.* is applied before properties.*, whatever the order.
    out = await compute(Record('{"a":0}'), field("properties.p", "value.x"), field("value.x", "1"))
    assert out.value == '{"a":0,"x":1}'
    assert out.headers["p"] == "1"


async def test_T7_value_fields_see_the_replaced_key() -> None:
    # Reference §18.2 T7 (ran): the whole key (group 1) is replaced before value.* (group 3).
    out = await compute(
        Record('{"a":0}', key="abc"),
        field("value.k", "key"),
        field("key", "fn:uppercase(key)"),
    )
    assert (out.key, out.value) == ("ABC", '{"a":0,"k":"ABC"}')


async def test_the_whole_value_sees_the_replaced_key() -> None:
    # ComputeStep.computePrimitiveField: the key is evaluated and set before the value.
    out = await compute(
        Record("v", key="k"), field("value", "key += '-' += value"), field("key", "'K'")
    )
    assert (out.key, out.value) == ("K", "K-v")


async def test_value_fields_see_the_state_before_their_group() -> None:
    # ComputeStep.getEvaluatedFields: every value.* expression, then every write.
    out = await compute(Record('{"x":0}'), field("value.x", "5"), field("value.y", "value.x"))
    assert out.value == '{"x":5,"y":0}'


async def test_key_fields_see_the_state_before_their_group_and_value_fields_see_them() -> None:
    out = await compute(
        Record('{"v":1}', key='{"id":1}'),
        field("value.fromKey", "key.id"),
        field("key.id", "2"),
        field("key.old", "key.id"),
    )
    assert out.key == '{"id":2,"old":1}'
    assert out.value == '{"v":1,"fromKey":2}'


async def test_properties_are_written_one_after_the_other() -> None:
    # ComputeStep.computeHeaderPropertiesFields: each property evaluated then set, in turn.
    out = await compute(
        Record("v", headers={"keep": "k"}),
        field("properties.a", "'x'"),
        field("properties.b", "properties.a += '!'"),
        field("properties.keep2", "properties.keep"),
    )
    assert dict(out.headers) == {"keep": "k", "a": "x", "b": "x!", "keep2": "k"}


async def test_headers_are_text_and_see_destination_and_message_key() -> None:
    out = await compute(
        Record('{"age":42,"f":1.5,"o":{"c":"d"}}', key="k"),
        field("properties.q", "value.age", "INT32"),  # headers are always STRING
        field("properties.f", "value.f"),
        field("properties.o", "value.o"),
        field("properties.t", "destinationTopic += '/' += messageKey"),
        field("messageKey", "'mk'"),
        field("destinationTopic", "fn:concat('to-', messageKey)"),
    )
    assert dict(out.headers) == {"q": "42", "f": "1.5", "o": "{c=d}", "t": "to-mk/mk"}


# -- destinationTopic and messageKey (Sluice honours them) ---------------------------------------


async def test_destination_topic_routes_and_message_key_keys_the_record() -> None:
    out = await compute(
        Record('{"lang":"fr"}', key="k"),
        field("destinationTopic", "fn:concat('questions-', value.lang)"),
        field("messageKey", "fn:uppercase(key)"),
    )
    assert (out.destination, out.key, out.value) == ("questions-fr", "K", '{"lang":"fr"}')


async def test_key_reads_message_key_when_the_record_has_none() -> None:
    out = await compute(
        Record('{"a":1}'), field("messageKey", "'mk'"), field("properties.k", "key")
    )
    assert (out.key, out.headers["k"]) == ("mk", "mk")


# -- errors: each raises, so the agent's errors policy applies ----------------------------------


@pytest.mark.parametrize(
    ("given", "fields", "error", "message"),
    [
        # ComputeStepTest.testNullInferredSchemaType (reference §18.2 T5).
        ("input", [field("value", "null")], ComputeTypeError, "cannot infer the type of null"),
        # ComputeStep.getFieldType: "Cannot get field type from null value".
        ('{"a":1}', [field("value.x", "value.missing")], ComputeTypeError, "type of null"),
        # ComputeStep.getPrimitiveSchema: "Got an unsupported type" for a map or a list.
        ("x", [field("value", "fn:fromJson('{}')")], ComputeTypeError, "cannot be a map"),
        ("x", [field("value", "fn:split('a,b', ',')")], ComputeTypeError, "cannot be a list"),
        # A record without a value (LangStream: NullPointerException).
        (None, [field("value", "'x'")], ComputeError, "the record has no value"),
        # validateAndGetString: "Invalid compute field type ... Expected Type: String".
        ("x", [field("destinationTopic", "null")], ComputeError, "gave null, a text is needed"),
        ("x", [field("messageKey", "properties.none")], ComputeError, "a text is needed"),
        ("x", [field("properties.p", "null")], ComputeError, "a text is needed"),
        # JstlTypeConverter: texts that are no number, date or time.
        ('{"a":1}', [field("value.n", "'abc'", "INT32")], ComputeTypeError, "to INT32"),
        ('{"a":1}', [field("value.d", "'soon'", "DATE")], ComputeTypeError, "to DATE"),
        ('{"a":1}', [field("value.d", "fn:fromJson('{}')", "INT64")], ComputeTypeError, "a map"),
        ('{"a":1}', [field("value.b", "1", "BOOLEAN")], ComputeTypeError, "to BOOLEAN"),
        # Evaluation errors of the expression language.
        ('{"a":1}', [field("value.x", "fn:toInt('x') + fn:uppercase()")], None, None),
        ("text", [field("value", "value.x")], ExpressionError, "value.x"),
        ('{"a":1}', [field("value.x", "value.a / 'z'")], ExpressionError, "value.a / 'z'"),
    ],
)
async def test_errors_raise(
    given: Any, fields: list[dict[str, Any]], error: type[Exception] | None, message: str | None
) -> None:
    if error is None:  # fn:uppercase() takes one argument: refused when the agent starts
        with pytest.raises(BadConfiguration, match="fn:uppercase takes 1 arguments"):
            await run("compute", {"fields": fields}, Record(given))
        return
    with pytest.raises(error, match=message):
        await run("compute", {"fields": fields}, Record(given))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([field("value", "1"), field("value", "2")], "duplicate compute field name 'value'"),
        ([field("value", "'2020-01-01'", "DATE")], "the whole value cannot have the type DATE"),
        ([field("key", "'2020-01-01'", "DATE")], "the whole key cannot have the type DATE"),
        ([field("value", "1", "DECIMAL")], "the whole value cannot have the type DECIMAL"),
        ([field("value.x", "fn:emptyList()", "ARRAY")], "ARRAY is only inferred"),
        ([field("value.x", "fn:emptyMap()", "MAP")], "MAP is only inferred"),
        ([field("header.x", "1")], "invalid compute field name 'header.x'"),
        ([field("value.", "1")], "invalid compute field name 'value.'"),
        ([field("value.a.b", "1")], "a value field name is letters, digits and _"),
        ([field("key.first-name", "1")], "a key field name is letters"),
        ([field("value.x", "1", "LONG")], "must be one of STRING"),
        ([field("value.x", "value.a +")], r"at column \d+ of the expression"),
        ([{"name": "value.x"}], "expression: is required by compute"),
    ],
)
async def test_bad_configuration_fails_init(fields: list[dict[str, Any]], message: str) -> None:
    agent = BUILTIN_AGENTS["compute"]()
    with pytest.raises(BadConfiguration, match=message):
        await agent.init({"fields": fields})


async def test_property_names_may_hold_dots_and_dashes() -> None:
    out = await compute(Record("v"), field("properties.a.b-c", "'x'"))
    assert out.headers["a.b-c"] == "x"


# -- when and composable -------------------------------------------------------------------------


async def test_compute_runs_only_when_its_condition_holds() -> None:
    config = {"when": "properties.lang == 'en'", "fields": [field("value.x", "1")]}
    [yes] = await run("compute", config, Record('{ "a" : 1 }', headers={"lang": "en"}))
    [no] = await run("compute", config, Record('{ "a" : 1 }', headers={"lang": "fr"}))
    assert (yes.value, no.value) == ('{"a":1,"x":1}', '{"a":1}')


# -- drop ----------------------------------------------------------------------------------------


async def test_drop_without_when_drops_every_record() -> None:
    assert await run("drop", {}, Record("a", key="k", headers={"h": "1"})) == []
    assert await run("drop", {"composable": False}, Record(None)) == []


async def test_drop_with_when_drops_the_records_it_selects() -> None:
    config = {"when": "properties.language != 'en'"}
    assert await run("drop", config, Record("bonjour", headers={"language": "fr"})) == []
    [kept] = await run("drop", config, Record('{ "t" : "hi" }', headers={"language": "en"}))
    assert (kept.value, dict(kept.headers)) == ('{"t":"hi"}', {"language": "en"})


async def test_drop_when_on_a_missing_property_keeps_the_record() -> None:
    # An unresolvable name in a when makes it false (JstlPredicate): the record is kept.
    [kept] = await run("drop", {"when": "value.x == 1"}, Record("plain text"))
    assert kept.value == "plain text"


async def test_drop_refuses_unknown_types_of_when() -> None:
    with pytest.raises(BadConfiguration, match=r"when: .* at column"):
        await BUILTIN_AGENTS["drop"]().init({"when": "value.a =="})


# -- configuration errors through sluice validate ------------------------------------------------

TOPICS = """topics:
  - name: questions
    creation-mode: create-if-not-exists
  - name: answers
    creation-mode: create-if-not-exists
pipeline:
"""


def sluice_validate(tmp_path: Path, pipeline: str) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / "pipeline.yaml").write_text(TOPICS + pipeline)
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "validate", str(app)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sluice_validate_reports_compute_errors_with_file_and_line(tmp_path: Path) -> None:
    result = sluice_validate(
        tmp_path,
        """  - type: compute
    input: questions
    output: answers
    configuration:
      fields:
        - name: value.a
          expression: "1"
        - name: value.a
          expression: "2"
        - name: value
          expression: "'2020-01-01'"
          type: DATE
        - name: value.list
          expression: "fn:emptyList()"
          type: ARRAY
        - name: headers.x
          expression: "'x'"
  - type: compute
    input: questions
    output: answers
    configuration:
      fields:
        - name: value.y
          expression: "value.a + "
  - type: drop
    input: answers
    configuration:
      when: "properties.lang = 'en'"
""",
    )
    assert result.returncode == 1, result.stdout
    assert [line.strip() for line in result.stderr.splitlines()[1:]] == [
        "agent #1 (pipeline.yaml:14) configuration.fields[1].name: duplicate compute field name "
        "'value.a'",
        "agent #1 (pipeline.yaml:18) configuration.fields[2].type: the whole value cannot have "
        "the type DATE: use TIMESTAMP or INSTANT, then a cast agent to DATE",
        "agent #1 (pipeline.yaml:21) configuration.fields[3].type: ARRAY is only inferred from a "
        "result, it cannot be given as a type",
        "agent #1 (pipeline.yaml:22) configuration.fields[4].name: invalid compute field name "
        "'headers.x': it should be one of value, key, destinationTopic, messageKey, or start "
        "with value., key. or properties.",
        "agent #2 (pipeline.yaml:30) configuration.fields[0].expression: the expression ends too "
        "early at column 11 of the expression 'value.a + '",
        "agent #3 (pipeline.yaml:34) configuration.when: assignment is not supported (compare "
        "with == or eq) at column 17 of the expression \"properties.lang = 'en'\"",
    ]


def test_valid_compute_and_drop_validate_and_fuse(tmp_path: Path) -> None:
    app = tmp_path / "ok"
    app.mkdir()
    (app / "pipeline.yaml").write_text(
        TOPICS
        + """  - type: compute
    input: questions
    configuration:
      fields:
        - {name: value.n, expression: "fn:length(value.text)", type: INT32}
        - {name: properties.lang, expression: "'en'", optional: false}
  - type: drop
    output: answers
    configuration:
      when: "value.n > 100"
"""
    )
    application = load_application(app)
    assert [a.type for a in application.agents] == ["compute", "drop"]
    result = subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "validate", str(app)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "2 agent(s) in 1 executor(s)" in result.stdout


def test_load_application_refuses_a_bad_compute(tmp_path: Path) -> None:
    app = tmp_path / "bad"
    app.mkdir()
    (app / "pipeline.yaml").write_text(
        TOPICS + "  - type: compute\n    input: questions\n    configuration: {fields: []}\n"
        "  - type: compute\n    input: questions\n    configuration: {}\n"
    )
    with pytest.raises(InvalidApplication) as caught:
        load_application(app)
    messages = [p.message for p in caught.value.problems]
    assert "is required by compute" in messages


# -- a user's pipeline through sluice.testing ----------------------------------------------------


class Greet(Processor):
    """A user's processor: a greeting in the record's language."""

    def process(self, record: Record) -> Record:
        body = json.loads(record.value)
        return record.with_value(f"{body['greeting']}, {body['name']}!")


async def test_compute_drop_and_a_python_processor_through_the_harness() -> None:
    compute_config = {
        "fields": [
            field("value.greeting", "properties.lang == 'fr' ? 'Bonjour' : 'Hello'"),
            field("properties.length", "fn:length(value.name)"),
        ]
    }
    drop_config = {"when": "fn:toInt(properties.length) > 5"}
    given = [
        {"value": '{"name": "Ann"}', "headers": {"lang": "fr"}},
        {"value": '{"name": "Bartholomew"}', "headers": {"lang": "en"}},
        {"value": '{"name": "Bo"}', "key": "k3", "headers": {"lang": "en"}},
    ]
    async with (
        AgentHarness("compute", config=compute_config) as first,
        AgentHarness("drop", config=drop_config) as second,
        AgentHarness(Greet()) as third,
    ):
        computed = await first.send(*given)
        kept = await second.send(*computed.outputs)
        greeted = await third.send(*kept.outputs)
    assert computed.values[0] == '{"name":"Ann","greeting":"Bonjour"}'
    assert greeted.values == ["Bonjour, Ann!", "Hello, Bo!"]
    assert [(r.key, r.headers["length"], r.headers["lang"]) for r in greeted.outputs] == [
        (None, "3", "fr"),
        ("k3", "2", "en"),
    ]
