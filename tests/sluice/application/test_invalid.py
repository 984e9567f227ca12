"""Invalid applications: every error names the file, the line when known, the YAML path and why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.application import load_application
from sluice.errors import InvalidApplication, Problem
from tests.sluice.application.conftest import WriteApp

TOPICS = """
topics:
  - name: questions
    creation-mode: create-if-not-exists
  - name: answers
"""


def processor(**fields: str) -> str:
    lines = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    return (
        TOPICS
        + "pipeline:\n  - type: python-processor\n"
        + lines
        + ("    configuration: {className: m.C}\n" if "configuration" not in fields else "")
    )


def gateway(body: str) -> dict[str, str]:
    return {"pipeline.yaml": TOPICS, "gateways.yaml": "gateways:\n" + body}


CASES: list[tuple[str, dict[str, str], tuple[str, str, str]]] = [
    (
        "unknown agent type",
        {"pipeline.yaml": TOPICS + "pipeline:\n  - type: python-procesor\n    input: questions\n"},
        (
            "pipeline.yaml:6",
            "pipeline[0].type",
            'unknown agent type "python-procesor"; did you mean "python-processor"?',
        ),
    ),
    (
        "undeclared topic",
        {"pipeline.yaml": processor(input="questoins")},
        (
            "pipeline.yaml:7",
            "pipeline[0].input",
            'topic "questoins" is not declared; did you mean "questions"?',
        ),
    ),
    (
        "missing type",
        {"pipeline.yaml": TOPICS + "pipeline:\n  - id: x\n    input: questions\n"},
        ("pipeline.yaml", "pipeline[0].type", "is required"),
    ),
    (
        "disk size garbage",
        {
            "pipeline.yaml": processor(
                input="questions", resources="{disk: {enabled: true, size: lots}}"
            )
        },
        ("pipeline.yaml", "pipeline[0].resources.disk.size", "must be a size like 256M"),
    ),
    (
        "retries below zero",
        {"pipeline.yaml": processor(input="questions", errors="{retries: -1}")},
        ("pipeline.yaml", "pipeline[0].errors.retries", "must be >= 0, got -1"),
    ),
    (
        "parallelism 9",
        {"pipeline.yaml": processor(input="questions", resources="{parallelism: 9}")},
        ("pipeline.yaml", "pipeline[0].resources.parallelism", "must be between 1 and 8, got 9"),
    ),
    (
        "size 0",
        {"pipeline.yaml": processor(input="questions", resources="{size: 0}")},
        ("pipeline.yaml", "pipeline[0].resources.size", "must be between 1 and 8, got 0"),
    ),
    (
        "on-failure unknown",
        {"pipeline.yaml": processor(input="questions", errors="{on-failure: retry}")},
        ("pipeline.yaml", "pipeline[0].errors.on-failure", 'must be one of "fail", "skip"'),
    ),
    (
        "python agent without className",
        {"pipeline.yaml": processor(input="questions", configuration="{}")},
        ("pipeline.yaml", "pipeline[0].configuration", "needs configuration.className"),
    ),
    (
        "first processor without input",
        {"pipeline.yaml": processor(output="answers")},
        ("pipeline.yaml", "pipeline[0].input", "first agent of a pipeline needs an input topic"),
    ),
    (
        "source with input",
        {
            "pipeline.yaml": TOPICS + "pipeline:\n  - type: python-source\n    input: questions\n"
            "    configuration: {className: m.S}\n"
        },
        ("pipeline.yaml", "pipeline[0].input", "a source reads no topic"),
    ),
    (
        "duplicate agent id",
        {
            "pipeline.yaml": TOPICS + "pipeline:\n  - {id: a, type: identity, input: questions}\n"
            "  - {id: a, type: identity}\n"
        },
        ("pipeline.yaml", "pipeline[1].id", 'duplicate agent id "a"'),
    ),
    (
        "negative partitions",
        {"pipeline.yaml": "topics:\n  - name: t\n    partitions: -1\n"},
        ("pipeline.yaml:3", "topics[0].partitions", "must be >= 0"),
    ),
    (
        "topic declared twice differently",
        {"pipeline.yaml": TOPICS, "other.yaml": "topics:\n  - name: answers\n    partitions: 3\n"},
        (
            "pipeline.yaml:4",
            "topics[1]",
            'topic "answers" is declared again with a different definition (first in other.yaml:2;',
        ),
    ),
    (
        "YAML syntax error",
        {"pipeline.yaml": "topics:\n  - name: a\n pipeline: [\n"},
        ("pipeline.yaml:3", "", "YAML syntax error"),
    ),
    (
        "duplicate YAML key",
        {"pipeline.yaml": "topics: []\ntopics: []\n"},
        ("pipeline.yaml:2", "topics", 'duplicate key "topics"'),
    ),
    (
        "header with value and value-from-parameters",
        gateway(
            "  - id: g\n    type: produce\n    topic: questions\n    produce-options:\n"
            "      headers:\n        - {key: h, value: v, value-from-parameters: p}\n"
        ),
        (
            "gateways.yaml:7",
            "gateways[0].produce-options.headers[0]",
            "has value-from-parameters and value",
        ),
    ),
    (
        "header without a value",
        gateway(
            "  - id: g\n    type: produce\n    topic: questions\n    produce-options:\n"
            "      headers:\n        - {key: h}\n"
        ),
        ("gateways.yaml", "gateways[0].produce-options.headers[0]", "needs one of value"),
    ),
    (
        "chat gateway with topic",
        gateway(
            "  - id: c\n    type: chat\n    topic: questions\n    chat-options:\n"
            "      {questions-topic: questions, answers-topic: answers}\n"
        ),
        ("gateways.yaml:4", "gateways[0].topic", "Gateway of type 'chat' cannot have topic"),
    ),
    (
        "chat gateway without answers-topic",
        gateway("  - id: c\n    type: chat\n    chat-options: {questions-topic: questions}\n"),
        ("gateways.yaml", "gateways[0].chat-options.answers-topic", "is required"),
    ),
    (
        "service gateway with agent-id and topics",
        {
            "pipeline.yaml": TOPICS + "pipeline:\n  - {id: svc, type: python-service, "
            "configuration: {className: m.S}}\n",
            "gateways.yaml": "gateways:\n  - id: s\n    type: service\n    service-options:\n"
            "      agent-id: svc\n      input-topic: questions\n      output-topic: answers\n",
        },
        (
            "gateways.yaml:6",
            "gateways[0].service-options.input-topic",
            "cannot be set together with agent-id",
        ),
    ),
    (
        "service gateway without output topic",
        gateway("  - id: s\n    type: service\n    service-options: {input-topic: questions}\n"),
        ("gateways.yaml", "gateways[0].service-options.output-topic", "is required"),
    ),
    (
        "service gateway to an unknown agent",
        {
            "pipeline.yaml": TOPICS + "pipeline:\n  - {id: my-service, type: python-service, "
            "configuration: {className: m.S}}\n",
            "gateways.yaml": "gateways:\n  - id: s\n    type: service\n"
            "    service-options: {agent-id: my-servise}\n",
        },
        (
            "gateways.yaml",
            "gateways[0].service-options.agent-id",
            'no agent with id "my-servise"; did you mean "my-service"?',
        ),
    ),
    (
        "consume gateway with produce-options",
        gateway(
            "  - id: g\n    type: consume\n    topic: answers\n    produce-options:\n"
            "      headers: [{key: a, value: b}]\n"
        ),
        (
            "gateways.yaml:5",
            "gateways[0].produce-options",
            "Gateway of type 'consume' cannot have produce-options",
        ),
    ),
    (
        "unknown gateway type",
        gateway("  - id: g\n    type: stream\n    topic: answers\n"),
        ("gateways.yaml:3", "gateways[0].type", 'must be one of "produce", "consume"'),
    ),
    (
        "gateway topic not declared",
        gateway("  - id: g\n    type: consume\n    topic: answer\n"),
        ("gateways.yaml:4", "gateways[0].topic", 'did you mean "answers"?'),
    ),
    (
        "principal field without authentication",
        gateway(
            "  - id: g\n    type: produce\n    topic: questions\n    produce-options:\n"
            "      headers: [{key: u, value-from-authentication: subject}]\n"
        ),
        (
            "gateways.yaml",
            "gateways[0]",
            "uses value-from-authentication: subject, but the gateway has no authentication",
        ),
    ),
    (
        "both produce-options spellings",
        gateway(
            "  - id: g\n    type: produce\n    topic: questions\n    produce-options: {}\n"
            "    produceOptions: {}\n"
        ),
        ("gateways.yaml", "gateways[0].produceOptions", "use only one of"),
    ),
    (
        "reserved module name",
        {"pipeline.yaml": TOPICS, "python/gateway.py": "x = 1\n"},
        ("python/gateway.py", "", 'defines a top-level module "gateway"'),
    ),
    (
        "reserved package name",
        {"pipeline.yaml": TOPICS, "python/lib/workers/__init__.py": ""},
        ("python/lib/workers", "", 'defines a top-level module "workers"'),
    ),
    (
        "secrets.yaml inside the application folder",
        {"pipeline.yaml": TOPICS, "secrets.yaml": "secrets: []\n"},
        ("secrets.yaml", "", "must not be inside the application folder"),
    ),
    (
        "instance.yaml inside the application folder",
        {"pipeline.yaml": TOPICS, "instance.yaml": "instance: {}\n"},
        ("instance.yaml", "", "must not be inside the application folder"),
    ),
    (
        "missing global",
        {
            "pipeline.yaml": TOPICS + "pipeline:\n  - type: identity\n    input: questions\n"
            '    output: "${globals.out}"\n'
        },
        ("pipeline.yaml:8", "pipeline[0].output", 'globals has no key "out"'),
    ),
    (
        "unknown placeholder root",
        {"pipeline.yaml": TOPICS + 'pipeline:\n  - type: identity\n    input: "${topics.q}"\n'},
        ("pipeline.yaml:7", "pipeline[0].input", "unknown placeholder root 'topics'"),
    ),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejected(
    write_app: WriteApp, files: dict[str, str], expected: tuple[str, str, str]
) -> None:
    where, path, reason = expected
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app(files))
    rendered = [str(p) for p in caught.value.problems]
    match = [p for p in caught.value.problems if _matches(p, where, path, reason)]
    assert match, f"no problem at {where} {path} saying {reason!r} in {rendered}"


def _matches(problem: Problem, where: str, path: str, reason: str) -> bool:
    file, _, line = where.partition(":")
    return (
        problem.file == file
        and (not line or problem.line == int(line))
        and problem.path == path
        and reason in problem.message
    )


def test_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20


def test_every_error_is_reported_at_once(write_app: WriteApp) -> None:
    app_dir = write_app(
        {
            "pipeline.yaml": TOPICS + "pipeline:\n  - type: nope\n    input: questions\n"
            "  - type: identity\n    output: nowhere\n    errors: {retries: -2}\n",
            "gateways.yaml": "gateways:\n  - id: g\n    type: chat\n    topic: questions\n",
        }
    )
    with pytest.raises(InvalidApplication) as caught:
        load_application(app_dir)
    paths = {p.path for p in caught.value.problems}
    assert {
        "pipeline[0].type",
        "pipeline[1].output",
        "pipeline[1].errors.retries",
        "gateways[0].topic",
    } <= paths
    text = str(caught.value)
    assert text.startswith(f"the application has {len(caught.value.problems)} errors:")
    assert 'agent #1 (pipeline.yaml:6) type: unknown agent type "nope"' in text
    assert 'gateway "g" (gateways.yaml:4) topic: Gateway of type' in text


SECRET = "s3cr3t-value-never-shown"


def test_missing_secret_names_file_path_and_placeholder(
    write_app: WriteApp, write_file: Callable[[str, str], Path]
) -> None:
    app_dir = write_app(
        gateway(
            "  - id: g\n    type: produce\n    topic: questions\n    authentication:\n"
            "      provider: google\n      configuration:\n"
            '        clientId: "${secrets.google.client-id}"\n'
        )
    )
    secrets = write_file("secrets.yaml", f"secrets:\n  - id: openai\n    data: {{key: {SECRET}}}\n")
    with pytest.raises(InvalidApplication) as caught:
        load_application(app_dir, secrets=secrets)
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == ("gateways.yaml", 8)
    assert problem.path == "gateways[0].authentication.configuration.clientId"
    assert 'no secret with id "google" (known secrets: openai)' in problem.message
    assert str(problem).startswith(
        'gateway "g" (gateways.yaml:8) authentication.configuration.clientId: no secret'
    )
    assert SECRET not in str(caught.value)


def test_missing_key_under_a_missing_key_of_a_secret(
    write_app: WriteApp, write_file: Callable[[str, str], Path]
) -> None:
    app_dir = write_app(
        {
            "pipeline.yaml": TOPICS + "pipeline:\n  - type: identity\n"
            '    input: questions\n    configuration: {k: "${secrets.a.b.c}"}\n'
        }
    )
    secrets = write_file("secrets.yaml", f"secrets:\n  - id: a\n    data: {{c: {SECRET}}}\n")
    with pytest.raises(InvalidApplication) as caught:
        load_application(app_dir, secrets=secrets)
    assert 'secret "a" has no key "b"' in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_bad_value_from_a_secret_is_not_printed(
    write_app: WriteApp, write_file: Callable[[str, str], Path]
) -> None:
    app_dir = write_app(
        {"pipeline.yaml": 'topics:\n  - name: t\n    partitions: "${secrets.a.n}"\n'}
    )
    secrets = write_file("secrets.yaml", f"secrets:\n  - id: a\n    data: {{n: {SECRET}}}\n")
    with pytest.raises(InvalidApplication) as caught:
        load_application(app_dir, secrets=secrets)
    assert "topics[0].partitions: must be an integer, got (a secret value)" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_secrets_file_inside_the_folder_passed_with_s(write_app: WriteApp) -> None:
    app_dir = write_app({"pipeline.yaml": TOPICS, "my-secrets.yaml": "secrets: []\n"})
    with pytest.raises(InvalidApplication) as caught:
        load_application(app_dir, secrets=app_dir / "my-secrets.yaml")
    assert "must not be inside the application folder" in str(caught.value)


def test_unsupported_streaming_cluster(
    write_app: WriteApp, write_file: Callable[[str, str], Path]
) -> None:
    instance = write_file("instance.yaml", "instance:\n  streamingCluster: {type: pulsar}\n")
    with pytest.raises(InvalidApplication) as caught:
        load_application(write_app({"pipeline.yaml": TOPICS}), instance=instance)
    [problem] = caught.value.problems
    assert problem.path == "instance.streamingCluster.type"
    assert 'must be one of "kafka"' in problem.message


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidApplication, match="is not a directory"):
        load_application(tmp_path / "missing")
