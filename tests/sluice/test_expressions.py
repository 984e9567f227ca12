"""The expression language against LangStream's own evaluator tests.

Each case names the LangStream test (class.method) whose expected value it reproduces, or the
row of the cheat-sheet that was produced by running LangStream's evaluator. Contexts mirror the
upstream fixtures: a primitive record (value, key) or a nested JSON record with headers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sluice.expressions import (
    EvaluationContext,
    ExpressionError,
    ExpressionSyntaxError,
    compile_expression,
    compile_predicate,
)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


BYTES = EvaluationContext(value=b"Test-Message ", key="")
INSTANT = EvaluationContext(value=instant("2017-01-02T00:01:02Z"), key="")
UNIT_BYTES = EvaluationContext(value=b"millis", key="")
NONE = EvaluationContext()
MILLIS_2017 = 1483315262000  # 2017-01-02T00:01:02Z

# JstlEvaluatorTest.functionExpressionProvider (the context is the upstream one named first).
EVALUATOR_FUNCTIONS: list[tuple[str, EvaluationContext, Any]] = [
    ("fn:uppercase('test')", BYTES, "TEST"),
    ("fn:uppercase(value) == 'TEST-MESSAGE '", BYTES, True),
    ("fn:uppercase(null)", BYTES, None),
    ("fn:lowercase('TEST')", BYTES, "test"),
    ("fn:lowercase(value) == 'test-message '", BYTES, True),
    ("fn:lowercase(null)", BYTES, None),
    ("fn:coalesce(null, 'another-value')", BYTES, "another-value"),
    ("fn:coalesce('value', 'another-value')", BYTES, "value"),
    ("fn:coalesce(fn:str(value), 'another-value')", BYTES, "Test-Message "),
    ("fn:contains(value, 'Test')", BYTES, True),
    ("fn:contains(value, 'random')", BYTES, False),
    ("fn:contains(null, 'random')", BYTES, False),
    ("fn:contains(value, null)", BYTES, False),
    ("fn:trim('    trimmed      ')", BYTES, "trimmed"),
    ("fn:trim(value)", BYTES, "Test-Message"),
    ("fn:trim(null)", BYTES, None),
    ("fn:concat(value, 'suffix')", BYTES, "Test-Message suffix"),
    ("fn:concat(value, null)", BYTES, "Test-Message "),
    ("fn:concat(null, 'suffix')", BYTES, "suffix"),
    ("fn:concat('prefix-', value)", BYTES, "prefix-Test-Message "),
    ("fn:replace(value, '.*-', '')", BYTES, "Message "),
    ("fn:replace('Test-Message test', value, '')", BYTES, "test"),
    ("fn:replace('Something test', '.* ', value)", BYTES, "Test-Message test"),
    ("fn:replace(null, '.* ', '')", BYTES, None),
    ("fn:replace('test', null, '')", BYTES, "test"),
    ("fn:replace('test', '.*', null)", BYTES, "test"),
    *[
        (f"fn:timestampAdd({start}, {delta}, '{unit}')", BYTES, instant(expected))
        for start in ("'2017-01-02T00:01:02Z'", str(MILLIS_2017))
        for delta, unit, expected in [
            (1, "years", "2018-01-02T00:01:02Z"),
            (-1, "months", "2016-12-02T00:01:02Z"),
            (1, "days", "2017-01-03T00:01:02Z"),
            (-1, "hours", "2017-01-01T23:01:02Z"),
            (1, "minutes", "2017-01-02T00:02:02Z"),
            (-1, "seconds", "2017-01-02T00:01:01Z"),
            (1, "millis", "2017-01-02T00:01:02.001Z"),
            (1000000, "nanos", "2017-01-02T00:01:02.001Z"),
        ]
    ],
    ("fn:timestampAdd(value, '1', 'millis')", INSTANT, instant("2017-01-02T00:01:02.001Z")),
    (
        "fn:timestampAdd('2017-01-02T00:01:02Z', 1, value)",
        UNIT_BYTES,
        instant("2017-01-02T00:01:02.001Z"),
    ),
]


@pytest.mark.parametrize(
    ("expression", "context", "expected"),
    EVALUATOR_FUNCTIONS,
    ids=[f"JstlEvaluatorTest.testFunctions[{e}]" for e, _, _ in EVALUATOR_FUNCTIONS],
)
def test_evaluator_functions(expression: str, context: EvaluationContext, expected: Any) -> None:
    assert compile_expression(expression).evaluate(context) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "value.contains('test')",
        "value.toUpperCase() == 'TEST-MESSAGE'",
        "value.toUpperCase().toLowerCase() == 'test-message'",
        "value.substring(0, 4) == 'test'",
        "value.contains('random')",
    ],
)
def test_method_invocations_disabled(expression: str) -> None:
    """JstlEvaluatorTest.testMethodInvocationsDisabled: refused (here already when compiling)."""
    with pytest.raises(ExpressionSyntaxError, match="method calls are not supported"):
        compile_expression(expression)


def test_primitive_value_and_length() -> None:
    """JstlEvaluatorTest.testPrimitiveValue and testLength."""
    context = EvaluationContext(value="test-message", key="")
    assert compile_expression("value").evaluate(context) == "test-message"
    assert compile_expression("fn:length(value)").evaluate(context) == 12


def test_now_and_timestamp_add_now() -> None:
    """JstlEvaluatorTest.testNowFunction and testTimestampAddFunctionsNow (a fixed clock)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    context = EvaluationContext(
        value="test-message", clock=lambda: epoch + timedelta(milliseconds=123)
    )
    assert compile_expression("fn:toLong(fn:now())").evaluate(context) == 123
    context = EvaluationContext(clock=lambda: epoch + timedelta(milliseconds=5000))
    moved = compile_expression("fn:toLong(fn:timestampAdd(fn:now(), -3333, 'seconds'))")
    assert moved.evaluate(context) == 5000 - 3333 * 1000


