"""Names of the generated objects: valid Kubernetes names and label values, stable across runs.

Object names are DNS-1035 labels (lower-case letters, digits and ``-``, starting with a letter,
at most 63 characters): the strictest rule any of the generated kinds has (a Knative Service's
name becomes a Kubernetes Service name and a host name label). A name that would be longer is
cut and ends with ``-`` plus 8 hex digits of the SHA-256 of the full name, so it stays unique and
is the same on every run. Characters that are not allowed become ``-``; two ids that only differ
there (``a_b`` and ``a-b``) would get one name, which :func:`knative.manifests.build_manifests`
reports instead of letting one object replace the other.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

__all__ = [
    "MAX_NAME",
    "config_map_name",
    "consumer_group",
    "dead_letter_sink_name",
    "dns_label",
    "executor_name",
    "gateway_name",
    "kafka_secret_name",
    "label_value",
    "pvc_name",
    "secret_name",
    "service_url",
    "topic_name",
]

MAX_NAME: Final = 63
_DIGEST: Final = 8
_NOT_DNS: Final = re.compile(r"[^a-z0-9-]")
_NOT_LABEL: Final = re.compile(r"[^A-Za-z0-9_.-]")


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:_DIGEST]


def _shorten(name: str, raw: str, strip: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    return f"{name[: MAX_NAME - _DIGEST - 1].rstrip(strip)}-{_digest(raw)}"


def dns_label(*parts: str) -> str:
    """``parts`` joined with ``-`` as a DNS-1035 label of at most 63 characters."""
    raw = "-".join(parts)
    name = _NOT_DNS.sub("-", raw.lower()).strip("-")
    if not name[:1].isalpha():
        name = f"s-{name}".rstrip("-")
    return _shorten(name, raw, "-")


def label_value(value: str) -> str:
    """``value`` as a label value: at most 63 characters of ``[A-Za-z0-9_.-]``, alphanumeric at
    both ends (the empty string is valid)."""
    name = _NOT_LABEL.sub("-", value).strip("-_.")
    return _shorten(name, value, "-_.")


def executor_name(app: str, executor_id: str) -> str:
    """The Knative Service (and KafkaSource) of an executor: ``<app>-<executor>``."""
    return dns_label(app, executor_id)


def pvc_name(app: str, agent_id: str) -> str:
    """The PersistentVolumeClaim of an agent's disk: ``<app>-<agent>``."""
    return dns_label(app, agent_id)


def dead_letter_sink_name(app: str, dead_letter_topic: str) -> str:
    """The KafkaSink writing to a dead-letter topic: ``<app>-<input-topic>-deadletter``."""
    return dns_label(app, dead_letter_topic)


def gateway_name(app: str) -> str:
    return dns_label(app, "gateway")


def config_map_name(app: str) -> str:
    return dns_label(app, "app")


def secret_name(app: str) -> str:
    return dns_label(app, "secrets")


def kafka_secret_name(app: str) -> str:
    """The Secret of the Kafka credentials (:mod:`knative.kafka_secret`)."""
    return dns_label(app, "kafka")


def topic_name(topic: str) -> str:
    """The Strimzi ``KafkaTopic`` of a topic: the topic's name as a DNS label, without the
    application's (a topic may be shared by applications; ``spec.topicName`` keeps the exact
    name)."""
    return dns_label(topic)


def consumer_group(app: str, executor_id: str) -> str:
    """The Kafka consumer group of an executor, the same as the worker's in pull mode."""
    return f"sluice-{app}-{executor_id}"


def service_url(name: str, namespace: str) -> str:
    """The cluster-local URL of a Knative Service (port 80, through the Knative ingress)."""
    return f"http://{name}.{namespace}.svc.cluster.local"
