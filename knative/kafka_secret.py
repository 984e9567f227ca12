"""The Kafka credentials Secret ``<app>-kafka`` and everything that reads it.

Made only when the instance's Kafka is secured (:mod:`knative.kafka_auth`). Its keys are the
ones Knative's KafkaSink reads from ``spec.auth.secret.ref`` (``protocol``, ``sasl.mechanism``,
``user``, ``password``, ``ca.crt``, ``user.crt``, ``user.key``); each KafkaSource points at the
same keys with ``spec.net.tls`` / ``spec.net.sasl`` ``secretKeyRef``\\ s. No credential appears
in plain in any other object.

The pods (workers, gateway) read the Kafka client properties from the instance.yaml of the
application's Secret, as on a laptop; certificate files named there by ``ssl.*.location`` are on
the deployer's machine, so the pods mount this Secret at :data:`KAFKA_DIR` and their
instance.yaml points there instead: ``ca.crt`` for the trust store, ``user.pem`` (the client
certificate chain and its key in one PEM file, what a Kafka PEM key store file holds) for the key
store. Inline PEM properties and the SASL properties stay as written.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from typing import Any, Final

from knative.kafka_auth import KafkaAuth
from knative.labels import Manifest, labels, metadata
from knative.names import kafka_secret_name
from knative.scope import Scope

__all__ = [
    "CA_KEY",
    "KAFKA_DIR",
    "KEYSTORE_KEY",
    "kafka_mounts",
    "kafka_secret",
    "kafka_volumes",
    "pod_instance",
    "sink_auth",
    "source_net",
]

KAFKA_DIR: Final = "/etc/sluice/kafka"
CA_KEY: Final = "ca.crt"
KEYSTORE_KEY: Final = "user.pem"
_VOLUME: Final = "kafka-tls"


def kafka_secret(scope: Scope) -> Manifest | None:
    """The Secret of the Kafka credentials; None for a plaintext Kafka."""
    auth = scope.settings.kafka_auth
    if auth is None:
        return None
    values: dict[str, str | None] = {"protocol": auth.protocol}
    if auth.sasl:
        values.update(
            {"sasl.mechanism": auth.mechanism, "user": auth.user, "password": auth.password}
        )
    if auth.tls:
        values[CA_KEY] = auth.ca_cert
        if auth.client_certificate:
            values["user.crt"] = auth.user_cert
            values["user.key"] = auth.user_key
            if auth.keystore_file:
                values[KEYSTORE_KEY] = f"{auth.user_key}{auth.user_cert}"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(
            kafka_secret_name(scope.app), scope.namespace, labels(scope.app, "", "config")
        ),
        "type": "Opaque",
        "data": {
            key: base64.b64encode(value.encode("utf-8")).decode("ascii")
            for key, value in values.items()
            if value is not None
        },
    }


def _ref(scope: Scope, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": kafka_secret_name(scope.app), "key": key}}


def source_net(scope: Scope) -> dict[str, Any] | None:
    """``spec.net`` of a KafkaSource; None for a plaintext Kafka."""
    auth = scope.settings.kafka_auth
    if auth is None:
        return None
    net: dict[str, Any] = {}
    if auth.sasl:
        net["sasl"] = {
            "enable": True,
            "user": _ref(scope, "user"),
            "password": _ref(scope, "password"),
            "type": _ref(scope, "sasl.mechanism"),
        }
    if auth.tls:
        tls: dict[str, Any] = {"enable": True}
        if auth.ca_cert is not None:
            tls["caCert"] = _ref(scope, CA_KEY)
        if auth.client_certificate:
            tls["cert"] = _ref(scope, "user.crt")
            tls["key"] = _ref(scope, "user.key")
        net["tls"] = tls
    return net


def sink_auth(scope: Scope) -> dict[str, Any] | None:
    """``spec.auth`` of a KafkaSink; None for a plaintext Kafka."""
    if scope.settings.kafka_auth is None:
        return None
    return {"secret": {"ref": {"name": kafka_secret_name(scope.app)}}}


def _files(auth: KafkaAuth | None) -> list[str]:
    """The keys the pods read as files (in place of the deployer's ``ssl.*.location``)."""
    if auth is None or not auth.tls:
        return []
    keys = [CA_KEY] if auth.truststore_file and auth.ca_cert is not None else []
    if auth.keystore_file and auth.client_certificate:
        keys.append(KEYSTORE_KEY)
    return keys


def kafka_volumes(scope: Scope) -> list[dict[str, Any]]:
    keys = _files(scope.settings.kafka_auth)
    if not keys:
        return []
    return [
        {
            "name": _VOLUME,
            "secret": {
                "secretName": kafka_secret_name(scope.app),
                "items": [{"key": key, "path": key} for key in keys],
            },
        }
    ]


def kafka_mounts(scope: Scope) -> list[dict[str, Any]]:
    if not _files(scope.settings.kafka_auth):
        return []
    return [{"name": _VOLUME, "mountPath": KAFKA_DIR, "readOnly": True}]


def pod_instance(document: Mapping[str, Any], auth: KafkaAuth | None) -> Mapping[str, Any]:
    """instance.yaml as the pods read it: ``ssl.*.location`` pointing into :data:`KAFKA_DIR`."""
    keys = _files(auth)
    if not keys:
        return document
    changed = copy.deepcopy(dict(document))
    streaming = (changed.get("instance") or {}).get("streamingCluster") or {}
    admin = (streaming.get("configuration") or {}).get("admin")
    if not isinstance(admin, dict):
        return document
    if CA_KEY in keys:
        admin["ssl.truststore.location"] = f"{KAFKA_DIR}/{CA_KEY}"
        admin["ssl.truststore.type"] = "PEM"
    if KEYSTORE_KEY in keys:
        admin["ssl.keystore.location"] = f"{KAFKA_DIR}/{KEYSTORE_KEY}"
        admin["ssl.keystore.type"] = "PEM"
    return changed
