"""The worker's command line: what sluice run and the Knative generator build is what the
worker parses, field for field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.commands import WorkerCommand
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