# JstlFunctionsTest: the functions called directly upstream, called from an expression here.
FUNCTIONS: list[tuple[str, str, Any]] = [
    ("testUpperCase", "fn:uppercase('uppercase')", "UPPERCASE"),
    ("testUpperCaseNull", "fn:uppercase(null)", None),
    ("testLowerCase", "fn:lowercase('LOWERCASE')", "lowercase"),
    ("testLowerCaseInteger", "fn:uppercase(10)", "10"),
    ("testContains", "fn:contains('full text', 'l t')", True),
    ("testContains", "fn:contains('full text', 'full')", True),
    ("testContains", "fn:contains('full text', 'text')", True),
    ("testContains", "fn:contains('full text', 'lt')", False),
    ("testContains", "fn:contains('full text', 'fll')", False),
    ("testContains", "fn:contains('full text', 'txt')", False),
    ("testContainsInteger", "fn:contains(123, '2')", True),
    ("testContainsInteger", "fn:contains('123', 3)", True),
    ("testContainsInteger", "fn:contains(123, 3)", True),
    ("testContainsInteger", "fn:contains('123', '3')", True),
    ("testContainsInteger", "fn:contains(123, '4')", False),
    ("testContainsInteger", "fn:contains('123', 4)", False),
    ("testContainsInteger", "fn:contains(123, 4)", False),
    ("testContainsInteger", "fn:contains('123', '4')", False),
    ("testContainsNull", "fn:contains('null', null)", False),
    ("testContainsNull", "fn:contains(null, 'null')", False),
    ("testContainsNull", "fn:contains(null, null)", False),
    ("testConcat", "fn:concat('full ', 'text')", "full text"),
    ("testConcatInteger", "fn:concat(1, 2)", "12"),
    ("testConcatInteger", "fn:concat('1', 2)", "12"),
    ("testConcatInteger", "fn:concat(1, '2')", "12"),
    ("testConcatNull", "fn:concat(null, 'text')", "text"),
    ("testConcatNull", "fn:concat('full ', null)", "full "),
    ("testConcatNull", "fn:concat(null, null)", ""),
    (
        "testAddDateUnitConversion",
        "fn:timestampAdd('2022-10-02T01:02:03Z', 1, 'hours'.bytes)",
        instant("2022-10-02T02:02:03Z"),
    ),
    (
        "testToBigDecimal",
        "fn:decimalFromUnscaled('1234567890123456789012345678901234567890', '38')",
        Decimal("12.34567890123456789012345678901234567890"),
    ),
    ("testToBigDecimal", "fn:decimalFromUnscaled(12345678, 4)", Decimal("1234.5678")),
    (
        "testToBigDecimalWithoutScale",
        "fn:decimalFromNumber('12.34567890123456789012345678901234567890')",
        Decimal("12.345678901234567"),
    ),
    ("testToBigDecimalWithoutScale", "fn:decimalFromNumber(1234567)", Decimal("1234567.0")),
    ("testCast", "fn:toDouble('1.2')", 1.2),
    ("testCast", "fn:toDouble(null)", None),
    ("testCast", "fn:toInt('1.2')", 1),
    ("testCast", "fn:toInt(null)", None),
    ("testSplit", "fn:split('1,2', ',')", ["1", "2"]),
    ("testSplit", "fn:split('', ',')", []),
    ("testSplit", "fn:split(null, ',')", None),
    ("testUnpack", "fn:unpack('1,2', 'field1,field2')", {"field1": "1", "field2": "2"}),
    ("testUnpack", "fn:unpack('', 'field1,field2')", {"field1": None, "field2": None}),
    ("testUnpack", "fn:unpack(null, 'field1,field2')", None),
    (
        "testUnpack",
        "fn:unpack('1,2', 'field1,field2,field3')",
        {"field1": "1", "field2": "2", "field3": None},
    ),
    ("testUnpack", "fn:unpack('1', 'field1,field2')", {"field1": "1", "field2": None}),
    (
        "testUnpack",
        "fn:unpack(fn:split('1:2', ':'), 'field1,field2')",
        {"field1": "1", "field2": "2"},
    ),
    (
        "testUnpack",
        "fn:unpack(fn:toListOfFloat([1, 2]), 'field1,field2')",
        {"field1": 1.0, "field2": 2.0},
    ),
    ("testToJson", "fn:toJson({'field1': 1})", '{"field1":1}'),
    ("testToJson", "fn:toJson(null)", "null"),
    ("testToJson", "fn:toJson('')", '""'),
    ("testToJson", "fn:toJson([1, 2, 3])", "[1,2,3]"),
    ("testFromJson", "fn:fromJson('{\"field1\":1}')", {"field1": 1}),
    ("testFromJson", "fn:fromJson(null)", None),
    ("testFromJson", "fn:fromJson('null')", None),
    ("testFromJson", "fn:fromJson('')", None),
    ("testFromJson", "fn:fromJson('\"\"')", ""),
    ("testFromJson", "fn:fromJson('[1,2,3]')", [1, 2, 3]),
]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [(e, x) for _, e, x in FUNCTIONS],
    ids=[f"JstlFunctionsTest.{m}[{e}]" for m, e, _ in FUNCTIONS],
)
def test_functions(expression: str, expected: Any) -> None:
    assert compile_expression(expression).evaluate(NONE) == expected


