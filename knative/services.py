"""Knative Services: one per executor, and the gateway.

========================  ==========================================  ============================
executor component        the worker runs                             scaling
========================  ==========================================  ============================
processor, sink           push mode on :8080 (a KafkaSource posts     min-scale 0, max-scale =
                          each event; :mod:`knative.eventing`)        parallelism x maxScaleFactor
source                    pull mode (a read loop: no request ever     min-scale = max-scale =
                          arrives); health and metrics on :8080       parallelism (always on)
service (python-service)  the agent's HTTP server on :8000, as in     min-scale 0, max-scale =
                          LangStream; worker health on :8081          parallelism x maxScaleFactor
========================  ==========================================  ============================

An executor with a disk runs exactly one pod (min-scale = max-scale = 1, :mod:`knative.storage`).
Per-partition order is the default: ``containerConcurrency: 1``, so a pod works on one event at a
time and Knative adds pods (up to max-scale) as partitions deliver concurrently. An executor
whose agents all set ``configuration.concurrency: N`` (N > 1) opts out: its KafkaSource is
``unordered`` and a pod takes the smallest N at once. Push-mode Services allow requests of
``timeoutSeconds: 600`` (Knative's default maximum) so that an event retried inside the worker
is not cut and redelivered while it still runs. camel-source executors use the ``camelImage``.
An application with ``python/requirements.txt`` runs the executors that have a Python agent
(``python-*``) on its own environment's interpreter (``/opt/sluice/app-env/bin/python``, built
into the image by ``sluice image``), so its libraries do not share Sluice's; other executors and
the gateway run on Sluice's.

The gateway (``<app>-gateway``, when the application has gateways) runs ``python -m gateway`` with
the same folder, instance and secrets, on :8080, always on (min-scale 1, its WebSockets and
reply consumers need a warm process) and ``timeoutSeconds: 600`` for long service waits and
WebSockets. It reaches python-service agents (agent-id service gateways)
through their cluster-local URLs, one ``--service-url AGENT_ID=URL`` argument per service
executor, e.g. ``--service-url chat=http://my-app-chat.tenant.svc.cluster.local``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from knative.file_objects import INSTANCE_KEY, SECRETS_KEY
from knative.labels import AGENTS, Manifest, labels, metadata
from knative.names import dns_label, executor_name, gateway_name, service_url
from knative.pods import (
    APP_DIR,
    APP_ENV_PYTHON,
    HTTP_PORT,
    SECRETS_DIR,
    app_mounts,
    app_volumes,
    http_probe,
    pod_template,
    resources,
)
from knative.scope import Scope
from knative.storage import STATE_ROOT, state_volumes
from sluice.application.plan import Executor
from sluice.commands import API_TOKEN_ENV, GatewayCommand, GatewayOptions, WorkerCommand

__all__ = [
    "MAX_SCALE",
    "MIN_SCALE",
    "SERVICE_HEALTH_PORT",
    "SERVICE_PORT",
    "TIMEOUT_SECONDS",
    "executor_concurrency",
    "executor_service",
    "gateway_service",
    "service_urls",
]

MIN_SCALE: Final = "autoscaling.knative.dev/min-scale"
MAX_SCALE: Final = "autoscaling.knative.dev/max-scale"
SERVICE_PORT: Final = 8000
SERVICE_HEALTH_PORT: Final = 8081
TIMEOUT_SECONDS: Final = 600
"""Knative's default maximum request duration: an event whose agent retries (or calls a slow
model) must not be cut at the default 300 s and redelivered while it still runs."""
_WORKER: Final = ["python", "-m", "workers"]
_GATEWAY: Final = ["python", "-m", "gateway"]


def executor_concurrency(executor: Executor) -> int:
    """Events one pod of the executor takes at once: 1 (ordered) unless every agent opted into
    ``configuration.concurrency`` above 1. Values are checked by :func:`concurrency_problem`."""
    values = [_concurrency(agent.configuration.get("concurrency", 1)) for agent in executor.agents]
    return min(values) if values else 1


def concurrency_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"concurrency must be a whole number of at least 1, got {value!r}"
    return None


def _concurrency(value: Any) -> int:
    return value if concurrency_problem(value) is None else 1


def _worker_command(scope: Scope, executor: Executor) -> list[str]:
    """The worker on the application's environment when one of its agents is user Python code."""
    if scope.python_environment and any(a.type.startswith("python-") for a in executor.agents):
        return [APP_ENV_PYTHON, *_WORKER[1:]]
    return list(_WORKER)


def _scale(executor: Executor, scope: Scope) -> tuple[int, int]:
    parallelism = executor.resources.parallelism
    if executor.disks:
        return 1, 1
    if executor.component == "source":
        return parallelism, parallelism
    return 0, parallelism * scope.settings.max_scale_factor


