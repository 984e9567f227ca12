"""The flow-control agents' configuration checked at validation: keys, routes, templates, and the
topics dispatch and trigger-event send to."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

from sluice.application import load_application, plan_application
from sluice.errors import InvalidApplication
from tests.sluice.application import builtin_agents
from tests.sluice.application.builtin_agents import plain
from tests.sluice.application.conftest import WriteApp

TOPICS = """
topics:
  - name: questions
    creation-mode: create-if-not-exists
  - name: answers
  - name: topic1
"""

# topic1 too: a destination that is declared.
agent = functools.partial(builtin_agents.agent, topics=TOPICS)


@pytest.mark.parametrize(
    ("agent_type", "configuration", "expected"),
    [
        (
            "dispatch",
            "      routes:\n        - destination: topic1\n",
            "pipeline.yaml:12 pipeline[0].configuration.routes[0].when: is required by dispatch",
        ),
        (
            "dispatch",
            "      routes:\n        - {when: 'true', action: route}\n",
            "pipeline.yaml:12 pipeline[0].configuration.routes[0].action: must be one of "
            "dispatch, drop, got 'route'",
        ),
        (
            # FlowControlAgentsProvider: 'drop action cannot have a destination'
            "dispatch",
            "      routes:\n        - when: 'true'\n          action: drop\n"
            "          destination: topic1\n",
            "pipeline.yaml:14 pipeline[0].configuration.routes[0].destination: drop action "
            "cannot have a destination",
        ),
        (
            "dispatch",
            "      routes:\n        - when: 'true'\n",
            "pipeline.yaml:12 pipeline[0].configuration.routes[0].destination: is required by a "
            "dispatch route",
        ),
        (
            "dispatch",
            "      routes:\n        - when: value.x ==\n          destination: topic1\n",
            "pipeline.yaml:12 pipeline[0].configuration.routes[0].when: the expression ends too early "
            "at column 11 of the expression 'value.x =='",
        ),
        (
            "dispatch",
            "      routes:\n        - when: 'true'\n          destination: topic2\n",
            'pipeline.yaml:13 pipeline[0].configuration.routes[0].destination: topic "topic2" '
            'is not declared; did you mean "topic1"?',
        ),
        (
            "trigger-event",
            "      when: 'true'\n",
            "pipeline.yaml:10 pipeline[0].configuration.destination: is required by trigger-event",
        ),
        (
            "trigger-event",
            "      destination: elsewhere\n",
            'pipeline.yaml:11 pipeline[0].configuration.destination: topic "elsewhere" is not '
            "declared",
        ),
        (
            "trigger-event",
            "      destination: topic1\n      continue-processing: maybe\n",
            "pipeline.yaml:12 pipeline[0].configuration.continue-processing: must be true or false",
        ),
        (
            "log-event",
            "      fields:\n        - name: value.x\n",
            "pipeline.yaml:12 pipeline[0].configuration.fields[0].expression: is required by "
            "log-event",
        ),
        (
            "log-event",
            "      message: '{{# value.x }} never closed'\n",
            "pipeline.yaml:11 pipeline[0].configuration.message: is not a valid Mustache template",
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


def test_timer_source_period_must_be_positive(write_app: WriteApp) -> None:
    app = agent("timer-source", "      period-seconds: 0\n", source=True)
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app(app))
    assert [plain(p) for p in caught.value.problems] == [
        "pipeline.yaml:10 pipeline[0].configuration.period-seconds: must be at least 1, got 0"
    ]


def test_sluice_validate_reports_a_route_to_an_undeclared_topic(write_app: WriteApp) -> None:
    app = write_app(agent("dispatch", "      routes:\n        - {when: 'true', destination: t9}\n"))
    result = subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "validate", str(app)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert '(pipeline.yaml:12) configuration.routes[0].destination: topic "t9" is not declared' in (
        result.stdout + result.stderr
    )


def test_a_stream_to_topic_must_be_declared(write_app: WriteApp) -> None:
    app = agent(
        "langserve-invoke",
        "      url: http://localhost:1/chain/stream\n      stream-to-topic: streamed\n",
    )
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app(app))
    [problem] = [plain(p) for p in caught.value.problems]
    assert problem.startswith(
        'pipeline.yaml:12 pipeline[0].configuration.stream-to-topic: topic "streamed" is not '
        "declared"
    )


def test_valid_flow_agents_validate_run_and_fuse(write_app: WriteApp) -> None:
    app = load_application(
        write_app(
            {
                "pipeline.yaml": TOPICS
                + """
pipeline:
  - {id: timer, type: timer-source, configuration: {period-seconds: 5}}
  - id: trigger
    type: trigger-event
    configuration: {destination: topic1, fields: [{name: value.a, expression: "1"}]}
  - {id: log, type: log-event, configuration: {message: "{{ value.a }}"}}
  - id: route
    type: dispatch
    output: answers
    configuration:
      routes:
        - {when: "value.a == 1", destination: topic1}
        - {when: "value.a == 2", action: drop}
"""
            }
        )
    )
    assert app.unsupported == ()
    plan = plan_application(app)
    assert [[a.id for a in e.agents] for e in plan.executors] == [
        ["timer", "trigger", "log", "route"]
    ]