def test_big_decimal_from_bytes() -> None:
    """JstlFunctionsTest.testToBigDecimal: the unscaled value as two's-complement bytes."""
    unscaled = 1234567890123456789012345678901234567890
    data = unscaled.to_bytes(17, "big", signed=True)
    context = EvaluationContext(value=data)
    result = compile_expression("fn:decimalFromUnscaled(value, 38)").evaluate(context)
    assert result == Decimal("12.34567890123456789012345678901234567890")


START = "2022-10-02T01:02:03Z"
SHIFTS = [
    (0, "years", START),
    (5, "years", "2027-10-02T01:02:03Z"),
    (-3, "years", "2019-10-02T01:02:03Z"),
    (0, "months", START),
    (5, "months", "2023-03-02T01:02:03Z"),
    (-3, "months", "2022-07-02T01:02:03Z"),
    (0, "days", START),
    (5, "days", "2022-10-07T01:02:03Z"),
    (-3, "days", "2022-09-29T01:02:03Z"),
    (0, "hours", START),
    (5, "hours", "2022-10-02T06:02:03Z"),
    (-3, "hours", "2022-10-01T22:02:03Z"),
    (0, "minutes", START),
    (5, "minutes", "2022-10-02T01:07:03Z"),
    (-3, "minutes", "2022-10-02T00:59:03Z"),
    (0, "seconds", START),
    (5, "seconds", "2022-10-02T01:02:08Z"),
    (-3, "seconds", "2022-10-02T01:02:00Z"),
    (0, "millis", START),
    (5, "millis", "2022-10-02T01:02:03.005Z"),
    (-3, "millis", "2022-10-02T01:02:02.997Z"),
    (0, "nanos", START),
    (5_000_000, "nanos", "2022-10-02T01:02:03.005Z"),
    (-3_000_000, "nanos", "2022-10-02T01:02:02.997Z"),
]
TIMESTAMPS = [
    (f"JstlFunctionsTest.{method}[{delta} {unit}]", start, delta, unit, instant(expected) - offset)
    for method, start, offset in [
        ("testAddDateMillis", "1664672523000", timedelta(0)),
        ("testAddDateUTC", f"'{START}'", timedelta(0)),
        ("testAddDateNonUTC", "'2022-10-02T01:02:03+02:00'", timedelta(hours=2)),
    ]
    for delta, unit, expected in SHIFTS
]


