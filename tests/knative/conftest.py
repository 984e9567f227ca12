from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from knative import Manifest, build_manifests, read_app_files, settings_from_instance
from sluice.application import Application, load_application, plan_application

HERE = Path(__file__).parent
INSTANCE = HERE / "instance.yaml"
SECRETS = HERE / "secrets.yaml"
HTTP_GATEWAYS = HERE.parent / "gateway" / "apps" / "http-gateways"

Build = Callable[[Path], list[Manifest]]
WriteApp = Callable[..., Path]


def build(directory: Path, environ: dict[str, str] | None = None) -> list[Manifest]:
    """The objects of the application in ``directory`` on the test instance."""
    app = load(directory, environ)
    files = read_app_files(directory, instance=INSTANCE, secrets=SECRETS, environ=environ)
    return build_manifests(plan_application(app), app, files, settings_from_instance(app.instance))


def load(directory: Path, environ: dict[str, str] | None = None) -> Application:
    return load_application(directory, instance=INSTANCE, secrets=SECRETS, environ=environ)


def find(objects: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


@pytest.fixture
def write_app(tmp_path: Path) -> WriteApp:
    """Write an application folder from ``{relative path: YAML text}``; returns its path."""

    def write(files: dict[str, str], name: str = "my-app") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return root

    return write
