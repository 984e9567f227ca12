"""Strimzi ``KafkaTopic`` objects: the application's topics made by Strimzi's Topic Operator
instead of the Kafka admin client (``--topics strimzi``).

One ``KafkaTopic`` (``kafka.strimzi.io/v1``) per topic the application creates
(``creation-mode: create-if-not-exists``), labelled ``strimzi.io/cluster: <cluster>`` (the
Topic Operator of that Kafka cluster only reconciles topics with its label) and placed in the
cluster's namespace (``strimziNamespace``, default: the application's).

=====================  ==============================================================
field                  from the topic definition
=====================  ==============================================================
``topicName``          the topic's name (the object's name is that name as a DNS label)
``partitions``         ``partitions`` (0 or absent: 1, as the admin client creates it)
``replicas``           ``options.replication-factor``; absent: the brokers'
                       ``default.replication.factor``
``config``             ``config`` (``min.insync.replicas``, ``retention.ms``...), as
                       strings
=====================  ==============================================================

``sluice delete`` leaves KafkaTopic objects alone: deleting one makes the Topic Operator delete
the topic and its records, and Sluice never deletes topics.
"""

from __future__ import annotations

from typing import Any, Final

from knative.labels import Manifest, labels, metadata
from knative.names import topic_name
from knative.scope import Scope
from sluice.application.model import TopicSpec
from sluice.application.plan import Plan
from sluice.errors import Problem

__all__ = ["MAX_REPLICAS", "STRIMZI_CLUSTER", "kafka_topic", "strimzi_topics", "topic_problems"]

STRIMZI_CLUSTER: Final = "strimzi.io/cluster"
MAX_REPLICAS: Final = 32767
"""The largest replication factor Kafka (and Strimzi's CRD) takes."""


def strimzi_topics(plan: Plan) -> list[TopicSpec]:
    """The topics the application creates, the ones a ``KafkaTopic`` stands for."""
    return [t for t in plan.topics if t.creation_mode == "create-if-not-exists"]


def _replicas(topic: TopicSpec) -> int | str | None:
    """The replication factor; None when not set; the problem's text when unusable."""
    raw = topic.options.get("replication-factor")
    if raw is None:
        return None
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_REPLICAS:
        return f"replication-factor must be a whole number from 1 to {MAX_REPLICAS}, not {raw!r}"
    return value


def topic_problems(plan: Plan) -> list[Problem]:
    """Topic definitions a ``KafkaTopic`` cannot carry."""
    problems: list[Problem] = []
    for topic in strimzi_topics(plan):
        replicas = _replicas(topic)
        if isinstance(replicas, str):
            problems.append(Problem("", "", f'topic "{topic.name}": {replicas}'))
        min_isr = str(topic.config.get("min.insync.replicas", ""))
        if isinstance(replicas, int) and min_isr.isdigit() and int(min_isr) > replicas:
            problems.append(
                Problem(
                    "",
                    "",
                    f'topic "{topic.name}": min.insync.replicas {min_isr} is more than its '
                    f"replication-factor {replicas}: no write could ever be acknowledged",
                )
            )
        if topic.partitions < 0:
            problems.append(
                Problem("", "", f'topic "{topic.name}": partitions must not be negative')
            )
    return problems


def kafka_topic(scope: Scope, topic: TopicSpec) -> Manifest:
    """The ``KafkaTopic`` of ``topic`` (checked by :func:`topic_problems`)."""
    settings = scope.settings
    assert settings.strimzi_cluster is not None
    spec: dict[str, Any] = {"topicName": topic.name, "partitions": topic.partitions or 1}
    replicas = _replicas(topic)
    if isinstance(replicas, int):
        spec["replicas"] = replicas
    if topic.config:
        spec["config"] = {str(k): str(v) for k, v in sorted(topic.config.items())}
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": metadata(
            topic_name(topic.name),
            settings.strimzi_namespace or scope.namespace,
            {**labels(scope.app, "", "topic"), STRIMZI_CLUSTER: settings.strimzi_cluster},
        ),
        "spec": spec,
    }
