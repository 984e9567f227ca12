"""The worker's and the gateway's command lines: what sluice run and the Knative generator build
is what the worker and ``python -m gateway`` parse, field for field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import gateway_settings
from sluice.commands import GatewayCommand, GatewayOptions, WorkerCommand
from sluice.errors import SluiceError
from workers.main import parse_args

COMMANDS = [
    WorkerCommand(Path("app"), "echo", "127.0.0.1:9092"),
    WorkerCommand(
        Path("/app"),
        "api",
        "kafka-0:9092,kafka-1:9092",
        instance=Path("/etc/sluice/secrets/instance.yaml"),
        secrets=Path("/etc/sluice/secrets/secrets.yaml"),
        tenant="team",
        app_id="bot",
        service_port=8000,
        health_port=8081,
        state_dir=Path("/persistent-state"),
        state_volumes=True,
    ),
    WorkerCommand(Path("app"), "sink", "k:9092", push=True, port=8080, host="127.0.0.1"),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_from_argv_reads_back_what_to_argv_wrote(command: WorkerCommand) -> None:
    assert WorkerCommand.from_argv(command.to_argv()) == command


def test_the_worker_fills_what_the_command_line_leaves_out_from_its_environment(
    tmp_path: Path,
) -> None:
    argv = WorkerCommand(Path("app"), "echo", "k:9092").to_argv()
    settings = parse_args(argv, {"PORT": "9000", "SLUICE_STATE_DIR": str(tmp_path)})
    assert (settings.port, settings.state_root) == (9000, tmp_path)
    assert (settings.health_port, settings.service_port, settings.host) == (0, 8000, "0.0.0.0")
    given = WorkerCommand(Path("app"), "echo", "k:9092", port=7000, state_dir=Path("s"))
    settings = parse_args(given.to_argv(), {"PORT": "9000", "SLUICE_STATE_DIR": str(tmp_path)})
    assert (settings.port, settings.state_root) == (7000, Path("s"))


def test_the_order_is_the_one_the_knative_manifests_pin() -> None:
    assert COMMANDS[1].to_argv() == [
        "/app",
        "--bootstrap-servers",
        "kafka-0:9092,kafka-1:9092",
        "-i",
        "/etc/sluice/secrets/instance.yaml",
        "-s",
        "/etc/sluice/secrets/secrets.yaml",
        "--tenant",
        "team",
        "--app-id",
        "bot",
        "--executor",
        "api",
        "--service-port",
        "8000",
        "--health-port",
        "8081",
        "--state-dir",
        "/persistent-state",
        "--state-volumes",
    ]


GATEWAY_COMMANDS = [
    GatewayCommand(Path("app"), "127.0.0.1:9092"),
    GatewayCommand(
        Path("/app"),
        "kafka-0:9092,kafka-1:9092",
        instance=Path("/etc/sluice/secrets/instance.yaml"),
        secrets=Path("/etc/sluice/secrets/secrets.yaml"),
        tenant="team",
        app_id="bot",
        port=8080,
        options=GatewayOptions(client_ip_header="X-Forwarded-For"),
        service_urls={"chat": "http://bot-chat.team.svc.cluster.local", "ask": "http://a"},
    ),
    GatewayCommand(
        Path("app"),
        "k:9092",
        host="127.0.0.1",
        options=GatewayOptions(
            allowed_origins=("https://a.example", "http://localhost:3000"),
            auth_failure_limit=0,
            drain_timeout=2.5,
            produce_timeout=10.0,
            test_auth="jwt",
            test_auth_config=("jwksUri=http://127.0.0.1:1/jwks", "audience=me"),
        ),
    ),
]


@pytest.mark.parametrize("command", GATEWAY_COMMANDS)
def test_the_gateway_reads_back_what_to_argv_wrote(command: GatewayCommand) -> None:
    assert GatewayCommand.from_argv(command.to_argv()) == command


def test_the_gateway_defaults_are_the_settings_defaults() -> None:
    command = GatewayCommand.from_argv(["app", "--bootstrap-servers", "k:9092"])
    assert command == GatewayCommand(Path("app"), "k:9092")
    settings = gateway_settings(command.options, command.tenant)
    assert (settings.shutdown_grace, settings.produce_timeout) == (35.0, 30.0)
    assert (settings.auth_failure_burst, settings.allowed_origins) == (100, None)


def test_a_malformed_service_url_is_named() -> None:
    argv = ["app", "--bootstrap-servers", "k:9092", "--service-url", "chat=ftp://x"]
    with pytest.raises(SluiceError, match="--service-url 'chat=ftp://x': expected AGENT_ID="):
        GatewayCommand.from_argv(argv)


def test_the_gateway_order_is_the_one_the_knative_manifests_pin() -> None:
    assert GATEWAY_COMMANDS[1].to_argv() == [
        "/app",
        "--bootstrap-servers",
        "kafka-0:9092,kafka-1:9092",
        "-i",
        "/etc/sluice/secrets/instance.yaml",
        "-s",
        "/etc/sluice/secrets/secrets.yaml",
        "--tenant",
        "team",
        "--app-id",
        "bot",
        "--port",
        "8080",
        "--client-ip-header",
        "X-Forwarded-For",
        "--service-url",
        "ask=http://a",
        "--service-url",
        "chat=http://bot-chat.team.svc.cluster.local",
    ]
