"""The read-only control-plane API LangStream's CLI reads (``/api/applications``), on the real
gateway and broker: the JSON shapes of LangStream's ``ApplicationDescription``, the token check,
the errors, and a produce/consume round trip driven by the description as the CLI drives it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from gateway.app import create_app
from gateway.description import NOT_SHOWN, ReplicaState, WorkerStates
from gateway.serving import serving
from gateway.settings import API_TOKEN_ENV, GatewaySettings, api_token
from sluice.application import load_application
from sluice.application.plan import REDACTED
from sluice.kafka import KafkaSettings, Producer
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port
from sluice.record import Record
from tests.gateway.support import (
    APP_ID,
    SESSION_HEADER,
    TENANT,
    Served,
    TopicProbe,
    assert_problem,
    receive_json,
    unique,
)

pytestmark = pytest.mark.kafka

TOKEN = "the-instance-token"


def _write_app(directory: Path, inputs: str, outputs: str) -> tuple[Path, Path]:
    """LangStream's python-processor-exclamation shape (a processor between two topics, produce
    and consume gateways keyed by a session parameter), plus a chained agent, a resource, a secret
    and an authenticated chat gateway; the application folder and its secrets file."""
    directory.mkdir()
    (directory / "python").mkdir()
    (directory / "python" / "example.py").write_text("class Exclamation:\n    pass\n")
    (directory / "configuration.yaml").write_text(
        """
configuration:
  resources:
    - type: open-ai-configuration
      name: OpenAI
      configuration:
        url: https://example.invalid
        access-key: "${secrets.openai.key}"
"""
    )
    (directory / "pipeline.yaml").write_text(
        f"""
name: "Exclamation processor"
topics:
  - name: "{inputs}"
    creation-mode: create-if-not-exists
  - name: "{outputs}"
    creation-mode: create-if-not-exists
pipeline:
  - name: "Process using Python"
    type: "python-processor"
    input: "{inputs}"
    configuration:
      className: example.Exclamation
      password: "${{secrets.openai.key}}"
  - name: "Upper"
    type: "compute"
    output: "{outputs}"
    errors:
      on-failure: skip
    configuration:
      fields:
        - name: value
          expression: "fn:uppercase(value)"
"""
    )
    (directory / "gateways.yaml").write_text(
        f"""
gateways:
  - id: produce-input
    type: produce
    topic: {inputs}
    parameters:
      - sessionId
    produceOptions:
      headers:
        - key: langstream-client-session-id
          valueFromParameters: sessionId
  - id: consume-output
    type: consume
    topic: {outputs}
    parameters:
      - sessionId
    consumeOptions:
      filters:
        headers:
          - key: langstream-client-session-id
            valueFromParameters: sessionId
  - id: chat
    type: chat
    authentication:
      provider: jwt
      allow-test-mode: false
      configuration:
        secretKey: "${{secrets.openai.key}}"
    chat-options:
      questions-topic: {inputs}
      answers-topic: {outputs}
      headers:
        - value-from-parameters: sessionId
