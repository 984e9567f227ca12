from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sluice.application import load_application
from sluice.application.placeholders import PlaceholderContext, resolve, resolve_environment
from tests.sluice.application.conftest import WriteApp

CONTEXT = PlaceholderContext(
    secrets={"openai": {"key": "sk-1", "port": 8080, "nested": {"a": [1, 2]}}},
    globals={"name": "Sluice", "limit": 3, "none": None},
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${secrets.openai.key}", "sk-1"),
        ("${ secrets.openai.port }", 8080),
        ("${secrets.openai.nested}", {"a": [1, 2]}),
        ("${secrets.openai.nested.a}", [1, 2]),
        ("Bearer ${secrets.openai.key}!", "Bearer sk-1!"),
        ("port=${secrets.openai.port} ${globals.name}", "port=8080 Sluice"),
        ("list=${secrets.openai.nested.a}", "list=[1, 2]"),
        ("[${globals.none}]", "[]"),
        ("{{ secrets.openai.key }}", "sk-1"),
        ("{{{ globals.limit }}}", 3),
        ("Hello {{ globals.name }}", "Hello Sluice"),
        ("{{ value.question }}", "{{ value.question }}"),
        ("answer {{% raw %}} plain", "answer {{% raw %}} plain"),
        ("no placeholder", "no placeholder"),
    ],
)
def test_resolve_values(text: str, expected: object) -> None:
    result = resolve({"v": text}, CONTEXT)
    assert result.errors == []
    assert result.value == {"v": expected}


def test_secret_paths_are_tracked() -> None:
    result = resolve({"a": "${secrets.openai.key}", "b": ["${globals.name}"]}, CONTEXT)
    assert result.secret_paths == {("a",)}


def test_errors_are_collected_with_paths() -> None:
    result = resolve({"a": ["${secrets.nope.key}", "${globals.missing}"]}, CONTEXT)
    assert [path for path, _ in result.errors] == [("a", 0), ("a", 1)]


def test_environment_references() -> None:
    data = {"k": "${KEY}", "d": "${UNSET:-fallback}", "e": "${UNSET:-}", "s": "${secrets.x.y}"}
    result = resolve_environment(data, {"KEY": "from-env"})
    assert result.errors == []
    assert result.value == {"k": "from-env", "d": "fallback", "e": "", "s": "${secrets.x.y}"}


def test_instance_globals_override_configuration_defaults_everywhere(
    write_app: WriteApp, write_file: Callable[[str, str], Path]
) -> None:
    app_dir = write_app(
        {
            "configuration.yaml": """
configuration:
  defaults:
    globals: {input: questions, output: answers, assistant: Sluice}
  resources:
    - type: open-ai-configuration
      name: openai
      configuration: {access-key: "${secrets.openai.key}", url: "https://api.example"}
""",
            "pipeline.yaml": """
topics:
  - {name: "${globals.input}", creation-mode: create-if-not-exists}
  - {name: custom-answers, creation-mode: create-if-not-exists}
pipeline:
  - type: identity
    input: "${globals.input}"
    output: "${globals.output}"
""",
            "gateways.yaml": """
gateways:
  - id: chat
    type: chat
    chat-options:
      questions-topic: "${globals.input}"
      answers-topic: "{{ globals.output }}"
      headers:
        - {key: assistant, value: "${globals.assistant}"}
""",
        }
    )
    instance = write_file(
        "instance.yaml",
        """
instance:
  streamingCluster:
    type: kafka
    configuration:
      admin: {bootstrap.servers: "${KAFKA:-localhost:9092}", client.id: "${secrets.kafka.pw}"}
  globals: {output: custom-answers}
""",
    )
    secrets = write_file(
        "secrets.yaml",
        """
secrets:
  - {id: openai, data: {key: "${OPENAI_KEY}"}}
  - {id: kafka, data: {pw: hunter2}}
""",
    )
    app = load_application(
        app_dir,
        instance=instance,
        secrets=secrets,
        environ={"OPENAI_KEY": "sk-env", "KAFKA": "127.0.0.1:19092"},
    )
    assert app.agents[0].output == "custom-answers"
    gateway = app.gateway("chat", "chat")
    assert gateway is not None and gateway.chat is not None
    assert (gateway.chat.questions_topic, gateway.chat.answers_topic) == (
        "questions",
        "custom-answers",
    )
    assert gateway.chat.headers[0].value == "Sluice"
    assert app.resources[0].configuration == {"access-key": "sk-env", "url": "https://api.example"}
    assert app.instance.bootstrap_servers == "127.0.0.1:19092"
    assert app.instance.kafka_admin["client.id"] == "hunter2"
