"""Labels and metadata shared by every generated object.

Every object carries ``app.kubernetes.io/part-of: sluice``, ``app.kubernetes.io/managed-by:
sluice``, ``app.kubernetes.io/component`` (what it is, below), ``sluice.dev/application`` and
``sluice.dev/agent``: the executor id (its first agent) for an executor's objects, the agent id
for a disk, the first executor writing there for a dead-letter sink, and the empty string for
what belongs to no agent (the ConfigMap, the Secret, the gateway). ``sluice delete`` removes an
application by ``sluice.dev/application``. Label values are shortened like names
(:func:`knative.names.label_value`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from knative.names import label_value

__all__ = [
    "AGENT",
    "AGENTS",
    "APPLICATION",
    "COMPONENT",
    "CONFIG_CHECKSUM",
    "Component",
    "Manifest",
    "labels",
    "metadata",
]

Manifest = dict[str, Any]
"""One Kubernetes object, as the API server takes it in JSON or YAML."""

Component = Literal[
    "processor",
    "sink",
    "source",
    "service",
    "gateway",
    "config",
    "dead-letter",
    "state",
    "topic",
]

PART_OF: Final = "app.kubernetes.io/part-of"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
COMPONENT: Final = "app.kubernetes.io/component"
APPLICATION: Final = "sluice.dev/application"
AGENT: Final = "sluice.dev/agent"
AGENTS: Final = "sluice.dev/agents"
"""Annotation: the agents an executor runs, in order, comma-separated (fused agents)."""
CONFIG_CHECKSUM: Final = "sluice.dev/config-checksum"
"""Pod template annotation: a change of the application files rolls out new pods."""


def labels(app: str, agent: str, component: Component) -> dict[str, str]:
    return {
        PART_OF: "sluice",
        MANAGED_BY: "sluice",
        COMPONENT: component,
        APPLICATION: label_value(app),
        AGENT: label_value(agent),
    }


def metadata(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta
