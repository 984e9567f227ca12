"""Built-in transform agents: their configuration checked at validation, and their fusion."""

from __future__ import annotations

import pytest

from sluice.application import load_application, plan_application
from sluice.errors import InvalidApplication
from tests.sluice.application.builtin_agents import TOPICS, agent, plain
from tests.sluice.application.conftest import WriteApp


@pytest.mark.parametrize(
    ("agent_type", "configuration", "expected"),
    [
        (
            "drop-fields",
            "      part: value\n",
            "pipeline.yaml:9 pipeline[0].configuration.fields: is required by drop-fields",
        ),
        (
            "drop-fields",
            "      fields: name\n",
            "pipeline.yaml:10 pipeline[0].configuration.fields: must be a list of names, "
            "got the string 'name'",
        ),
        (
            "cast",
            "      schema-type: AVRO\n",
            "pipeline.yaml:10 pipeline[0].configuration.schema-type: must be one of STRING,",
        ),
        (
            "flatten",
            "      delimiter: '.'\n      part: both\n",
            "pipeline.yaml:11 pipeline[0].configuration.part: must be one of key, value, "
            "got 'both'",
        ),
        (
            "unwrap-key-value",
            "      unwrapKey: sometimes\n",
            "pipeline.yaml:10 pipeline[0].configuration.unwrapKey: must be true or false",
        ),
        (
            "text-splitter",
            "      chunk_size: 5\n      chunk_overlap: 6\n",
            "pipeline.yaml:11 pipeline[0].configuration.chunk_overlap: (6) is larger than "
            "chunk_size (5); it must be smaller",
        ),
        (
            "text-splitter",
            '      separators: "\\n"\n',
            "pipeline.yaml:10 pipeline[0].configuration.separators: must be a list of strings",
        ),
        (
            "document-to-json",
            "      copy-properties: sometimes\n",
            "pipeline.yaml:10 pipeline[0].configuration.copy-properties: must be true or false",
        ),
        (
            "merge-key-value",
            '      when: "value.a == = 1"\n',
            "pipeline.yaml:10 pipeline[0].configuration.when: assignment is not supported "
            "(compare with == or eq) at column 12",
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


def test_unknown_keys_are_warnings(write_app: WriteApp) -> None:
    app = load_application(
        write_app(agent("flatten", "      delimiter: '.'\n      delimter: '-'\n"))
    )
    [warning] = [w for w in app.warnings if "delimter" in w]
    assert 'unknown key "delimter" of flatten is ignored; did you mean "delimiter"?' in warning
    assert "(pipeline.yaml:11) configuration.delimter" in warning


def test_valid_transforms_validate_and_fuse(write_app: WriteApp) -> None:
    # LangStream's planner fuses consecutive composable agents (CompositeAgentTest); the
    # transforms are composable unless they say composable: false.
    app = load_application(
        write_app(
            {
                "pipeline.yaml": TOPICS
                + """
pipeline:
  - {id: drop, type: drop-fields, input: questions, configuration: {fields: [secret]}}
  - {id: flat, type: flatten, configuration: {delimiter: "."}}
  - {id: cast, type: cast, configuration: {schema-type: STRING, composable: false}}
  - {id: unwrap, type: unwrap-key-value, output: answers, configuration: {unwrapKey: true}}
"""
            }
        )
    )
    plan = plan_application(app)
    assert [[a.id for a in e.agents] for e in plan.executors] == [
        ["drop", "flat"],
        ["cast"],
        ["unwrap"],
    ]
    assert app.unsupported == ()
