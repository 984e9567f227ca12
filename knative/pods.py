"""What every pod of an application has: the image's folders, the mounted files, the arguments
that tell a worker or the gateway where everything is, and the resources of a ``size``.

Layout inside a pod (the image puts the application's ``python/`` at ``/app/python`` and, when
it has ``python/requirements.txt``, the application's own Python environment at
``/opt/sluice/app-env``, built by ``sluice image``'s Dockerfile):

- ``/app/<file>.yaml``: each application file, mounted from the ConfigMap one by one (``subPath``)
  so that ``/app`` is the same application folder as on a laptop, code included;
- ``/etc/sluice/secrets/instance.yaml`` and ``secrets.yaml``: the Secret;
- ``/etc/sluice/kafka/ca.crt``, ``user.pem``: the Kafka certificates, when instance.yaml names
  them by file (:mod:`knative.kafka_secret`);
- ``/persistent-state/<agent-id>``: an agent's disk (:mod:`knative.storage`).
"""

from __future__ import annotations

from typing import Any, Final

from knative.kafka_secret import kafka_mounts, kafka_volumes
from knative.labels import CONFIG_CHECKSUM
from knative.names import config_map_name, secret_name
from knative.scope import Scope

__all__ = [
    "APP_DIR",
    "APP_ENV_DIR",
    "APP_ENV_PYTHON",
    "HTTP_PORT",
    "SECRETS_DIR",
    "app_mounts",
    "app_volumes",
    "http_probe",
    "pod_template",
    "resources",
]

APP_DIR: Final = "/app"
APP_ENV_DIR: Final = "/opt/sluice/app-env"
"""Where an application image holds the environment built from ``python/requirements.txt``."""
APP_ENV_PYTHON: Final = f"{APP_ENV_DIR}/bin/python"
"""The interpreter the workers of an application's Python agents run on, when it has one."""
SECRETS_DIR: Final = "/etc/sluice/secrets"
HTTP_PORT: Final = 8080
"""The port Knative sends requests to (``PORT``), unless a kind of pod says otherwise."""
CPU_PER_SIZE_MILLI: Final = 500
MEMORY_PER_SIZE_MI: Final = 512
_APP_VOLUME: Final = "app"
_SECRETS_VOLUME: Final = "secrets"


def app_volumes(scope: Scope) -> list[dict[str, Any]]:
    return [
        {"name": _APP_VOLUME, "configMap": {"name": config_map_name(scope.app)}},
        {"name": _SECRETS_VOLUME, "secret": {"secretName": secret_name(scope.app)}},
        *kafka_volumes(scope),
    ]


def app_mounts(scope: Scope) -> list[dict[str, Any]]:
    files = [
        {"name": _APP_VOLUME, "mountPath": f"{APP_DIR}/{name}", "subPath": name, "readOnly": True}
        for name in scope.files
    ]
    return [
        *files,
        {"name": _SECRETS_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True},
        *kafka_mounts(scope),
    ]


def resources(size: int) -> dict[str, Any]:
    """``size`` units of 0.5 CPU and 512 MiB, requested and limited alike (Guaranteed QoS)."""
    amounts = {"cpu": f"{CPU_PER_SIZE_MILLI * size}m", "memory": f"{MEMORY_PER_SIZE_MI * size}Mi"}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def http_probe(path: str) -> dict[str, Any]:
    """A probe of the serving port (Knative allows no other port)."""
    return {"httpGet": {"path": path}}


def pod_template(
    scope: Scope,
    pod_labels: dict[str, str],
    annotations: dict[str, str],
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    **spec: Any,
) -> dict[str, Any]:
    """``spec.template`` of a Knative Service: one container, the app's volumes, ``spec`` extras
    (``containerConcurrency``, ``timeoutSeconds``)."""
    return {
        "metadata": {
            "labels": dict(pod_labels),
            "annotations": {**annotations, CONFIG_CHECKSUM: scope.checksum},
        },
        "spec": {**spec, "containers": [container], "volumes": volumes},
    }
