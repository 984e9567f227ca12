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
    assert 'agent #1 (pipeline.yaml:4) type: unknown agent type "python-procesor"' in result.stderr
    assert (
        'agent #1 (pipeline.yaml:5) input: topic "questoins" is not declared; did you mean '
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


def _app_with_a_secret(tmp_path: Path, agent_type: str = "identity") -> tuple[Path, Path]:
    app = tmp_path / "with-secret"
    app.mkdir()
    (app / "pipeline.yaml").write_text(
        "topics:\n"
        "  - name: questions\n"
        "  - name: answers\n"
        "pipeline:\n"
        "  - id: chat\n"
        f"    type: {agent_type}\n"
        "    input: questions\n"
        "    output: answers\n"
        "    configuration:\n"
        '      key: "${secrets.llm.key}"\n'
        '      auth: "Bearer ${secrets.llm.key}"\n'
        '      headers: [{name: x, value: "${secrets.llm.key}"}]\n'
        "      model: small\n"
    )
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        "secrets:\n  - id: llm\n    data:\n      key: sk-do-not-print\n"
        '      region: "${SLUICE_TEST_UNSET_REGION}"\n'
    )
    return app, secrets


def test_plan_hides_secret_values_unless_asked(tmp_path: Path) -> None:
    app, secrets = _app_with_a_secret(tmp_path)
    for output in ("json", "yaml"):
        hidden = sluice("plan", app, "-s", secrets, "-o", output)
        assert hidden.returncode == 0, hidden.stderr
        assert "sk-do-not-print" not in hidden.stdout + hidden.stderr
    configuration = json.loads(sluice("plan", app, "-s", secrets, "-o", "json").stdout)[
        "executors"
    ][0]["agents"][0]["configuration"]
    assert configuration == {
        "key": "(a secret value)",
        "auth": "(a secret value)",
        "headers": [{"name": "x", "value": "(a secret value)"}],
        "model": "small",
    }
    shown = sluice("plan", app, "-s", secrets, "-o", "json", "--show-secrets")
    assert shown.returncode == 0, shown.stderr
    agent = json.loads(shown.stdout)["executors"][0]["agents"][0]
    assert agent["configuration"]["auth"] == "Bearer sk-do-not-print"
    assert "secret-paths" not in agent


def test_validate_warns_about_an_unset_variable_in_the_secrets_file(tmp_path: Path) -> None:
    app, secrets = _app_with_a_secret(tmp_path)
    result = sluice("validate", app, "-s", secrets)
    assert result.returncode == 0, result.stderr
    assert (
        f'warning: secret "llm" ({secrets}:5) data.region: environment variable '
        "SLUICE_TEST_UNSET_REGION is not set: ${SLUICE_TEST_UNSET_REGION} is kept as written"
    ) in result.stderr
    assert "sk-do-not-print" not in result.stdout + result.stderr


def test_validate_refuses_an_agent_type_sluice_cannot_run_yet(tmp_path: Path) -> None:
    app, secrets = _app_with_a_secret(tmp_path, "source")
    pipeline = app / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("    input: questions\n", ""))  # a source
    result = sluice("validate", app, "-s", secrets)
    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        'agent "chat" (pipeline.yaml:6) type: "source" is a LangStream built-in '
        "agent type that Sluice does not support yet\n"
    ) in result.stderr
    [runs] = [
        line for line in result.stderr.splitlines() if "Sluice runs these agent types" in line
    ]
    assert {"camel-source", "identity", "python-processor", "drop-fields", "cast"} <= set(
        runs.partition(": ")[2].split(", ")
    )
    assert "Traceback" not in result.stderr
    # It is still a valid LangStream application: it plans.
    assert sluice("plan", app, "-s", secrets).returncode == 0
