"""``sluice image``: the Dockerfile of an application's image."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from knative.pods import APP_ENV_DIR
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


def test_requirements_become_the_applications_environment_at_build_time(tmp_path: Path) -> None:
    """The image builds python/requirements.txt into the application's own environment (the
    code `sluice run` uses, at the path the Knative manifests start Python workers with), not
    into Sluice's interpreter or python/lib."""
    app = tmp_path / "app"
    shutil.copytree(EXAMPLES / "counter", app)
    (app / "python" / "requirements.txt").write_text("httpx\n")
    assert main(["image", str(app), "--from", "registry.example/sluice:2"]) == 0
    lines = (app / "Dockerfile").read_text().splitlines()
    assert lines[1] == "FROM registry.example/sluice:2"
    [build] = [line for line in lines if line.startswith("RUN ")]
    assert build == (
        "RUN UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 python -m sluice.environments /app "
        f"--into {APP_ENV_DIR} --push"
    )
    # Built after the code is copied (local requirements), as root; the workers run as 1000.
    assert lines.index("COPY python/ /app/python/") < lines.index("USER root")
    assert lines.index("USER root") < lines.index(build) < lines.index("USER 1000")
    assert lines[-1] == "USER 1000"
    assert "pip install" not in "\n".join(lines)


def test_without_requirements_no_environment_is_built(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLES / "counter", app)
    assert not (app / "python" / "requirements.txt").exists()
    assert main(["image", str(app)]) == 0
    dockerfile = (app / "Dockerfile").read_text()
    assert "sluice.environments" not in dockerfile and "USER" not in dockerfile


def test_camel_jars_and_requirements_together(tmp_path: Path) -> None:
    app = tmp_path / "camel-files"
    shutil.copytree(EXAMPLES / "camel-files", app)
    (app / "python").mkdir(exist_ok=True)
    (app / "python" / "requirements.txt").write_text("httpx\n")
    assert main(["image", str(app)]) == 0
    lines = (app / "Dockerfile").read_text().splitlines()
    runs = [line for line in lines if line.startswith("RUN ")]
    assert [r.split(" python -m ")[1].split()[0] for r in runs] == [
        "sluice.environments",
        "workers.camel",
    ]
    # The Camel jars are resolved as the image's user, after the environment's root step.
    assert lines.index("USER 1000") < lines.index(runs[1])


def test_an_application_without_python_code_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["image", str(tmp_path / "empty")]) == 1
    assert "has no python/ folder" in capsys.readouterr().err
