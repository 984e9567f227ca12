"""The expression language's rules: the cheat-sheet and E-cases that were produced by running
LangStream's evaluator (§2.9 and §18.1 of our reference notes), EL's coercions, the differences
from LangStream we chose, and the safety limits (nothing outside the record is reachable)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest

from sluice.errors import SluiceError
from sluice.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_TEXT,
    EvaluationContext,
    ExpressionError,
    ExpressionSyntaxError,
    PropertyNotFound,
    compile_expression,
    compile_predicate,
)

SHEET = EvaluationContext(
    value={
        "a": 1,
        "b": "x",
        "s": "Hello World",
        "n": None,
        "arr": [1, 2, 3],
        "obj": {"c": "d"},
        "f": 1.5,
        "t": True,
        "str5": "5",
        "list": [{"x": 1}, {"x": 2}, None],
    },
    key="k1",
    properties={"p1": "v1"},
)

CHEAT_SHEET: list[tuple[str, Any]] = [
    ("value.a + 1", 2),
    ("value.a / 2", 0.5),
    ("value.str5 + 1", 6),
    ("value.b += '-' += value.a", "x-1"),
    ("value.arr[1]", 2),
    ("value.arr[5]", None),
    ("value['b']", "x"),
    ("value.obj.c", "d"),
    ("empty value.n", True),
    ("empty value.arr", False),
    ("value.a > 0 ? 'pos' : 'neg'", "pos"),
    ("key", "k1"),
    ("messageKey", None),
    ("properties.p1", "v1"),
    ("fn:toJson(value.obj)", '{"c":"d"}'),
    ("fn:str(value.obj)", "{c=d}"),
    ("fn:length(value.s)", 11),
    ("fn:filter(value.list, 'record.x > 1')", [{"x": 2}]),
    ("fn:mapPut(value.obj, 'e', 1)", {"c": "d", "e": 1}),
    ("fn:listToListOfStructs(value.arr, 'v')", [{"v": 1}, {"v": 2}, {"v": 3}]),
    ("fn:replace('a.b','.','-')", "---"),
    (
        "fn:timestampAdd('2017-01-02T00:01:02Z', 1, 'days')",
        datetime.fromisoformat("2017-01-03T00:01:02Z"),
    ),
    ("fn:dateadd('2017-01-02T00:01:02Z', 1, 'days')", 1483401662000),
]


@pytest.mark.parametrize(("expression", "expected"), CHEAT_SHEET, ids=[e for e, _ in CHEAT_SHEET])
def test_cheat_sheet(expression: str, expected: Any) -> None:
    """Reference §2.9 (ran against LangStream's evaluator)."""
    assert compile_expression(expression).evaluate(SHEET) == expected


NONE = EvaluationContext()
E_CASES: list[tuple[str, str, EvaluationContext, Any]] = [
    (
        "E1",
        "fn:concat(value.name, '-', value.age)",
        EvaluationContext(value={"name": "Jane", "age": 42}),
        "Jane-42",
    ),
    ("E2", "fn:split('1,2', ',')", NONE, ["1", "2"]),
    ("E7", "fn:toJson({'field1':1})", NONE, '{"field1":1}'),
    ("E8", "fn:replace(value, '.*-', '')", EvaluationContext(value="Test-Message "), "Message "),
    ("E10", "fn:contains(123, 3)", NONE, True),
    ("E10", "fn:contains('123', 4)", NONE, False),
    ("E10", "fn:contains(null, 'null')", NONE, False),
    (
        "E12",
        "fn:toInt(properties.text_num_chunks) == (fn:toInt(properties.chunk_id) + 1)",
        EvaluationContext(properties={"text_num_chunks": "3", "chunk_id": "2"}),
        True,
    ),
    ("E13", "'a' += 'b'", NONE, "ab"),
    ("E13", "1 += 2", NONE, "12"),
    ("E13", "null += 'z'", NONE, "nullz"),
    ("E13", "'z' += null", NONE, "znull"),
    ("E13", "7 / 2", NONE, 3.5),
    ("E13", "'5' + 1", NONE, 6),
    ("E14", "value.missing", EvaluationContext(value={"s": "x"}), None),
    # §2.3 and §2.7
    ("2.3", "'it\\'s' += \"say \\\"hi\\\"\" += 'a\\\\b'", NONE, 'it\'ssay "hi"a\\b'),
    ("2.3", "'\\d+'", NONE, "\\d+"),
    ("2.3", "value.arr['1']", SHEET, 2),
    ("2.3", "value.arr[1.7]", SHEET, 2),
    ("2.3", "value.arr[-1]", SHEET, None),
    ("2.3", "[1, 'a', null][1]", NONE, "a"),
    ("2.3", "{'a': 1, 'b': 'x'}.b", NONE, "x"),
    ("2.3", "1e3", NONE, 1000.0),
    ("2.5", "value.obj.missing.deeper", SHEET, None),
    ("2.5", "key.id", NONE, None),
    ("2.7", "3 / 0", NONE, math.inf),
    ("2.7", "-7 % 3", NONE, -1),
    ("2.7", "7.5 % 2", NONE, 1.5),
    ("2.7", "null + 1", NONE, 1),
    ("2.7", "'' + 1", NONE, 1),
    ("2.7", "'1.5' + 1", NONE, 2.5),
    ("2.7", "-value.a", SHEET, -1),
    ("2.7", "value.a == '1'", SHEET, True),
    ("2.7", "1 == 1.0", NONE, True),
    ("2.7", "'1' == 1", NONE, True),
    ("2.7", "'a' < 'b'", NONE, True),
    ("2.7", "null == null", NONE, True),
    ("2.7", "value.n == 0", SHEET, False),
    ("2.7", "value.n < 1", SHEET, False),
    ("2.7", "'TRUE' && true", NONE, True),
    ("2.7", "'yes' || false", NONE, False),
    ("2.7", "!null", NONE, True),
    ("2.7", "not value.t", SHEET, False),
    ("2.7", "empty 0", NONE, False),
    ("2.7", "empty ''", NONE, True),
    ("2.7", "empty value.obj", SHEET, False),
    ("2.7", "1.0 += ''", NONE, "1.0"),
    ("2.7", "fn:str(1.0E20)", NONE, "1.0E20"),
    ("2.7", "9223372036854775807 + 1", NONE, -9223372036854775808),
    ("2.6", "fn:str(null)", NONE, ""),
    ("2.6", "fn:str(value.arr)", SHEET, "[1, 2, 3]"),
    ("2.6", "fn:length(null)", NONE, 0),
    ("2.6", "fn:toInt(' 5 ')", NONE, 5),
    ("2.6", "fn:toInt('-1.7')", NONE, -1),
    ("2.6", "fn:toLong(fn:timestampAdd(0, 1, 'seconds'))", NONE, 1000),
    ("2.6", "fn:split('a.b', '.')", NONE, []),
    ("2.6", "fn:split('a1b22c', '\\d+')", NONE, ["a", "b", "c"]),
    ("2.6", "fn:split('a,b,,', ',')", NONE, ["a", "b"]),
    ("2.6", "fn:concat3('a', null, 1)", NONE, "a1"),
    ("2.6", "fn:replace('2024-05-01', '(\\d+)-(\\d+)-(\\d+)', '$3/$2/$1')", NONE, "01/05/2024"),
    ("2.6", "fn:listAdd(fn:emptyList(), 'x')", NONE, ["x"]),
    ("2.6", "fn:addAll(null, [1])", NONE, [1]),
    ("2.6", "fn:mapOf('a', 1, 'b', 2)", NONE, {"a": 1, "b": 2}),
    ("2.6", "fn:mapRemove(value.obj, 'c')", SHEET, {}),
    ("2.6", "fn:mapToListOfStructs(value.obj, 'c,z')", SHEET, [{"c": "d", "z": None}]),
    ("2.6", "fn:toListOfFloat([0.1, '2'])", NONE, [0.1, 2.0]),
    (
        "2.6",
        "fn:timestampAdd('2022-01-31', 1, 'months')",
        NONE,
        datetime.fromisoformat("2022-02-28T00:00:00Z"),
    ),
    (
        "2.6",
        "fn:str(fn:timestampAdd('2017-01-02T00:01:02Z', 1, 'days'))",
        NONE,
        "2017-01-03T00:01:02Z",
    ),
    ("2.6", "fn:random(1)", NONE, 0),
    ("2.6", "fn:length(fn:uuid())", NONE, 36),
    ("2.6", "fn:filter(null, 'true')", NONE, None),
    (
        "2.2",
        "topicName += '/' += eventTime",
        EvaluationContext(topic_name="in", event_time=42),
        "in/42",
    ),
    ("2.2", "key", EvaluationContext(message_key="m"), "m"),
    ("2.4", "'abc'.bytes", NONE, b"abc"),
    # A CQL vector read by a query is a list: .values (CqlVector.getValues()) gives it.
    ("2.4", "record.v.values", EvaluationContext(record={"v": [0.5, 1.0]}), [0.5, 1.0]),
    ("2.4", "record.v['values']", EvaluationContext(record={"v": [0.5]}), [0.5]),
]


@pytest.mark.parametrize(
    ("expression", "context", "expected"),
    [case[1:] for case in E_CASES],
    ids=[f"{ref}[{e}]" for ref, e, _, _ in E_CASES],
)
def test_reference_cases(expression: str, context: EvaluationContext, expected: Any) -> None:
    assert compile_expression(expression).evaluate(context) == expected


def test_the_expression_never_changes_the_record() -> None:
    value = {"obj": {"c": "d"}, "arr": [1]}
    context = EvaluationContext(value=value)
    compile_expression("fn:mapPut(value.obj, 'e', 1)").evaluate(context)
    compile_expression("fn:listAdd(value.arr, 2)").evaluate(context)
    assert value == {"obj": {"c": "d"}, "arr": [1]}


FAILURES: list[tuple[str, str, EvaluationContext, str]] = [
    ("E13", "'a' + 'b'", NONE, "cannot convert 'a' (a text) to an integer"),
    ("E14", "unknownIdent", NONE, "unknown identifier 'unknownIdent'"),
    ("E14", "value.x", EvaluationContext(value="plain text"), "it is not a JSON object"),
    ("2.7", "value.b > 1", SHEET, "cannot convert 'x' (a text) to an integer"),
    ("2.7", "value.a && true", SHEET, "cannot convert 1 (an integer) to a boolean"),
    ("2.7", "1 == true", NONE, "cannot convert true (a boolean)"),
    ("2.7", "5 % 0", NONE, "division by zero"),
    ("2.6", "fn:toInt('abc')", NONE, "fn:toInt: cannot convert 'abc'"),
    ("2.6", "fn:toInt(true)", NONE, "cannot convert true"),
    ("2.6", "fn:fromJson('{')", NONE, "invalid JSON"),
    ("2.6", "fn:toListOfFloat('x')", NONE, "list of float"),
    ("2.6", "fn:mapOf('a')", NONE, "odd number of arguments"),
    ("2.6", "fn:mapPut('x', 'k', 1)", NONE, "needs a map"),
    ("2.6", "fn:mapPut(null, null, 1)", NONE, "null or empty key"),
    ("2.6", "fn:listAdd(null, 1)", NONE, "needs a list"),
    ("2.6", "fn:filter('x', 'true')", NONE, "fn:filter needs a list"),
    ("2.6", "fn:random(0)", NONE, "positive bound"),
    ("2.6", "fn:timestampAdd(null, 1, 'days')", NONE, "got null"),
    ("2.6", "fn:timestampAdd('yesterday', 1, 'days')", NONE, "to an instant"),
    ("2.6", "fn:split('a', '(')", NONE, "invalid regular expression"),
]


@pytest.mark.parametrize(
    ("expression", "context", "message"),
    [case[1:] for case in FAILURES],
    ids=[f"{ref}[{e}]" for ref, e, _, _ in FAILURES],
)
def test_failures_name_the_expression(
    expression: str, context: EvaluationContext, message: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(expression).evaluate(context)
    assert message in str(caught.value)
    assert repr(expression) in str(caught.value)
    assert isinstance(caught.value, SluiceError | ValueError)


PREDICATES: list[tuple[str, str, EvaluationContext, bool]] = [
    ("E11", "value eq 66 div 2", EvaluationContext(value=33, key="header-key"), True),
    ("E11", "value % 10 == 3", EvaluationContext(value=33), True),
    ("E15", "unknownIdent == 1", NONE, False),
    ("E15", "value.x == 'a'", EvaluationContext(value="plain text"), False),
    ("2.8", "'TRUE'", NONE, True),
    ("2.8", "value.flag", EvaluationContext(value={"flag": "true"}), True),
    (
        "2.8",
        "value.missing",
        EvaluationContext(value={}),
        False,
    ),  # LangStream: NullPointerException
]


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [case[1:] for case in PREDICATES],
    ids=[f"{ref}[{e}]" for ref, e, _, _ in PREDICATES],
)
def test_predicates(condition: str, context: EvaluationContext, expected: bool) -> None:
    assert compile_predicate(condition).test(context) is expected


def test_a_number_is_not_a_condition() -> None:
    """E15: ``when: value.a`` with a number fails the record instead of guessing."""
    with pytest.raises(ExpressionError, match="must be true or false, got 1"):
        compile_predicate("value.a").test(EvaluationContext(value={"a": 1}))
    with pytest.raises(ExpressionError, match="cannot convert 'x'"):
        compile_predicate("value.b > 1").test(SHEET)  # a type error is no "not found"


SYNTAX: list[tuple[str, int, str]] = [
    ("", 1, "empty"),
    ("value.a +", 10, "ends too early"),
    ("value.a ++ 1", 10, "unexpected '+'"),
    ("${value.x == 1}", 1, "without the surrounding ${ }"),
    ("value.x = 5", 9, "assignment is not supported"),
    ("x = 5; x + 1", 3, "assignment is not supported"),
    ("(x -> x + 1)(2)", 4, "lambda expressions are not supported"),
    ("{1, 2}", 1, "set literals are not supported"),
    ("value instanceof x", 7, "unexpected 'instanceof'"),
    ("value.s.length()", 1, "method calls are not supported: value.s.length(...)"),
    ("Math.max(1, 2)", 1, "method calls are not supported"),
    ("fn:concat3('a')", 1, "fn:concat3 takes 3 arguments, got 1"),
    ("1 + x:foo(2)", 5, "unknown function x:foo"),
    (
        "fn:filter(value, 'record.x >')",
        18,
        "in fn:filter's condition: the expression ends too early",
    ),
    ("'open", 1, "unexpected character"),
]


@pytest.mark.parametrize(("expression", "column", "message"), SYNTAX, ids=[s for s, _, _ in SYNTAX])
def test_syntax_errors_give_the_column(expression: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as caught:
        compile_expression(expression)
    assert message in str(caught.value)
    assert caught.value.column == column
    assert isinstance(caught.value, SluiceError) and isinstance(caught.value, ValueError)


def test_dropping_a_misspelt_field_name_is_an_error_not_a_subtraction_surprise() -> None:
    """``value.first-name`` is ``value.first - name`` in EL: name is no identifier."""
    with pytest.raises(PropertyNotFound, match="unknown identifier 'name'"):
        compile_expression("value.first-name").evaluate(
            EvaluationContext(value={"first-name": "J"})
        )
    assert (
        compile_expression("value['first-name']").evaluate(
            EvaluationContext(value={"first-name": "J"})
        )
        == "J"
    )


# LangStream differences we chose (docs/agents.md, "Expression language").
def test_varargs_functions_take_fewer_than_two_arguments() -> None:
    """LangStream's fn:concat, fn:listOf and fn:mapOf fail with 0 or 1 argument (E14)."""
    assert compile_expression("fn:concat('x')").evaluate(NONE) == "x"
    assert compile_expression("fn:listOf(1)").evaluate(NONE) == [1]
    assert compile_expression("fn:mapOf()").evaluate(NONE) == {}


def test_to_json_writes_instants_as_iso_text() -> None:
    """LangStream's fn:toJson fails on instants (its JSON writer lacks the time module)."""
    result = compile_expression("fn:toJson(fn:timestampAdd(0, 0, 'days'))").evaluate(NONE)
    assert result == '"1970-01-01T00:00:00Z"'


# Safety: only the record's JSON data and the fn: functions are reachable.
ESCAPES: list[tuple[str, str]] = [
    ("value.__class__", "names starting with '__' are not allowed"),
    ("''.__class__", "names starting with '__' are not allowed"),
    ("value.__class__.__mro__", "names starting with '__' are not allowed"),
    ("fn:getenv('HOME')", "unknown function fn:getenv"),
    ("os:system('ls')", "unknown function os:system"),
    ("System.getenv('X')", "method calls are not supported"),
    ("''.getClass().forName('java.lang.Runtime')", "method calls are not supported"),
    ("__import__('os')", "method calls are not supported"),
    ("T(java.lang.Runtime)", "method calls are not supported"),
]


@pytest.mark.parametrize(("expression", "message"), ESCAPES, ids=[e for e, _ in ESCAPES])
def test_escapes_do_not_compile(expression: str, message: str) -> None:
    with pytest.raises(ExpressionSyntaxError, match=message.replace("(", "\\(")):
        compile_expression(expression)


@pytest.mark.parametrize("name", ["System", "Math", "os", "environ", "open", "headers"])
def test_other_top_level_names_are_unknown(name: str) -> None:
    with pytest.raises(PropertyNotFound, match=f"unknown identifier '{name}'"):
        compile_expression(name).evaluate(NONE)


@pytest.mark.parametrize(
    "expression",
    [
        "value['__class__']",
        "value.s['upper']",
        "value.arr['append']",
        "value.f.real",
    ],
)
def test_keys_never_reach_python_attributes(expression: str) -> None:
    context = EvaluationContext(value={"s": "x", "arr": [], "f": 1.5})
    try:
        result = compile_expression(expression).evaluate(context)
    except ExpressionError:
        return
    assert result is None


def test_limits() -> None:
    with pytest.raises(ExpressionSyntaxError, match=f"longer than {MAX_LENGTH}"):
        compile_expression("1" + " + 1" * MAX_LENGTH)
    with pytest.raises(ExpressionSyntaxError, match=f"nested deeper than {MAX_DEPTH}"):
        compile_expression("fn:length(" * 200 + "1" + ")" * 200)
    with pytest.raises(ExpressionSyntaxError, match=f"nested deeper than {MAX_DEPTH}"):
        compile_expression("-" * 1000 + "1")
    with pytest.raises(ExpressionSyntaxError, match="nested deeper"):
        compile_expression("[" * 300 + "]" * 300)
    assert compile_expression("(" * 500 + "1" + ")" * 500).evaluate(NONE) == 1


def test_produced_text_is_bounded() -> None:
    big = EvaluationContext(value="x" * 5000)
    with pytest.raises(ExpressionError, match=f"more than {MAX_TEXT}"):
        compile_expression("fn:replace(value, '', value)").evaluate(big)
    huge = EvaluationContext(value="x" * (MAX_TEXT // 2 + 1))
    with pytest.raises(ExpressionError, match=f"more than {MAX_TEXT}"):
        compile_expression("value += value").evaluate(huge)


def test_filter_conditions_taken_from_the_record_cannot_recurse_forever() -> None:
    context = EvaluationContext(value={"l": [1], "e": "fn:length(fn:filter(value.l, value.e)) > 0"})
    with pytest.raises(ExpressionError, match="nested more than"):
        compile_expression("fn:filter(value.l, value.e)").evaluate(context)
