"""Deploy settings: where and how an application runs on Knative.

Read once from ``instance.computeCluster.configuration`` (instance.yaml) by
:func:`settings_from_instance` and passed to the generator. Every key is optional:

- ``namespace``: namespace of every object, the tenant (default: ``globals.tenant``, else
  ``default``).
- ``image``: the application image, which ``sluice image`` builds (default ``sluice:0.1.0``).
- ``camelImage``: image of camel-source executors, with a JRE and the Camel jars (default:
  ``image``).
- ``bootstrapServers``: Kafka as seen from inside the cluster, comma-separated or a list
  (default: the streaming cluster's ``admin.bootstrap.servers``).
- ``maxScaleFactor``: an executor's ``max-scale`` is its parallelism times this (default 1).
- ``gatewayMaxScale``: the gateway's ``max-scale``; its ``min-scale`` is 1 (default 3).
- ``storageClasses``: disk ``type`` -> StorageClass name, null for the cluster's default class
  (default ``{default: null}``).
- ``topics``: who creates the application's topics: ``admin`` (the Kafka admin client, from the
  CLI; the default) or ``strimzi`` (``KafkaTopic`` objects, :mod:`knative.topics`).
- ``strimziCluster``: the Strimzi Kafka cluster (``strimzi.io/cluster`` label) of the
  ``KafkaTopic`` objects; needed with ``topics: strimzi``.
- ``strimziNamespace``: where that cluster's Topic Operator watches ``KafkaTopic`` objects
  (default: ``namespace``).

The Kafka security settings come from ``instance.streamingCluster.configuration.admin``
(:mod:`knative.kafka_auth`), read here too, so that one :class:`InvalidSettings` lists every
problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from knative.errors import InvalidSettings
from knative.kafka_auth import KafkaAuth, ReadText, kafka_auth
from sluice.application.model import InstanceSpec
from sluice.errors import Problem

__all__ = ["DEFAULT_IMAGE", "TOPIC_MODES", "DeploySettings", "TopicMode", "settings_from_instance"]

DEFAULT_IMAGE: Final = "sluice:0.1.0"
_FILE: Final = "instance.yaml"
_PATH: Final = "instance.computeCluster.configuration"
_KEYS: Final = (
    "namespace",
    "image",
    "camelImage",
    "bootstrapServers",
    "maxScaleFactor",
    "gatewayMaxScale",
    "storageClasses",
    "topics",
    "strimziCluster",
    "strimziNamespace",
)
TopicMode = Literal["admin", "strimzi"]
TOPIC_MODES: Final[tuple[TopicMode, ...]] = ("admin", "strimzi")
_DNS_1123_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_MAX_FACTOR: Final = 100

_Report = Callable[[str, str], None]


@dataclass(frozen=True)
class DeploySettings:
    """Where and how the objects of one application run (see the module docstring)."""

    namespace: str = "default"
    image: str = DEFAULT_IMAGE
    bootstrap_servers: tuple[str, ...] = ()
    camel_image: str | None = None
    max_scale_factor: int = 1
    gateway_max_scale: int = 3
    storage_classes: Mapping[str, str | None] = field(default_factory=lambda: {"default": None})
    kafka_auth: KafkaAuth | None = None
    topics: TopicMode = "admin"
    strimzi_cluster: str | None = None
    strimzi_namespace: str | None = None

    @property
    def source_image(self) -> str:
        """The image of camel-source executors."""
        return self.camel_image or self.image


def settings_from_instance(
    instance: InstanceSpec,
    *,
    namespace: str | None = None,
    topics: str | None = None,
    strimzi_cluster: str | None = None,
    read_text: ReadText | None = None,
) -> DeploySettings:
    """The settings in ``instance.computeCluster.configuration``, with defaults, and the Kafka
    security settings of ``instance.streamingCluster``.

    ``namespace``, ``topics`` and ``strimzi_cluster`` (command-line options) win over the file;
    ``read_text`` reads the certificate files the Kafka settings name (default: from disk).
    Raises :class:`~knative.errors.InvalidSettings` listing every unusable value.
    """
    config = instance.compute_cluster.configuration
    problems: list[Problem] = []

    def problem(key: str, message: str) -> None:
        problems.append(Problem(_FILE, f"{_PATH}.{key}" if key else _PATH, message))

    for key in sorted(set(config) - set(_KEYS)):
        problem(key, f"unknown setting (known: {', '.join(_KEYS)})")

    tenant = instance.globals.get("tenant")
    chosen = namespace or config.get("namespace") or (tenant if isinstance(tenant, str) else None)
    chosen = chosen or "default"
    if not isinstance(chosen, str) or len(chosen) > 63 or not _DNS_1123_LABEL.match(chosen):
        problem(
            "namespace",
            f"{chosen!r} is not a namespace name (lower-case letters, digits and '-', at most "
            "63 characters)",
        )

    image = _string(config, "image", DEFAULT_IMAGE, problem)
    camel_image = _string(config, "camelImage", None, problem)
    servers = _servers(config.get("bootstrapServers"), instance, problem)
    factor = _integer(config, "maxScaleFactor", 1, problem)
    gateway_max = _integer(config, "gatewayMaxScale", 3, problem)
    classes = _storage_classes(config.get("storageClasses"), problem)
    mode = topics or config.get("topics", "admin")
    if mode not in TOPIC_MODES:
        problem("topics", f"must be one of {', '.join(TOPIC_MODES)}, got {mode!r}")
        mode = "admin"
    cluster = strimzi_cluster or _string(config, "strimziCluster", None, problem)
    strimzi_namespace = _string(config, "strimziNamespace", None, problem)
    if mode == "strimzi" and cluster is None:
        problem(
            "strimziCluster",
            "topics: strimzi needs the name of the Strimzi Kafka cluster (the strimzi.io/cluster "
            "label of its KafkaTopic objects; or --strimzi-cluster)",
        )
    for key, value in (("strimziCluster", cluster), ("strimziNamespace", strimzi_namespace)):
        if value is not None and (len(value) > 63 or not _DNS_1123_LABEL.match(value)):
            problem(key, f"{value!r} is not a Kubernetes name (lower-case letters, digits, '-')")
    auth = kafka_auth(instance, problems, *([read_text] if read_text is not None else []))
    if problems:
        raise InvalidSettings(problems)
    return DeploySettings(
        namespace=str(chosen),
        image=image or DEFAULT_IMAGE,
        bootstrap_servers=servers,
        camel_image=camel_image,
        max_scale_factor=factor,
        gateway_max_scale=gateway_max,
        storage_classes=classes,
        kafka_auth=auth,
        topics="strimzi" if mode == "strimzi" else "admin",
        strimzi_cluster=cluster,
        strimzi_namespace=strimzi_namespace,
    )


def _string(
    config: Mapping[str, Any], key: str, default: str | None, problem: _Report
) -> str | None:
    value = config.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problem(key, "must be a non-empty string")
        return default
    return value.strip()


def _integer(config: Mapping[str, Any], key: str, default: int, problem: _Report) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_FACTOR:
        problem(key, f"must be a whole number from 1 to {_MAX_FACTOR}, got {value!r}")
        return default
    return value


def _servers(value: Any, instance: InstanceSpec, problem: _Report) -> tuple[str, ...]:
    if value is None:
        value = instance.bootstrap_servers
        if value is None:
            problem(
                "bootstrapServers",
                "where is Kafka? Set it here (as seen from inside the cluster) or in "
                "instance.streamingCluster.configuration.admin.bootstrap.servers",
            )
            return ()
    items: Sequence[Any] = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(s, str) for s in items):
        problem("bootstrapServers", "must be host:port, comma-separated, or a list of them")
        return ()
    servers = tuple(s.strip() for s in items if s.strip())
    if not servers:
        problem("bootstrapServers", "must name at least one host:port")
    return servers


def _storage_classes(value: Any, problem: _Report) -> dict[str, str | None]:
    if value is None:
        return {"default": None}
    if not isinstance(value, Mapping):
        problem("storageClasses", "must map disk types to StorageClass names")
        return {}
    classes: dict[str, str | None] = {}
    for disk_type, name in value.items():
        if name is not None and (
            not isinstance(name, str) or not _DNS_1123_SUBDOMAIN.match(name) or len(name) > 253
        ):
            problem(
                f"storageClasses.{disk_type}",
                f"{name!r} is not a StorageClass name (null for the cluster's default class)",
            )
            continue
        classes[str(disk_type)] = name
    return classes
