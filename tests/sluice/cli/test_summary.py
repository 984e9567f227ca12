"""The summary ``sluice run`` prints: it says "Ready" only when every executor runs."""

from __future__ import annotations

from pathlib import Path

from sluice.application import load_application, plan_application
from sluice.cli.summary import Line, summary_lines
from sluice.local import Worker

PIPELINE = """
topics:
  - {name: questions, creation-mode: create-if-not-exists}
  - {name: answers, creation-mode: create-if-not-exists}
pipeline:
  - {id: echo, type: python-processor, input: questions, output: answers,
     configuration: {className: echo.Echo}}
  - {id: api, type: python-service, configuration: {className: api.Api}}
"""


def summary(tmp_path: Path, workers: list[Worker]) -> list[Line]:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    app = load_application(tmp_path)
    return summary_lines(
        app,
        plan_application(app),
        tenant="default",
        base_url="http://127.0.0.1:8091",
        bootstrap="127.0.0.1:9092",
        workers=workers,
        ui=False,
        elapsed=3.21,
    )


def test_ready_when_every_executor_runs(tmp_path: Path) -> None:
    lines = summary(tmp_path, [Worker("echo", 10, 1001), Worker("api", 11, 1002, 8000)])
    assert lines[0] == Line(f"Ready in 3.2 s: default/{tmp_path.name}", "ready")
    assert not [line for line in lines if line.style == "problem"]
    assert any("service http://127.0.0.1:8000" in line.text for line in lines)


def test_executors_not_running_are_named_with_their_reason(tmp_path: Path) -> None:
    reason = "ModuleNotFoundError: No module named 'langserve'"
    workers = [
        Worker("echo", 10, 1001),
        Worker("api", None, 1002, 8000, running=False, reason=reason),
    ]
    lines = summary(tmp_path, workers)
    assert lines[0].style == "not-ready"
    assert not lines[0].text.startswith("Ready")
    assert "1 of 2 executor(s) not running" in lines[0].text
    problems = [line.text for line in lines if line.style == "problem"]
    assert problems[1:] == [f"  api [api (python-service)]: {reason}"]
    # No service address for a service that does not run.
    assert not any("service http://" in line.text for line in lines)
