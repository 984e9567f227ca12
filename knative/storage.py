"""Disks: a PersistentVolumeClaim per agent with ``resources.disk``, mounted where its worker
keeps the agent's state.

The claim is ``ReadWriteOnce`` (one node at a time), so an executor with a disk runs exactly
one pod (min-scale = max-scale = 1) and ``parallelism`` above 1 is refused: Knative has no
per-replica volume templates. During a rollout the old and the new pod may still overlap
briefly; the worker waits for the lock file in its state directory. The disk ``type`` picks a
StorageClass through ``storageClasses`` (:mod:`knative.settings`); null is the cluster's default
class. Mounting a claim needs two Knative Serving feature flags (:mod:`knative.features`).
"""

from __future__ import annotations

from typing import Any, Final

from knative.labels import Manifest, labels, metadata
from knative.names import dns_label, pvc_name
from knative.scope import Scope
from knative.settings import DeploySettings
from sluice.application.model import Application
from sluice.application.plan import AgentDisk, Executor, Plan
from sluice.errors import Problem

__all__ = [
    "STATE_ROOT",
    "disk_problems",
    "persistent_volume_claim",
    "quantity",
    "state_directory",
    "state_volumes",
]

STATE_ROOT: Final = "/persistent-state"
_UNITS: Final = (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024))


def quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that divides them."""
    for suffix, unit in _UNITS:
        if size >= unit and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def state_directory(agent_id: str) -> str:
    """Where the agent's disk is mounted in its pod: ``/persistent-state/<agent-id>``."""
    return f"{STATE_ROOT}/{agent_id}"


def disk_problems(plan: Plan, app: Application, settings: DeploySettings) -> list[Problem]:
    """Disks Knative cannot give: on a scaled-out executor, or of a type with no class."""
    problems: list[Problem] = []
    for executor in plan.executors:
        for disk in executor.disks:
            spec = app.agent(disk.agent_id)
            file = spec.file if spec is not None else ""
            where = f"pipeline[{spec.index}].resources" if spec is not None else ""
            parallelism = executor.resources.parallelism
            if parallelism > 1:
                problems.append(
                    Problem(
                        file,
                        where,
                        f'agent "{disk.agent_id}" has a disk and parallelism {parallelism}: '
                        "a disk is a ReadWriteOnce volume that only one pod can use, and "
                        "Knative has no volume per replica; set parallelism: 1 or disable "
                        "the disk",
                    )
                )
            if disk.type not in settings.storage_classes:
                known = ", ".join(sorted(settings.storage_classes)) or "none"
                problems.append(
                    Problem(
                        file,
                        f"{where}.disk.type" if where else "",
                        f'agent "{disk.agent_id}": no StorageClass for disk type '
                        f'"{disk.type}" (known: {known}); add it to '
                        "instance.computeCluster.configuration.storageClasses",
                    )
                )
    return problems


def persistent_volume_claim(scope: Scope, disk: AgentDisk) -> Manifest:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": quantity(disk.size)}},
    }
    storage_class = scope.settings.storage_classes.get(disk.type)
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(
            pvc_name(scope.app, disk.agent_id),
            scope.namespace,
            labels(scope.app, disk.agent_id, "state"),
        ),
        "spec": spec,
    }


def state_volumes(
    scope: Scope, executor: Executor
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The volumes and mounts of the executor's disks, one per agent with a disk."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for disk in executor.disks:
        name = dns_label("state", disk.agent_id)
        volumes.append(
            {
                "name": name,
                "persistentVolumeClaim": {"claimName": pvc_name(scope.app, disk.agent_id)},
            }
        )
        mounts.append({"name": name, "mountPath": state_directory(disk.agent_id)})
    return volumes, mounts
