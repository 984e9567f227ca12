"""The HTTP agents' configuration checked at validation: keys, templates, LangServe URLs."""

from __future__ import annotations

import pytest

from sluice.application import load_application
from sluice.errors import InvalidApplication
from tests.sluice.application.builtin_agents import TOPICS, agent, plain
from tests.sluice.application.conftest import WriteApp


@pytest.mark.parametrize(
    ("agent_type", "configuration", "expected"),
    [
        (
            "http-request",
            "      url: http://h/x\n",
            "pipeline.yaml:9 pipeline[0].configuration.output-field: is required by http-request",
        ),
        (
            "http-request",
            "      url: http://h/x\n      output-field: value\n      body: '{{# value.a }}'\n",
            "pipeline.yaml:12 pipeline[0].configuration.body: is not a valid Mustache template: "
            "section 'value.a' is not closed (line 1, column 1)",
        ),
        (
            "http-request",
            "      url: http://h/x\n      output-field: value\n"
            "      query-string:\n        q: '{{ value.a'\n",
            "pipeline.yaml:13 pipeline[0].configuration.query-string.q: is not a valid Mustache "
            "template",
        ),
        (
            "http-request",
            "      url: http://h/x\n      output-field: value\n      allow-redirects: often\n",
            "pipeline.yaml:12 pipeline[0].configuration.allow-redirects: must be true or false",
        ),
        (
            "langserve-invoke",
            "      url: http://h/chain\n",
            "pipeline.yaml:10 pipeline[0].configuration.url: must end with /invoke (one answer) or "
            "/stream (streamed answer), got 'http://h/chain'",
        ),
        (
            "langserve-invoke",
            "      url: http://h/chain/stream\n      min-chunks-per-message: 0\n",
            "pipeline.yaml:11 pipeline[0].configuration.min-chunks-per-message: must be at least 1",
        ),
        (
            "langserve-invoke",
            "      url: http://h/chain/invoke\n      fields:\n        - {name: a, expression: '1 +'}\n",
            "pipeline.yaml:12 pipeline[0].configuration.fields[0].expression: the expression ends too early",
        ),
    ],
)
def test_bad_configuration_is_an_error_with_file_and_line(
    write_app: WriteApp, agent_type: str, configuration: str, expected: str
) -> None:
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app(agent(agent_type, configuration)))
    rendered = [plain(p) for p in caught.value.problems]
    assert any(text.startswith(expected) for text in rendered), rendered


def test_valid_http_agents_load(write_app: WriteApp) -> None:
    app = write_app(
        {
            "pipeline.yaml": TOPICS
            + """
  - name: chunks
pipeline:
  - type: http-request
    input: questions
    configuration:
      url: https://geocoding-api.open-meteo.com/v1/search
      query-string: {name: "{{{ value.city }}}", count: "1", format: json}
      output-field: value.response
  - type: langserve-invoke
    output: answers
    configuration:
      url: http://localhost:8080/chain/stream
      fields: [{name: topic, expression: value.topic}]
      stream-to-topic: chunks
      headers: {X-Session: "{{ properties.session }}"}
"""
        }
    )
    load_application(app)
