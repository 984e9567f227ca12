"""What ``sluice validate`` says about camel-source before anything runs, and the jar prefetch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from sluice.application import load_application
from workers.camel import CamelSettings
from workers.camel.preflight import check_camel

PIPELINE = {
    "topics": [{"name": "ticks", "creation-mode": "create-if-not-exists"}],
    "pipeline": [
        {
            "id": "timer",
            "type": "camel-source",
            "output": "ticks",
            "configuration": {"component-uri": "timer:tick"},
        }
    ],
}


def write(
    app: Path, pipeline: Mapping[str, object], configuration: Mapping[str, object] | None = None
) -> Path:
    app.mkdir(parents=True, exist_ok=True)
    (app / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    if configuration is not None:
        (app / "configuration.yaml").write_text(yaml.safe_dump({"configuration": configuration}))
    return app


def sluice(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


@pytest.mark.java  # its second half finds the JDK and runs `java -version`
def test_validate_needs_java_for_camel_source(tmp_path: Path) -> None:
    app = write(tmp_path / "camel", PIPELINE)
    missing = sluice("validate", app, env={"JAVA_HOME": str(tmp_path / "no-jdk")})
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"error: camel-source agent timer: Java was not found (JAVA_HOME={tmp_path / 'no-jdk'}); "
        "Java 17+ is required, install a JDK or set JAVA_HOME"
    )
    found = sluice("validate", app, env={})
    assert found.returncode == 0, found.stderr
    assert "camel: valid — 1 agent(s)" in found.stdout


def test_validate_without_camel_source_needs_no_java(tmp_path: Path) -> None:
    pipeline = {
        "pipeline": [{"id": "p", "type": "identity", "input": "a", "output": "b"}],
        "topics": [{"name": "a"}, {"name": "b"}],
    }
    result = sluice(
        "validate", write(tmp_path / "plain", pipeline), env={"JAVA_HOME": "/nonexistent"}
    )
    assert result.returncode == 0, result.stderr


async def test_knative_deployments_only_warn_and_dependencies_are_checked(tmp_path: Path) -> None:
    app = write(
        tmp_path / "camel",
        PIPELINE,
        {
            "dependencies": [
                "org.apache.camel:camel-quartz",
                "org.apache.camel:camel-timer:4.8.0",
                {"name": "site", "url": "https://example.com/x.jar"},
            ]
        },
    )
    instance = tmp_path / "instance.yaml"
    instance.write_text("instance:\n  computeCluster:\n    type: knative\n")
    no_java = CamelSettings(java_home=tmp_path / "no-jdk")
    local = await check_camel(load_application(app), no_java)
    assert [e.split(":")[0] for e in local.errors] == [
        "configuration.yaml dependency (site)",
        "camel-source agent timer",
    ]
    knative = await check_camel(load_application(app, instance=instance), no_java)
    assert knative.errors == [
        "configuration.yaml dependency (site): https://example.com/x.jar: only jars in a Maven repository (.../maven2/<group path>/<artifact>/<version>/<artifact>-<version>.jar) or maven coordinates (group:artifact:version) can be used"
    ]
    assert knative.warnings == [
        "configuration.yaml dependency: org.apache.camel:camel-timer:4.8.0 is used at version "
        "4.22.0, the Camel release Sluice runs",
        f"camel-source agent timer: Java was not found (JAVA_HOME={tmp_path / 'no-jdk'}); Java "
        "17+ is required, install a JDK or set JAVA_HOME (needed to run it here, not in the image)",
    ]


@pytest.mark.usefixtures("camel_jars")
def test_prefetch_prints_the_jar_folder(tmp_path: Path) -> None:
    app = write(tmp_path / "camel", PIPELINE)
    result = subprocess.run(
        [sys.executable, "-m", "workers.camel", str(app)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert folder.name.startswith("camel-4.22.0-")
    assert (folder / "jars.json").is_file()
    assert any(jar.name.startswith("camel-main-") for jar in (folder / "lib").iterdir())
