"""``sluice init``: each template gives an application that validates, passes the project's
linters, whose generated unit test passes, and that works under ``sluice run``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sluice.application import load_application, plan_application
from sluice.cli.init import TEMPLATES, scaffold
from tests.examples.support import ROOT, run_cli, sluice_run


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_each_template_is_a_valid_application(template: str, tmp_path: Path) -> None:
    written = scaffold(tmp_path / "my-app", template)
    assert {str(p.relative_to(tmp_path / "my-app")) for p in written} == {
        "pipeline.yaml",
        "gateways.yaml",
        "python/my_app.py",
        "tests/test_my_app.py",
        "README.md",
    }
    app = load_application(tmp_path / "my-app")
    assert app.name == "my-app"
    assert plan_application(app).executors
    for tool in (["check"], ["format", "--check"]):
        subprocess.run(
            [sys.executable, "-m", "ruff", *tool, "--config", str(ROOT / "pyproject.toml"), "."],
            cwd=tmp_path / "my-app",
            check=True,
            capture_output=True,
        )


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_each_template_has_a_unit_test_that_passes(template: str, tmp_path: Path) -> None:
    """The generated test runs the agent with sluice.testing, from the application folder, as
    a user runs it: plain pytest, in a process of its own, no Kafka."""
    scaffold(tmp_path / "my-app", template)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path / "my-app",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout


async def test_the_command_refuses_bad_names_and_folders_in_use(tmp_path: Path) -> None:
    code, out, _ = await run_cli("init", str(tmp_path / "fresh"))
    assert code == 0
    assert "sluice run" in out
    code, _, err = await run_cli("init", str(tmp_path / "fresh"))
    assert code == 2
    assert "already exists and is not an empty folder" in err
    code, _, err = await run_cli("init", str(tmp_path / "My_App"))
    assert code == 2
    assert "cannot be an application id" in err
    code, _, err = await run_cli("init", str(tmp_path / "x"), "--template", "nope")
    assert code == 2
    assert "invalid choice: 'nope'" in err


@pytest.mark.kafka
async def test_the_processor_template_answers_a_request(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app_dir = tmp_path / "apps" / "init-processor"
    scaffold(app_dir, "processor")
    async with sluice_run(app_dir, kafka_bootstrap, tmp_path) as running:
        async with httpx.AsyncClient(timeout=60) as http:
            reply = await http.post(running.http_url("service", "ask"), json={"value": "hello"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["record"]["value"] == "You said: hello"


@pytest.mark.kafka
async def test_the_chat_template_streams_its_answer(kafka_bootstrap: str, tmp_path: Path) -> None:
    app_dir = tmp_path / "apps" / "init-chat"
    scaffold(app_dir, "chat")
    async with sluice_run(app_dir, kafka_bootstrap, tmp_path, ["--ui"]) as running:
        args = ["gateway", "chat", "init-chat", "chat", "-p", "sessionId=s1", "-v", "hi"]
        code, out, err = await run_cli(*args, "-u", running.gateway, "--json")
        assert code == 0, err
        frames = [json.loads(line) for line in out.splitlines()]
        assert len(frames) > 3
        text = "".join(frame["record"]["value"] for frame in frames)
        assert text == "You asked: hi. This answer arrives one word at a time."
        async with httpx.AsyncClient(timeout=30) as http:
            page = await http.get(f"{running.gateway}/ui/default/init-chat")
        assert page.status_code == 200
