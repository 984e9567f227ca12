"""``flare-controller``'s configuration checked at validation, with file and line: its four
required keys, its tunables, and its ``loop-topic``, which must be a declared topic."""

from __future__ import annotations

import functools

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
  - name: flare-loop
"""

agent = functools.partial(builtin_agents.agent, "flare-controller", topics=TOPICS)

FIELDS = "      tokens-field: value.tokens.tokens\n      logprobs-field: value.tokens.logprobs\n"
COMPLETE = (
    FIELDS + "      loop-topic: flare-loop\n"
    "      retrieve-documents-field: value.documents_to_retrieve\n"
)


def problems(write_app: WriteApp, configuration: str) -> list[str]:
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app(agent(configuration)))
    return [plain(p) for p in caught.value.problems]


def test_the_four_keys_are_required(write_app: WriteApp) -> None:
    assert problems(write_app, "      min-prob: 0.3\n") == [
        f"pipeline.yaml:10 pipeline[0].configuration.{key}: is required by flare-controller"
        for key in ("tokens-field", "logprobs-field", "loop-topic", "retrieve-documents-field")
    ]


def test_the_loop_topic_must_be_declared(write_app: WriteApp) -> None:
    configuration = COMPLETE.replace("loop-topic: flare-loop", "loop-topic: flare-lop")
    assert problems(write_app, configuration) == [
        'pipeline.yaml:13 pipeline[0].configuration.loop-topic: topic "flare-lop" is not '
        'declared; did you mean "flare-loop"?'
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "      min-prob: 1.5\n",
            "pipeline.yaml:15 pipeline[0].configuration.min-prob: must be a probability between "
            "0 and 1, got 1.5",
        ),
        (
            "      min-prob: low\n",
            "pipeline.yaml:15 pipeline[0].configuration.min-prob: must be a probability between "
            "0 and 1, got 'low'",
        ),
        (
            "      max-iterations: -1\n",
            "pipeline.yaml:15 pipeline[0].configuration.max-iterations: must be at least 0, got -1",
        ),
        (
            "      num-pad-tokens: two\n",
            "pipeline.yaml:15 pipeline[0].configuration.num-pad-tokens: must be a whole number, "
            "got 'two'",
        ),
        (
            "      num-iterations-field: value.flare_iterations +\n",
            "pipeline.yaml:15 pipeline[0].configuration.num-iterations-field: ",
        ),
    ],
    ids=["min-prob-range", "min-prob-text", "max-iterations", "num-pad-tokens", "expression"],
)
def test_bad_tunables_are_errors_with_file_and_line(
    write_app: WriteApp, extra: str, expected: str
) -> None:
    [problem] = problems(write_app, COMPLETE + extra)
    assert problem.startswith(expected), problem


def test_the_retrieve_documents_field_is_a_result_field_name(write_app: WriteApp) -> None:
    configuration = COMPLETE.replace("value.documents_to_retrieve", "documents_to_retrieve")
    assert problems(write_app, configuration) == [
        "pipeline.yaml:14 pipeline[0].configuration.retrieve-documents-field: invalid field "
        "name 'documents_to_retrieve': it should be value, key, destinationTopic, messageKey, "
        "or start with value., key. or properties."
    ]


def test_an_expression_that_does_not_compile_is_an_error(write_app: WriteApp) -> None:
    configuration = COMPLETE.replace("value.tokens.tokens", "value.tokens[")
    [problem] = problems(write_app, configuration)
    assert problem.startswith("pipeline.yaml:11 pipeline[0].configuration.tokens-field: ")
    assert "of the expression 'value.tokens['" in problem


def test_langstream_shaped_configuration_loads_plans_and_runs(write_app: WriteApp) -> None:
    tunables = (
        "      min-prob: 0.25\n      min-token-gap: 3\n      num-pad-tokens: 1\n"
        "      max-iterations: 4\n      num-iterations-field: value.loops\n"
    )
    for configuration in (COMPLETE, COMPLETE + tunables):
        application = load_application(write_app(agent(configuration)))
        [executor] = plan_application(application).executors
        assert [a.type for a in executor.agents] == ["flare-controller"]