"""
    )
    secrets = directory.parent / "secrets.yaml"
    secrets.write_text(
        "secrets:\n  - id: openai\n    data:\n      key: sk-very-secret-value-of-more-than-32-bytes\n"
    )
    return directory, secrets


@contextlib.asynccontextmanager
async def _gateway(
    kafka: KafkaSettings,
    tmp_path: Path,
    settings: GatewaySettings | None = None,
    states: WorkerStates | None = None,
) -> AsyncIterator[Served]:
    """The application behind a real gateway on loopback (``worker_states`` as given), its
    topics created first and deleted after."""
    app_dir, secrets = _write_app(tmp_path / "exclamation", unique("in"), unique("out"))
    application = load_application(app_dir, secrets=secrets, name=APP_ID)
    topics = list(application.topics.values())
    await ensure_topics(kafka, topics)

    def worker_states(tenant: str, app: str) -> WorkerStates:
        assert (tenant, app) == (TENANT, APP_ID)
        return states or {}

    quart_app = create_app(
        {(TENANT, APP_ID): application},
        kafka,
        settings or GatewaySettings(),
        worker_states=worker_states if states is not None else None,
    )
    try:
        async with serving(quart_app, LOOPBACK, free_port()) as url:
            yield Served(url, quart_app, application)
    finally:
        await delete_topics(kafka, [t.name for t in topics])


def _connection(kind: str, definition: str, dead_letter: bool = False) -> dict[str, Any]:
    return {"connectionType": kind, "definition": definition, "enableDeadletterQueue": dead_letter}


def _headers(parameter: str, key: str = "langstream-client-session-id") -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "value": None,
            "valueFromParameters": parameter,
            "valueFromAuthentication": None,
        }
    ]


def _topic(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "config": None,
        "options": None,
        "keySchema": None,
        "valueSchema": None,
        "partitions": 0,
        "implicit": False,
        "creation-mode": "create-if-not-exists",
        "deletion-mode": "none",
    }


def _expected(served: Served, replicas: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The description LangStream's control plane would give of the test application (fields
    and names from its ApplicationDescription, Gateway, AgentConfiguration, TopicDefinition).
    ``replicas`` are those of the python-processor's executor; the compute agent, which
    Sluice runs in an executor of its own (through a topic it adds), has none."""
    gateways = {g.id: g for g in served.application.gateways}
    inputs = gateways["produce-input"].topic
    outputs = gateways["consume-output"].topic
    assert inputs is not None and outputs is not None
    first, second = "pipeline-python-processor-1", "pipeline-compute-2"
    defaults = {"parallelism": 1, "size": 1}
    return {
        "application-id": APP_ID,
        "application": {
            "resources": {
                "OpenAI": {
                    "id": "OpenAI",
                    "name": "OpenAI",
                    "type": "open-ai-configuration",
                    "configuration": {"url": NOT_SHOWN, "access-key": NOT_SHOWN},
                }
            },
            "modules": [
                {
                    "id": "default",
                    "pipelines": [
                        {
                            "id": "pipeline",
                            "module": "default",
                            "name": "Exclamation processor",
                            "resources": defaults,
                            "errors": {"retries": 0, "on-failure": "fail"},
                            "agents": [
                                {
                                    "id": first,
                                    "name": "Process using Python",
                                    "type": "python-processor",
                                    "input": _connection("TOPIC", inputs),
                                    "output": _connection("AGENT", second),
                                    "configuration": {
                                        "className": "example.Exclamation",
                                        "password": REDACTED,
                                    },
                                    "resources": defaults,
                                    "errors": {"retries": 0, "on-failure": "fail"},
                                },
                                {
                                    "id": second,
                                    "name": "Upper",
                                    "type": "compute",
                                    "input": _connection("AGENT", first),
                                    "output": _connection("TOPIC", outputs),
                                    "configuration": {
                                        "fields": [
                                            {"name": "value", "expression": "fn:uppercase(value)"}
                                        ]
                                    },
                                    "resources": defaults,
                                    "errors": {"retries": 0, "on-failure": "skip"},
                                },
                            ],
                        }
                    ],
                    "topics": [_topic(inputs), _topic(outputs)],
                }
            ],
            "gateways": {
                "gateways": [
                    {
                        "id": "produce-input",
                        "type": "produce",
                        "topic": inputs,
                        "authentication": None,
                        "parameters": ["sessionId"],
                        "produceOptions": {"headers": _headers("sessionId")},
                        "consumeOptions": None,
                        "chat-options": None,
                        "service-options": None,
                        "events-topic": None,
                    },
                    {
                        "id": "consume-output",
                        "type": "consume",
                        "topic": outputs,
                        "authentication": None,
                        "parameters": ["sessionId"],
                        "produceOptions": None,
                        "consumeOptions": {"filters": {"headers": _headers("sessionId")}},
                        "chat-options": None,
                        "service-options": None,
                        "events-topic": None,
                    },
                    {
                        "id": "chat",
                        "type": "chat",
                        "topic": None,
                        "authentication": {
                            "provider": "jwt",
                            "configuration": {"secretKey": NOT_SHOWN},
                            "allow-test-mode": False,
                        },
                        "parameters": None,
                        "produceOptions": None,
                        "consumeOptions": None,
                        "chat-options": {
                            "questions-topic": inputs,
                            "answers-topic": outputs,
                            "headers": _headers("sessionId", key="sessionId"),
                        },
                        "service-options": None,
                        "events-topic": None,
                    },
                ]
            },
            "instance": {
                "streamingCluster": {"type": "kafka", "configuration": {}},
                "computeCluster": {"type": "local", "configuration": {}},
                "globals": None,
            },
        },
        "status": {
            "status": {"status": "DEPLOYED", "reason": None},
            "executors": [
                {
                    "id": second,
                    "status": {"status": "DEPLOYED", "reason": None},
                    "replicas": [],
                },
                {
                    "id": first,
                    "status": {"status": "DEPLOYED", "reason": None},
                    "replicas": list(replicas),
                },
            ],
        },
    }


def _app_url(served: Served, tenant: str = TENANT, app: str | None = APP_ID) -> str:
    url = f"{served.url}/api/applications/{tenant}"
    return url if app is None else f"{url}/{app}"


