"""``sluice validate`` and ``sluice plan`` as a user runs them: real processes, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
COUNTER = ROOT / "examples" / "counter"


def sluice(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_validate_the_example() -> None:
    result = sluice("validate", COUNTER)
    assert result.returncode == 0, result.stderr
    assert "counter: valid — 1 agent(s) in 1 executor(s), 2 topic(s), 3 gateway(s)" in result.stdout


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    app = tmp_path / "broken"
    app.mkdir()
    (app / "pipeline.yaml").write_text(
        "topics:\n  - name: questions\npipeline:\n  - type: python-procesor\n    input: questoins\n"
    )
    secret = "do-not-print-me"
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(f"secrets:\n  - id: x\n    data: {{k: {secret}}}\n")
    result = sluice("validate", app, "-s", secrets)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "the application has 2 errors:" in result.stderr
    assert 'pipeline.yaml:4 pipeline[0].type: unknown agent type "python-procesor"' in result.stderr
    assert (
        'pipeline.yaml:5 pipeline[0].input: topic "questoins" is not declared; did you mean '
        '"questions"?' in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert secret not in result.stderr


def test_plan_json_and_yaml_agree() -> None:
    as_json = sluice("plan", COUNTER, "-o", "json")
    as_yaml = sluice("plan", COUNTER)
    assert as_json.returncode == 0 and as_yaml.returncode == 0
    plan = json.loads(as_json.stdout)
    assert plan == yaml.safe_load(as_yaml.stdout)
    assert [e["id"] for e in plan["executors"]] == ["counter"]
    assert plan["executors"][0]["disks"] == [
        {"agent-id": "counter", "size": 50 * 1024 * 1024, "type": "default"}
    ]


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = sluice("plan", tmp_path / "nope")
    assert result.returncode == 1
    assert "is not a directory" in result.stderr
    assert "Traceback" not in result.stderr
