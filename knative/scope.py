"""What every object of one application shares while it is generated."""

from __future__ import annotations

from dataclasses import dataclass

from knative.settings import DeploySettings

__all__ = ["Scope"]


@dataclass(frozen=True)
class Scope:
    """One application on one cluster: its id, the settings, and its files.

    ``files`` are the names of the application's YAML files (each mounted into the pods'
    application folder); ``checksum`` is that of the ConfigMap's data, on every pod template so
    that new files roll out new pods. ``python_environment``: the image holds the application's
    own Python environment (:data:`knative.pods.APP_ENV_PYTHON`).
    """

    app: str
    settings: DeploySettings
    files: tuple[str, ...]
    checksum: str
    python_environment: bool = False

    @property
    def namespace(self) -> str:
        return self.settings.namespace