@pytest.mark.parametrize(
    ("start", "delta", "unit", "expected"),
    [case[1:] for case in TIMESTAMPS],
    ids=[case[0] for case in TIMESTAMPS],
)
def test_timestamp_add(start: str, delta: int, unit: str, expected: datetime) -> None:
    result = compile_expression(f"fn:timestampAdd({start}, {delta}, '{unit}')").evaluate(NONE)
    assert result == expected


def test_timestamp_add_invalid_unit() -> None:
    """JstlFunctionsTest.testAddDateInvalidUnit: upstream's message, inside ours."""
    with pytest.raises(ExpressionError) as caught:
        compile_expression("fn:timestampAdd(0, 0, 'lightyear')").evaluate(NONE)
    assert (
        "Invalid unit: lightyear. Should be one of "
        "[years, months, days, hours, minutes, seconds, millis]"
    ) in str(caught.value)
    assert "fn:timestampAdd(0, 0, 'lightyear')" in str(caught.value)


def test_timestamp_add_rejects_what_is_not_an_instant() -> None:
    """JstlFunctionsTest.testInvalidAddDate: a value that is no instant fails."""
    with pytest.raises(ExpressionError, match="cannot convert true"):
        compile_expression("fn:dateadd(true, 0, 'days')").evaluate(NONE)


QUERY_RESULT = [
    {"name": "product1", "price": "1.2", "similarity": "0.9"},
    {"name": "product2", "price": "1.7", "similarity": "0.1"},
]
FILTERS = [
    ("fn:toDouble(record.similarity) >= 0.5", ["product1"]),
    ("fn:toDouble(record.similarity) < 0.5", ["product2"]),
    ("false", []),
    ("true", ["product1", "product2"]),
]


