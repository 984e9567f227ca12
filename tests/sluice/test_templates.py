"""Mustache templates with JMustache's semantics (sluice.templates)."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.javatext import java_text
from sluice.templates import (
    TemplateRenderError,
    TemplateSyntaxError,
    compile_template,
    record_view,
)

# Reference case A11 (LangStream's JMustache 1.15, ran): the seven escaped characters.
TRICKY = "a<b & 'c' \"d\" =`"


def render(source: str, view: dict[str, Any]) -> str:
    return compile_template(source).render(view)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ value.q }}", "a&lt;b &amp; &#39;c&#39; &quot;d&quot; &#x3D;&#x60;"),
        ("{{{ value.q }}}", TRICKY),
        ("{{& value.q }}", TRICKY),
        ("{{value.q}}", "a&lt;b &amp; &#39;c&#39; &quot;d&quot; &#x3D;&#x60;"),
    ],
)
def test_a11_escaped_and_raw(source: str, expected: str) -> None:
    assert render(source, {"value": {"q": TRICKY}}) == expected


@pytest.mark.parametrize(
    "source", ["{{ value.missing }}", "{{{ value.missing }}}", "{{ value.n }}", "{{ nothing }}"]
)
def test_a11_missing_or_null_is_an_error(source: str) -> None:
    template = compile_template(source)
    with pytest.raises(TemplateRenderError) as caught:
        template.render({"value": {"q": "x", "n": None}})
    assert caught.value.line == 1
    assert caught.value.column == 1
    assert "missing or null" in str(caught.value)


def test_the_record_view() -> None:
    # LangStream's ChatCompletionsStepTest.testPrimitive, in the runtime's view (destinationTopic
    # is null there, so it is left out of this template).
    view = record_view(
        value="test-message",
        key="test-key",
        properties={"test-key": "test-value"},
        topic_name="test-input-topic",
        event_time=42,
    )
    source = "{{ value }} {{ key}} {{ eventTime }} {{ topicName }} {{ properties.test-key }}"
    assert render(source, view) == "test-message test-key 42 test-input-topic test-value"
    with pytest.raises(TemplateRenderError):
        render("{{ destinationTopic }}", view)


def test_dotted_names_walk_dicts_and_list_indices() -> None:
    view = {"value": {"docs": [{"text": "first"}, {"text": "second"}], "a": {"b": {"c": 1}}}}
    assert render("{{ value.docs.1.text }}/{{ value.a.b.c }}", view) == "second/1"
    with pytest.raises(TemplateRenderError):
        render("{{ value.docs.2.text }}", view)


def test_sections_iterate_lists_with_index_and_outer_names() -> None:
    view = {"value": {"docs": [{"t": "x"}, {"t": "y"}], "sep": ";"}}
    source = "{{# value.docs }}{{ -index }}={{ t }}{{ value.sep }}{{/ value.docs }}"
    assert render(source, view) == "1=x;2=y;"
    first_last = "{{#value.docs}}{{#-first}}[{{/-first}}{{t}}{{#-last}}]{{/-last}}{{/value.docs}}"
    assert render(first_last, view) == "[xy]"


@pytest.mark.parametrize(
    ("value", "shown", "inverted"),
    [
        ({"x": {"k": "v"}}, "v", ""),
        ({"x": True}, "in", ""),
        ({"x": "text"}, "in", ""),
        ({"x": 0}, "in", ""),
        ({"x": ""}, "in", ""),
        ({"x": False}, "", "not"),
        ({"x": []}, "", "not"),
        ({"x": None}, "", "not"),
        ({}, "", "not"),
    ],
)
def test_section_truthiness(value: dict[str, Any], shown: str, inverted: str) -> None:
    view = {"value": value}
    body = "{{ k }}" if shown == "v" else "in"
    assert render(f"{{{{# value.x }}}}{body}{{{{/ value.x }}}}", view) == shown
    assert render("{{^ value.x }}not{{/ value.x }}", view) == inverted


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (1, "1"),
        (1.0, "1.0"),
        (1.5, "1.5"),
        (1e10, "1.0E10"),
        (1.25e-5, "1.25E-5"),
        ({"k": "v", "n": None}, "{k=v, n=null}"),
        (["a", "b"], "[a, b]"),
    ],
)
def test_values_print_as_java_prints_them(value: Any, text: str) -> None:
    assert java_text(value) == text
    assert render("{{{ value.x }}}", {"value": {"x": value}}) == text


def test_escaping_also_applies_to_java_text_of_maps() -> None:
    assert render("{{ value }}", {"value": {"k": "v"}}) == "{k&#x3D;v}"


def test_standalone_section_lines_leave_no_blank_line() -> None:
    source = "start\n  {{# value.l }}\n- {{.}}\n  {{/ value.l }}\nend {{! a comment }}\n"
    assert render(source, {"value": {"l": [1, 2]}}) == "start\n- 1\n- 2\nend \n"


def test_delimiters_can_change() -> None:
    assert render("{{=<% %>=}}<% value.a %> {{ kept }}", {"value": {"a": "x"}}) == "x {{ kept }}"


@pytest.mark.parametrize(
    ("source", "line", "column", "reason"),
    [
        ("{{# value.a }}", 1, 1, "not closed"),
        ("x\n {{/ value.a }}", 2, 2, "closes no section"),
        ("{{# a }}{{/ b }}", 1, 9, "closes the section 'a'"),
        ("text {{ value.a", 1, 6, "not closed by"),
        ("{{ }}", 1, 1, "without a name"),
        ("{{ a..b }}", 1, 1, "invalid name"),
        ("{{> partial }}", 1, 1, "partials"),
        ("{{= <% =}}", 1, 1, "invalid delimiters"),
    ],
)
def test_syntax_errors_name_line_and_column(
    source: str, line: int, column: int, reason: str
) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_template(source)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert reason in str(caught.value)


def test_text_without_tags_is_unchanged() -> None:
    assert render("plain { text } }}", {}) == "plain { text } }}"
