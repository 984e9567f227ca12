"""Knative Eventing objects: a KafkaSource per push-mode executor, a KafkaSink per dead-letter
topic.

The KafkaSource reads the executor's input topic with the consumer group the worker uses in
pull mode (``sluice-<app>-<executor>``), from the earliest offset when the group is new, and
posts each record to the executor's Knative Service. It throws the Service's reply away: the
worker writes outputs and dead letters to Kafka itself and answers 2xx only once they are
acknowledged.

Retries: the worker applies ``errors.retries`` and the ``on-failure`` action itself, so an agent
failure never reaches KafkaSource as a retryable answer except under ``on-failure: fail`` (500)
or when Kafka does not acknowledge (503). Either way the record must not be lost, and
KafkaSource drops a record whose retries run out (unless a dead-letter sink takes it), so
``delivery.retry`` is :data:`DELIVERY_RETRIES` (retry until the worker succeeds, waiting one
second longer each time) for every policy: KafkaSource's retries never multiply the agent's.
With ``on-failure: dead-letter`` the ``deadLetterSink`` is the KafkaSink of the executor's
dead-letter topic; it receives what KafkaSource does not retry (4xx answers, such as a body too
large for the worker) instead of dropping it.

A secured Kafka (``security.protocol`` other than ``PLAINTEXT``) adds ``spec.net`` to each
KafkaSource and ``spec.auth`` to each KafkaSink, both reading the Secret ``<app>-kafka``
(:mod:`knative.kafka_secret`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from knative.kafka_secret import sink_auth, source_net
from knative.labels import Manifest, labels, metadata
from knative.names import consumer_group, dead_letter_sink_name, executor_name
from knative.scope import Scope
from knative.services import executor_concurrency
from sluice.application.plan import Executor

__all__ = [
    "BACKOFF_DELAY",
    "BACKOFF_POLICY",
    "DELIVERY_RETRIES",
    "dead_letter_sink",
    "kafka_source",
]

DELIVERY_RETRIES: Final = 1_000_000
"""Large enough never to run out (linear backoff: years), small enough for every int32."""
BACKOFF_POLICY: Final = "linear"
BACKOFF_DELAY: Final = "PT1S"


def kafka_source(scope: Scope, executor: Executor) -> Manifest:
    """The KafkaSource feeding a processor or sink executor (which has an input topic)."""
    assert executor.input_topic is not None
    name = executor_name(scope.app, executor.id)
    delivery: dict[str, Any] = {
        "retry": DELIVERY_RETRIES,
        "backoffPolicy": BACKOFF_POLICY,
        "backoffDelay": BACKOFF_DELAY,
    }
    if executor.errors.on_failure == "dead-letter" and executor.dead_letter_topic is not None:
        delivery["deadLetterSink"] = {
            "ref": {
                "apiVersion": "eventing.knative.dev/v1alpha1",
                "kind": "KafkaSink",
                "name": dead_letter_sink_name(scope.app, executor.dead_letter_topic),
            }
        }
    spec: dict[str, Any] = {"bootstrapServers": list(scope.settings.bootstrap_servers)}
    net = source_net(scope)
    if net is not None:
        spec["net"] = net
    return {
        "apiVersion": "sources.knative.dev/v1beta1",
        "kind": "KafkaSource",
        "metadata": metadata(
            name, scope.namespace, labels(scope.app, executor.id, executor.component)
        ),
        "spec": {
            **spec,
            "topics": [executor.input_topic],
            "consumerGroup": consumer_group(scope.app, executor.id),
            "consumers": executor.resources.parallelism,
            "initialOffset": "earliest",
            "ordering": "ordered" if executor_concurrency(executor) == 1 else "unordered",
            "delivery": delivery,
            "sink": {
                "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}
            },
        },
    }


def dead_letter_sink(scope: Scope, topic: str, executor_ids: Sequence[str]) -> Manifest:
    """The KafkaSink writing (binary CloudEvents) to ``topic``, a dead-letter topic that
    ``sluice deploy`` creates; labelled with the first executor that uses it."""
    spec: dict[str, Any] = {
        "topic": topic,
        "bootstrapServers": list(scope.settings.bootstrap_servers),
        "contentMode": "binary",
    }
    auth = sink_auth(scope)
    if auth is not None:
        spec["auth"] = auth
    return {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "KafkaSink",
        "metadata": metadata(
            dead_letter_sink_name(scope.app, topic),
            scope.namespace,
            labels(scope.app, min(executor_ids), "dead-letter"),
        ),
        "spec": spec,
    }
