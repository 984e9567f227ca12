from __future__ import annotations

from pathlib import Path

import pytest

from knative import AppFiles, ManifestError, read_app_files
from tests.knative.conftest import WriteApp


def test_only_the_applications_yaml_files(write_app: WriteApp) -> None:
    app = write_app(
        {
            "pipeline.yaml": "pipeline: []\n",
            "gateways.yaml": "gateways: []\n",
            "old.yml": "ignored: true\n",
            "python/agent.py": "x = 1\n",
            "README.md": "# app\n",
        }
    )
    files = read_app_files(app)
    assert files == AppFiles({"gateways.yaml": "gateways: []\n", "pipeline.yaml": "pipeline: []\n"})
    assert files.instance == {"instance": {}} and files.secrets == {"secrets": []}


def test_requirements_mean_the_image_has_the_applications_environment(
    write_app: WriteApp,
) -> None:
    app = write_app({"pipeline.yaml": "pipeline: []\n", "python/agent.py": "x = 1\n"})
    assert read_app_files(app).python_environment is False
    (app / "python" / "requirements.txt").write_text("six\n")
    assert read_app_files(app).python_environment is True


def test_environment_references_are_resolved(write_app: WriteApp, tmp_path: Path) -> None:
    app = write_app({"pipeline.yaml": "pipeline: []\n"})
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("secrets:\n  - id: openai\n    data: {key: '${OPENAI_KEY}'}\n")
    files = read_app_files(app, secrets=secrets, environ={"OPENAI_KEY": "sk-1"})
    assert files.secrets == {"secrets": [{"id": "openai", "data": {"key": "sk-1"}}]}
    # An unset variable is kept as written, as LangStream's CLI keeps it (load_application warns).
    files = read_app_files(app, secrets=secrets, environ={})
    assert files.secrets == {"secrets": [{"id": "openai", "data": {"key": "${OPENAI_KEY}"}}]}


def test_file_references_are_inlined(write_app: WriteApp, tmp_path: Path) -> None:
    app = write_app({"pipeline.yaml": "pipeline: []\n"})
    (tmp_path / "account.json").write_text('{"a": 1}')
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("secrets:\n  - id: g\n    data: {json: '<file:account.json>'}\n")
    files = read_app_files(app, secrets=secrets)
    assert files.secrets == {"secrets": [{"id": "g", "data": {"json": '{"a": 1}'}}]}
    (tmp_path / "account.json").unlink()
    with pytest.raises(ManifestError) as caught:
        read_app_files(app, secrets=secrets)
    [problem] = caught.value.problems
    assert problem.path == "secrets[0].data.json"
    assert "<file:account.json>: cannot read" in problem.message
