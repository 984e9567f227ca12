"""Knative Serving feature flags the generated Services need (ConfigMap ``config-features`` in
namespace ``knative-serving``).

A Service that mounts a PersistentVolumeClaim is refused by Knative's webhook unless
``kubernetes.podspec-persistent-volume-claim`` is ``enabled``, and one that writes to it unless
``kubernetes.podspec-persistent-volume-write`` is too. ``allowed`` is not enough for either (the
webhook compares with ``enabled``; values are case-insensitive). No schema check sees this, so
``sluice deploy`` reads the ConfigMap and calls :func:`check_features` before applying anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from knative.errors import FeaturesDisabled
from knative.labels import Manifest

__all__ = [
    "FEATURES_CONFIG_MAP",
    "FEATURES_NAMESPACE",
    "PERSISTENT_VOLUME_FEATURES",
    "check_features",
    "feature_problems",
    "requires_persistent_volumes",
]

FEATURES_CONFIG_MAP: Final = "config-features"
FEATURES_NAMESPACE: Final = "knative-serving"
PERSISTENT_VOLUME_FEATURES: Final = (
    "kubernetes.podspec-persistent-volume-claim",
    "kubernetes.podspec-persistent-volume-write",
)


def feature_problems(data: Mapping[str, str] | None) -> list[str]:
    """One line per required flag that is not ``enabled`` in ``config-features``'s ``data``
    (None: the ConfigMap has no data, or does not exist)."""
    problems = []
    for key in PERSISTENT_VOLUME_FEATURES:
        value = (data or {}).get(key)
        if value is None:
            state = "is not set (the default is disabled)"
        elif value.strip().lower() == "enabled":
            continue
        elif value.strip().lower() == "allowed":
            state = 'is "allowed", which Knative does not accept for volumes'
        else:
            state = f'is "{value}"'
        problems.append(f"{key} {state}")
    return problems


def check_features(data: Mapping[str, str] | None) -> None:
    """Raise :class:`~knative.errors.FeaturesDisabled` unless both persistent-volume flags are
    ``enabled``; the message names each flag and the command that turns them on."""
    problems = feature_problems(data)
    if not problems:
        return
    keys = [line.split(" ", 1)[0] for line in problems]
    patch = ", ".join(f'"{key}": "enabled"' for key in keys)
    message = "\n".join(
        [
            f"Knative Serving cannot mount the application's disks: in ConfigMap "
            f"{FEATURES_NAMESPACE}/{FEATURES_CONFIG_MAP},",
            *(f"  {line}" for line in problems),
            "Enable them (cluster admin), then deploy again:",
            f"  kubectl patch configmap {FEATURES_CONFIG_MAP} -n {FEATURES_NAMESPACE} "
            f"--type merge -p '{{\"data\": {{{patch}}}}}'",
        ]
    )
    raise FeaturesDisabled(message, keys)


def requires_persistent_volumes(objects: Iterable[Manifest]) -> bool:
    """Whether a Knative Service among ``objects`` mounts a PersistentVolumeClaim (then the
    flags above must be on)."""
    return any(
        "persistentVolumeClaim" in volume
        for manifest in objects
        if manifest.get("apiVersion") == "serving.knative.dev/v1"
        for volume in manifest["spec"]["template"]["spec"].get("volumes", [])
    )
