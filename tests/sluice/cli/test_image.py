"""``sluice image``: the Dockerfile of an application's image."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sluice.cli.main import main

EXAMPLES = Path(__file__).parents[3] / "examples"


@pytest.mark.parametrize(
    ("example", "base", "camel"),
    [("counter", "sluice:0.1.0", False), ("camel-files", "sluice-camel:0.1.0", True)],
)
def test_the_dockerfile_adds_the_code_and_for_camel_the_jars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], example: str, base: str, camel: bool
) -> None:
    app = tmp_path / example
    shutil.copytree(EXAMPLES / example, app)
    assert main(["image", str(app), "-t", "registry.example/app:1"]) == 0
    dockerfile = (app / "Dockerfile").read_text()
    assert dockerfile.splitlines()[1] == f"FROM {base}"
    assert "COPY python/ /app/python/" in dockerfile
    assert ("python -m workers.camel" in dockerfile) is camel
    out = capsys.readouterr().out
    assert f"docker build -t registry.example/app:1 {app}" in out


def test_requirements_are_installed_into_python_lib(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLES / "counter", app)
    (app / "python" / "requirements.txt").write_text("httpx\n")
    assert main(["image", str(app), "--from", "registry.example/sluice:2"]) == 0
    dockerfile = (app / "Dockerfile").read_text()
    assert "FROM registry.example/sluice:2" in dockerfile
    assert "-r /app/python/requirements.txt" in dockerfile


def test_an_application_without_python_code_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["image", str(tmp_path / "empty")]) == 1
    assert "has no python/ folder" in capsys.readouterr().err