async def test_get_and_list_describe_the_application_in_langstreams_shape(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with (
        _gateway(KafkaSettings(kafka_bootstrap), tmp_path) as served,
        httpx.AsyncClient(timeout=10) as client,
    ):
        got = await client.get(_app_url(served), params={"stats": "false"})
        listed = await client.get(_app_url(served, app=None))
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("application/json")
    assert got.json() == _expected(served)
    assert listed.status_code == 200, listed.text
    assert listed.json() == [_expected(served)]
    # What the CLI's table reads (ListApplicationCmd) is there, and no secret value anywhere.
    assert "sk-very-secret-value-of-more-than-32-bytes" not in got.text
    assert "sk-very-secret-value-of-more-than-32-bytes" not in listed.text


async def test_replicas_tell_the_workers_states(kafka_bootstrap: str, tmp_path: Path) -> None:
    states = {
        "pipeline-python-processor-1": (
            ReplicaState("RUNNING"),
            ReplicaState("ERROR", "ModuleNotFoundError: No module named 'example'"),
        )
    }
    async with (
        _gateway(KafkaSettings(kafka_bootstrap), tmp_path, states=states) as served,
        httpx.AsyncClient(timeout=10) as client,
    ):
        body = (await client.get(_app_url(served))).json()
    inputs = next(g.topic for g in served.application.gateways if g.id == "produce-input")
    agents = [
        {
            "agent-id": "topic-source",
            "agent-type": "topic-source",
            "component-type": "SOURCE",
            "info": {"topic": inputs},
        },
        {
            "agent-id": "pipeline-python-processor-1",
            "agent-type": "python-processor",
            "component-type": "PROCESSOR",
            "info": {},
        },
        {
            "agent-id": "topic-sink",
            "agent-type": "topic-sink",
            "component-type": "SINK",
            # The topic the planner puts between the two executors, as LangStream's does.
            "info": {"topic": "agent-pipeline-compute-2-input"},
        },
    ]
    replicas: list[dict[str, Any]] = [
        {
            "id": f"{APP_ID}-pipeline-python-processor-1-0",
            "status": "RUNNING",
            "reason": None,
            "agents": agents,
        },
        {
            "id": f"{APP_ID}-pipeline-python-processor-1-1",
            "status": "ERROR",
            "reason": "ModuleNotFoundError: No module named 'example'",
            "agents": agents,
        },
    ]
    assert body == _expected(served, replicas)


async def test_unknown_tenant_or_application_is_404(kafka_bootstrap: str, tmp_path: Path) -> None:
    async with (
        _gateway(KafkaSettings(kafka_bootstrap), tmp_path) as served,
        httpx.AsyncClient(timeout=10) as client,
    ):
        no_app = await client.get(_app_url(served, app="other-app"))
        no_tenant_app = await client.get(_app_url(served, tenant="other", app=APP_ID))
        no_tenant = await client.get(_app_url(served, tenant="other", app=None))
        # apps logs, apps download: not served (the logs are sluice run's output, or the pods').
        logs = await client.get(f"{_app_url(served)}/logs", params={"format": "text"})
        code = await client.get(f"{_app_url(served)}/code")
    assert_problem(logs, 404)
    assert_problem(code, 404)
    assert_problem(no_app, 404, f"application other-app of tenant {TENANT} not found")
    assert_problem(no_tenant_app, 404, f"application {APP_ID} of tenant other not found")
    assert_problem(no_tenant, 404, "tenant other not found")


async def test_writes_answer_use_sluice_deploy(kafka_bootstrap: str, tmp_path: Path) -> None:
    async with (
        _gateway(KafkaSettings(kafka_bootstrap), tmp_path) as served,
        httpx.AsyncClient(timeout=10) as client,
    ):
        url = _app_url(served)
        # As LangStream's CLI sends them: apps deploy, apps update, apps delete.
        deploy = await client.post(
            url, params={"dry-run": "false"}, files={"app": ("app.zip", b"PK")}
        )
        update = await client.patch(url, files={"app": ("app.zip", b"PK")})
        delete = await client.delete(url, params={"force": "false"})
        tenant_post = await client.post(_app_url(served, app=None))
        still = await client.get(url)
    for answer in (deploy, update, delete, tenant_post):
        detail = assert_problem(answer, 405)
        assert "sluice deploy" in detail and "sluice delete" in detail
        assert answer.headers["allow"] == "GET"
    assert still.status_code == 200


async def test_a_token_set_on_the_instance_is_required(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = GatewaySettings(api_token=TOKEN)
    async with (
        _gateway(KafkaSettings(kafka_bootstrap), tmp_path, settings) as served,
        httpx.AsyncClient(timeout=10) as client,
    ):
        url = _app_url(served)
        missing = await client.get(url)
        wrong = await client.get(url, headers={"Authorization": "Bearer nope"})
        basic = await client.get(url, headers={"Authorization": f"Basic {TOKEN}"})
        listed_missing = await client.get(_app_url(served, app=None))
        write_missing = await client.delete(url)
        good = {"Authorization": f"Bearer {TOKEN}"}
        right = await client.get(url, headers=good)
        listed = await client.get(_app_url(served, app=None), headers=good)
        write = await client.delete(url, headers=good)
        # The gateways themselves keep their own authentication: the token is not asked there.
        produced = await client.post(
            served.http("produce", "produce-input"),
            params={"param:sessionId": "s1"},
            json={"value": "hi"},
        )
    assert "needs the token" in assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    for refused in (wrong, basic):
        assert "not the Sluice instance's" in assert_problem(refused, 401)
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert TOKEN not in refused.text
    assert_problem(listed_missing, 401)
    assert_problem(write_missing, 401)
    assert right.status_code == 200 and right.json()["application-id"] == APP_ID
    assert listed.status_code == 200 and len(listed.json()) == 1
    assert_problem(write, 405)
    assert produced.status_code == 200, produced.text


async def test_failed_tokens_count_against_the_clients_budget(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = GatewaySettings(api_token=TOKEN, auth_failure_burst=2)
    async with (
        _gateway(KafkaSettings(kafka_bootstrap), tmp_path, settings) as served,
        httpx.AsyncClient(timeout=10) as client,
    ):
        wrong = {"Authorization": "Bearer nope"}
        first = [await client.get(_app_url(served), headers=wrong) for _ in range(2)]
        limited = await client.get(_app_url(served), headers={"Authorization": f"Bearer {TOKEN}"})
    assert [r.status_code for r in first] == [401, 401]
    assert_problem(limited, 429)
    assert "retry-after" in limited.headers


def test_the_token_comes_from_the_environment() -> None:
    assert api_token({API_TOKEN_ENV: "  abc  "}) == "abc"
    assert api_token({API_TOKEN_ENV: "   "}) is None
    assert api_token({}) is None
    assert TOKEN not in repr(GatewaySettings(api_token=TOKEN))


async def test_a_client_driven_by_the_description_round_trips(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """What LangStream's CLI does for ``gateway produce`` and ``gateway consume``: read the
    description, find the gateway by id and type, pass its parameters, connect to
    ``/v1/{type}/{tenant}/{application}/{gateway}``. No worker runs here: the answer the
    processor would write is written to the output topic by this test."""
    kafka = KafkaSettings(kafka_bootstrap)
    async with (
        _gateway(kafka, tmp_path) as served,
        httpx.AsyncClient(timeout=10) as client,
    ):
        description = (await client.get(_app_url(served), params={"stats": "false"})).json()
        found = {
            (g["id"], g["type"]): g for g in description["application"]["gateways"]["gateways"]
        }
        consume = found[("consume-output", "consume")]
        produce = found[("produce-input", "produce")]
        session = str(uuid.uuid4())
        base = served.ws_url

        def url(kind: str, gateway: Mapping[str, Any]) -> str:
            query = "&".join(f"param:{p}={session}" for p in gateway["parameters"])
            return f"{base}/v1/{kind}/{TENANT}/{APP_ID}/{gateway['id']}?{query}"

        async with (
            TopicProbe(kafka, served.application.topics.values()) as probe,
            connect(url("consume", consume)) as reader,
        ):
            async with connect(url("produce", produce)) as writer:
                await writer.send(json.dumps({"value": "Hello"}))
                assert await receive_json(writer) == {"status": "OK", "reason": None}
            [question] = await probe.records(produce["topic"])
            assert question.value == "Hello"
            assert question.headers == {SESSION_HEADER: session}
            async with Producer(kafka) as producer:
                await producer.send(
                    consume["topic"],
                    Record("Hello!!", headers={SESSION_HEADER: session}),
                    source="test",
                )
            pushed = await receive_json(reader)
    assert pushed["record"] == {
        "key": None,
        "value": "Hello!!",
        "headers": {SESSION_HEADER: session},
    }


async def test_the_knative_entry_point_serves_it_with_the_token_of_its_environment(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """``python -m gateway``, as the gateway Service runs it: the tenant is the namespace it is
    given, the token comes from SLUICE_API_TOKEN, no worker states (executors without replicas)."""
    app_dir, secrets = _write_app(tmp_path / "exclamation", unique("in"), unique("out"))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", str(app_dir), "--bootstrap-servers", kafka_bootstrap,
        "-s", str(secrets), "--tenant", "team", "--app-id", "bot", "--host", "127.0.0.1",
        "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, API_TOKEN_ENV: TOKEN},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/applications/team"
    try:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            refused = await client.get(f"{base}/bot")
            answered = await client.get(f"{base}/bot", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert_problem(refused, 401)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["application-id"] == "bot"
    assert [(e["id"], e["replicas"]) for e in body["status"]["executors"]] == [
        ("pipeline-compute-2", []),
        ("pipeline-python-processor-1", []),
    ]
    assert TOKEN.encode() not in output
    assert process.returncode == 0, output.decode()
