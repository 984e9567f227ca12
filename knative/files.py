"""The files the pods read besides the image: the application's YAML, instance and secrets.

:class:`AppFiles` is plain data, so the generator stays pure; :func:`read_app_files` is the edge
that reads them from disk (for ``sluice deploy`` / ``sluice manifests``). The application's code
(``python/``) is not here: it comes with the image, and so does the application's own Python
environment when it has ``python/requirements.txt`` (``sluice image`` builds it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from knative.errors import ManifestError
from sluice.application.placeholders import resolve_environment
from sluice.application.yamlfile import format_path
from sluice.environments import requirements_file
from sluice.errors import Problem

__all__ = ["AppFiles", "read_app_files"]

_SEPARATE: Final = ("instance.yaml", "secrets.yaml")


@dataclass(frozen=True)
class AppFiles:
    """What goes into the application's ConfigMap and Secret.

    ``application``: the top-level ``*.yaml`` files of the application folder by file name, as
    written (placeholders included; they are resolved by the pods). ``instance`` and
    ``secrets``: the instance.yaml and secrets.yaml documents with their ``${NAME}`` environment
    references already resolved (the pods do not have the deployer's environment); both go
    into the Secret, since instance.yaml may hold Kafka credentials. ``python_environment``:
    the application has ``python/requirements.txt``, so its image holds the application's own
    environment and the workers of its Python agents run on that interpreter.
    """

    application: Mapping[str, str]
    instance: Mapping[str, Any] = field(default_factory=lambda: {"instance": {}})
    secrets: Mapping[str, Any] = field(default_factory=lambda: {"secrets": []})
    python_environment: bool = False


def read_app_files(
    directory: str | Path,
    *,
    instance: str | Path | None = None,
    secrets: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> AppFiles:
    """Read an application folder (already validated by ``load_application``) for the cluster.

    ``environ`` resolves ``${NAME}`` references in instance.yaml and secrets.yaml, and their
    ``<file:...>`` references are inlined, as ``load_application`` did with the same mapping.
    """
    app_dir = Path(directory)
    application = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(app_dir.iterdir())
        if path.is_file() and path.suffix == ".yaml" and path.name not in _SEPARATE
    }
    env = environ or {}
    return AppFiles(
        application,
        _document(Path(instance), env) if instance is not None else {"instance": {}},
        _document(Path(secrets), env) if secrets is not None else {"secrets": []},
        python_environment=requirements_file(app_dir) is not None,
    )


def _document(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    resolution = resolve_environment(data, environ, directory=path.parent)
    if resolution.errors:
        raise ManifestError(
            [
                Problem(str(path), format_path(where), message)
                for where, message in resolution.errors
            ]
        )
    value = resolution.value
    if not isinstance(value, dict):
        raise ManifestError([Problem(str(path), "", "must be a YAML mapping")])
    return value