def executor_service(scope: Scope, executor: Executor) -> Manifest:
    name = executor_name(scope.app, executor.id)
    object_labels = labels(scope.app, executor.id, executor.component)
    low, high = _scale(executor, scope)
    disk_volumes, disk_mounts = state_volumes(scope, executor)
    command = WorkerCommand(
        app_dir=Path(APP_DIR),
        executor_id=executor.id,
        bootstrap_servers=",".join(scope.settings.bootstrap_servers),
        instance=Path(SECRETS_DIR, INSTANCE_KEY),
        secrets=Path(SECRETS_DIR, SECRETS_KEY),
        tenant=scope.namespace,
        app_id=scope.app,
    )
    image = scope.settings.image
    probes: dict[str, Any] = {}
    spec: dict[str, Any] = {}
    if executor.component == "service":
        command = replace(command, service_port=SERVICE_PORT, health_port=SERVICE_HEALTH_PORT)
        port = SERVICE_PORT
    elif executor.component == "source":
        command = replace(command, health_port=HTTP_PORT)
        port = HTTP_PORT
        # Queue-proxy probes readiness from inside the pod; the pull-mode health server listens
        # on the loopback interface only, so there is no kubelet liveness probe.
        probes["readinessProbe"] = http_probe("/readyz")
        if any(agent.type == "camel-source" for agent in executor.agents):
            image = scope.settings.source_image
    else:
        command = replace(command, push=True, port=HTTP_PORT)
        port = HTTP_PORT
        probes["readinessProbe"] = http_probe("/readyz")
        probes["livenessProbe"] = http_probe("/healthz")
        spec["containerConcurrency"] = executor_concurrency(executor)
        spec["timeoutSeconds"] = TIMEOUT_SECONDS
    if disk_mounts:
        command = replace(command, state_dir=Path(STATE_ROOT), state_volumes=True)
    container: dict[str, Any] = {
        "name": "worker",
        "image": image,
        "command": _worker_command(scope, executor),
        "args": command.to_argv(),
        "ports": [{"name": "http1", "containerPort": port}],
        "resources": resources(executor.resources.size),
        **probes,
        "volumeMounts": [*app_mounts(scope), *disk_mounts],
    }
    template = pod_template(
        scope,
        object_labels,
        {MIN_SCALE: str(low), MAX_SCALE: str(high)},
        container,
        [*app_volumes(scope), *disk_volumes],
        **spec,
    )
    agents = ",".join(agent.id for agent in executor.agents)
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": metadata(name, scope.namespace, object_labels, {AGENTS: agents}),
        "spec": {"template": template},
    }


def service_urls(scope: Scope, executors: Sequence[Executor]) -> dict[str, str]:
    """Agent id -> cluster-local URL of every python-service executor."""
    return {
        executor.id: service_url(executor_name(scope.app, executor.id), scope.namespace)
        for executor in sorted(executors, key=lambda e: e.id)
        if executor.component == "service"
    }


def _api_token(scope: Scope) -> dict[str, Any]:
    """The token of LangStream's control-plane API (gateway.routes.applications): key ``token``
    of the Secret ``<app>-api-token`` when the user made one; without it the API is open."""
    return {
        "name": API_TOKEN_ENV,
        "valueFrom": {
            "secretKeyRef": {
                "name": dns_label(scope.app, "api-token"),
                "key": "token",
                "optional": True,
            }
        },
    }


def gateway_service(scope: Scope, urls: dict[str, str]) -> Manifest:
    object_labels = labels(scope.app, "", "gateway")
    command = GatewayCommand(
        app_dir=Path(APP_DIR),
        bootstrap_servers=",".join(scope.settings.bootstrap_servers),
        instance=Path(SECRETS_DIR, INSTANCE_KEY),
        secrets=Path(SECRETS_DIR, SECRETS_KEY),
        tenant=scope.namespace,
        app_id=scope.app,
        port=HTTP_PORT,
        # Every request reaches the gateway from the pod's queue-proxy: the client is the first
        # address of X-Forwarded-For (for the per-client limit of failed authentications).
        options=GatewayOptions(client_ip_header="X-Forwarded-For"),
        service_urls=urls,
    )
    container = {
        "name": "gateway",
        "image": scope.settings.image,
        "command": list(_GATEWAY),
        "args": command.to_argv(),
        "env": [_api_token(scope)],
        "ports": [{"name": "http1", "containerPort": HTTP_PORT}],
        "resources": resources(1),
        "readinessProbe": http_probe("/readyz"),
        "livenessProbe": http_probe("/healthz"),
        "volumeMounts": app_mounts(scope),
    }
    template = pod_template(
        scope,
        object_labels,
        {MIN_SCALE: "1", MAX_SCALE: str(scope.settings.gateway_max_scale)},
        container,
        app_volumes(scope),
        timeoutSeconds=TIMEOUT_SECONDS,
    )
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": metadata(gateway_name(scope.app), scope.namespace, object_labels),
        "spec": {"template": template},
    }