@pytest.mark.parametrize(("condition", "names"), FILTERS, ids=[c for c, _ in FILTERS])
def test_filter_query_results(condition: str, names: list[str]) -> None:
    """JstlFunctionsTest.testFilterQueryResults."""
    context = EvaluationContext(value={"rows": QUERY_RESULT})
    kept = compile_expression(f"fn:filter(value.rows, '{condition}')").evaluate(context)
    assert [row["name"] for row in kept] == names


@pytest.mark.parametrize(
    ("condition", "names"),
    [(c.replace("0.5", "value.threshold"), n) for c, n in FILTERS],
    ids=[c for c, _ in FILTERS],
)
def test_filter_query_results_with_context(condition: str, names: list[str]) -> None:
    """JstlFunctionsTest.testFilterQueryResultsWithContext: the record stays visible."""
    context = EvaluationContext(value={"threshold": "0.5", "rows": QUERY_RESULT})
    kept = compile_expression(f"fn:filter(value.rows, '{condition}')").evaluate(context)
    assert [row["name"] for row in kept] == names


# JstlPredicateTest
STRING_RECORD = EvaluationContext(value="test-message", key="header-key", message_key="header-key")
INT_RECORD = EvaluationContext(value=33, key="header-key")
KEY_VALUE = EvaluationContext(value=42, key="key")
PRIMITIVE_PREDICATES = [
    ("primitiveKeyValuePredicates", "key=='key' && value==42", KEY_VALUE, True),
    ("primitiveKeyValuePredicates", "key=='key' && value<42", KEY_VALUE, False),
    ("primitivePredicates", "value=='test-message'", STRING_RECORD, True),
    ("primitivePredicates", "messageKey=='header-key'", STRING_RECORD, True),
    ("primitivePredicates", "key=='header-key'", STRING_RECORD, True),
    ("primitivePredicates", "value==33", INT_RECORD, True),
    ("primitivePredicates", "value eq 33", INT_RECORD, True),
    ("primitivePredicates", "value eq 32 + 1", INT_RECORD, True),
    ("primitivePredicates", "value eq 34 - 1", INT_RECORD, True),
    ("primitivePredicates", "value eq 66 / 2", INT_RECORD, True),
    ("primitivePredicates", "value eq 66 div 2", INT_RECORD, True),
    ("primitivePredicates", "value % 10 == 3", INT_RECORD, True),
    ("primitivePredicates", "value mod 10 == 3", INT_RECORD, True),
    ("primitivePredicates", "value>32", INT_RECORD, True),
    ("primitivePredicates", "value gt 32", INT_RECORD, True),
    ("primitivePredicates", "value<=33 && key=='header-key'", INT_RECORD, True),
    ("primitivePredicates", "key=='key' && value==42", KEY_VALUE, True),
    ("primitivePredicates", "key=='key' and value==42", KEY_VALUE, True),
    ("primitivePredicates", "key=='key1' || value==42", KEY_VALUE, True),
    ("primitivePredicates", "key=='key1' or value==42", KEY_VALUE, True),
    ("primitivePredicates", "value=='test-message-'", STRING_RECORD, False),
    ("primitivePredicates", "key!='header-key'", STRING_RECORD, False),
    ("primitivePredicates", "key ne 'header-key'", STRING_RECORD, False),
    ("primitivePredicates", "value==34", INT_RECORD, False),
    ("primitivePredicates", "value>33", INT_RECORD, False),
    ("primitivePredicates", "value<=20 && key=='test-key'", INT_RECORD, False),
    ("primitivePredicates", "value le 20 && key=='test-key'", INT_RECORD, False),
]


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [case[1:] for case in PRIMITIVE_PREDICATES],
    ids=[f"JstlPredicateTest.{m}[{c}]" for m, c, _, _ in PRIMITIVE_PREDICATES],
)
def test_primitive_predicates(condition: str, context: EvaluationContext, expected: bool) -> None:
    assert compile_predicate(condition).test(context) is expected


