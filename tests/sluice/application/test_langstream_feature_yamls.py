"""Application YAMLs using LangStream 0.4 features (a stateful processor, produce gateways with
parameters, service gateways with topics, a google-protected agent proxy, legacy spellings) load
as LangStream loaded them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sluice.application import load_application, plan_application
from tests.sluice.application.conftest import WriteApp

TOPICS = """
topics:
  - name: questions-topic
    creation-mode: create-if-not-exists
  - name: inputs
    creation-mode: create-if-not-exists
  - name: results
    creation-mode: create-if-not-exists
"""


def test_stateful_python_processor(write_app: WriteApp) -> None:
    app_dir = write_app(
        {
            "pipeline.yaml": TOPICS
            + """
pipeline:
  - name: "Stateful processing using Python"
    id: "my-python-processor"
    type: "python-processor"
    input: questions-topic
    configuration:
      className: example.Exclamation
    resources:
      disk:
        enabled: true
        size: 50M
""",
            "python/example.py": "class Exclamation: ...\n",
        }
    )
    app = load_application(app_dir)
    agent = app.agents[0]
    assert agent.id == "my-python-processor"
    assert agent.disk is not None
    assert agent.disk.size == 50 * 1024 * 1024
    assert agent.disk.type == "default"
    executor = plan_application(app).executors[0]
    assert [(d.agent_id, d.size) for d in executor.disks] == [("my-python-processor", 52428800)]
    assert app.warnings == ()


def test_produce_gateway_with_parameters(write_app: WriteApp) -> None:
    app_dir = write_app(
        {
            "pipeline.yaml": TOPICS,
            "gateways.yaml": """
gateways:
  - id: "user-input"
    type: produce
    topic: "questions-topic"
    parameters:
      - sessionId
""",
        }
    )
    gateway = load_application(app_dir).gateway("user-input", "produce")
    assert gateway is not None
    assert gateway.topic == "questions-topic"
    assert gateway.parameters == ("sessionId",)


def test_service_gateway_with_topics(write_app: WriteApp) -> None:
    app_dir = write_app(
        {
            "pipeline.yaml": TOPICS,
            "gateways.yaml": """
gateways:
  - id: "user-input-await"
    type: service
    parameters:
    - sessionId
    service-options:
        input-topic: inputs
        output-topic: results
""",
        }
    )
    gateway = load_application(app_dir).gateway("user-input-await", "service")
    assert gateway is not None and gateway.service is not None
    assert (gateway.service.input_topic, gateway.service.output_topic) == ("inputs", "results")
    assert gateway.service.agent_id is None


def test_google_protected_agent_proxy(
    write_app: WriteApp, write_file: Callable[[str, str], Path]
) -> None:
    app_dir = write_app(
        {
            "pipeline.yaml": """
pipeline:
  - name: "Start my service"
    id: my-service-agent
    type: "python-service"
    configuration:
      className: example.ChatBotService
""",
            "gateways.yaml": """
gateways:
  - id: "my-service"
    type: service
    parameters:
      - sessionId
    service-options:
        agent-id: my-service-agent
    authentication:
      provider: google
      allow-test-mode: true
      configuration:
        clientId: "${secrets.google.client-id}"
    produce-options:
      headers:
        - key: langstream-client-user-id
          value-from-authentication: subject
        - key: langstream-client-session-id
          value-from-parameters: sessionId
""",
            "python/example.py": "class ChatBotService: ...\n",
        }
    )
    secrets = write_file(
        "secrets.yaml",
        """
secrets:
  - id: google
    data:
      client-id: "123.apps.googleusercontent.com"
""",
    )
    app = load_application(app_dir, secrets=secrets)
    gateway = app.gateway("my-service", "service")
    assert gateway is not None and gateway.service is not None
    assert gateway.service.agent_id == "my-service-agent"
    assert gateway.authentication is not None
    assert gateway.authentication.provider == "google"
    assert gateway.authentication.allow_test_mode is True
    assert gateway.authentication.configuration["clientId"] == "123.apps.googleusercontent.com"
    headers = {h.key: h for h in gateway.produce_headers}
    assert headers["langstream-client-user-id"].value_from_authentication == "subject"
    assert headers["langstream-client-session-id"].value_from_parameters == "sessionId"
    plan = plan_application(app)
    assert [(e.id, e.component) for e in plan.executors] == [("my-service-agent", "service")]
    assert plan.executors[0].input_topic is None


def test_legacy_spellings(write_app: WriteApp, write_file: Callable[[str, str], Path]) -> None:
    """``produceOptions`` and ``{{ secrets.x.y }}`` were accepted by LangStream."""
    app_dir = write_app(
        {
            "pipeline.yaml": TOPICS,
            "gateways.yaml": """
gateways:
  - id: in
    type: produce
    topic: questions-topic
    authentication:
      provider: google
      configuration:
        clientId: "{{ secrets.google.client-id }}"
    produceOptions:
      headers:
        - valueFromAuthentication: email
""",
        }
    )
    secrets = write_file(
        "secrets.yaml",
        """
secrets:
  - id: google
    data: {client-id: abc}
""",
    )
    gateway = load_application(app_dir, secrets=secrets).gateway("in", "produce")
    assert gateway is not None and gateway.authentication is not None
    assert gateway.authentication.configuration["clientId"] == "abc"
    assert gateway.authentication.allow_test_mode is False
    assert [(h.key, h.value_from_authentication) for h in gateway.produce_headers] == [
        ("email", "email")
    ]