def _nested(prefix: str) -> dict[str, Any]:
    # The JSON shape of upstream's Utils.createNestedAvroRecord(2), as the predicates read it.
    return {
        "level1String": "level1_1",
        "level1Record": {
            "level2String": "level2_1",
            "level2Integer": 9,
            "level2Double": 8.8,
            "level2Array": ["level2_1", "level2_2"],
        },
    }


NESTED = EvaluationContext(
    key=_nested("key"),
    value=_nested("value"),
    message_key="key1",
    topic_name="topic-1",
    destination_topic="dest-topic-1",
    properties={"p1": "v1", "p2": "v2"},
)
KEY_VALUE_PREDICATES = [
    ("key.level1String == 'level1_1'", True),
    ("key.level1Record.level2String == 'level2_1'", True),
    ("key.level1Record.level2Integer == 9", True),
    ("key.level1Record.level2Double == 8.8", True),
    ("key.level1Record.level2Array[0] == 'level2_1'", True),
    ("value.level1Record.level2Integer > 8", True),
    ("value.level1Record.level2Double < 8.9", True),
    ("value.level1Record.level2Array[0] == 'level2_1'", True),
    ("messageKey == 'key1'", True),
    ("destinationTopic == 'dest-topic-1'", True),
    ("topicName == 'topic-1'", True),
    ("properties.p1 == 'v1'", True),
    ("properties.p2 == 'v2'", True),
    ("key.level1String == 'leVel1_1'", False),
    ("key.level1Record.random == 'level2_1'", False),
    ("key.level1Record.level2Integer != 9", False),
    ("key.level1Record.level2Double < 8.8", False),
    ("key.level1Record.level2Array[0] == 'non_existing_item'", False),
    ("key.randomKey == 'k1'", False),
    ("value.level1Record.level2Integer > 10", False),
    ("value.level1Record.level2Double < 0", False),
    ("value.randomValue < 0", False),
    ("messageKey == 'key2'", False),
    ("topicName != 'topic-1'", False),
    ("properties.p2 == 'v3'", False),
    ("randomHeader == 'h1'", False),
]


@pytest.mark.parametrize(
    ("condition", "expected"),
    KEY_VALUE_PREDICATES,
    ids=[f"JstlPredicateTest.keyValuePredicates[{c}]" for c, _ in KEY_VALUE_PREDICATES],
)
def test_key_value_predicates(condition: str, expected: bool) -> None:
    assert compile_predicate(condition).test(NESTED) is expected


def test_invalid_when() -> None:
    """JstlPredicateTest.testInvalidWhen: a stray backquote does not compile."""
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_predicate("`invalid")
    assert caught.value.column == 1
    assert "unexpected character '`'" in str(caught.value)


@pytest.mark.parametrize(
    "vector",
    [
        [0.1, 1 / 3, 1e-40, 3.4028235e38, 16777217.0, -0.0, 0.123456789, 1e39, -1e39],
        [0.1, "0.5", 2, 1e39],  # not all floats: converted one by one
    ],
)
def test_to_list_of_float_gives_each_32_bit_float_as_its_shortest_decimal(
    vector: list[Any],
) -> None:
    # As Java prints a float: 1/3 is 0.33333334, 2^24 + 1 is 2^24, past the largest float is
    # infinite.
    expected = {
        0.1: 0.1,
        1 / 3: 0.33333334,
        1e-40: 1e-40,
        3.4028235e38: 3.4028235e38,
        16777217.0: 16777216.0,
        0.123456789: 0.12345679,
        1e39: float("inf"),
        -1e39: float("-inf"),
        "0.5": 0.5,
        2: 2.0,
    }
    result = compile_expression("fn:toListOfFloat(value.v)").evaluate(
        EvaluationContext(value={"v": vector}, key="")
    )
    assert result == [0.0 if item == 0 else expected[item] for item in vector]
