"""``sluice deploy`` of an application on a secured Kafka, with ``topics: strimzi``, against a
real kube-apiserver (Knative and Strimzi CRDs installed, no controllers): the credentials
Secret, KafkaSource ``spec.net``, KafkaSink ``spec.auth`` and the KafkaTopics are stored as
generated (nothing pruned by the CRD schemas), and ``sluice delete`` leaves the KafkaTopics."""

from __future__ import annotations

import base64
import datetime
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.kube.apiserver import KubeApi

APP = Path(__file__).parents[1] / "knative" / "apps" / "dead-letter"
PASSWORD = "kube-test-password"
PLURALS = {
    "KafkaSource": "kafkasources",
    "KafkaSink": "kafkasinks",
    "KafkaTopic": "kafkatopics",
    "Service": "services",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
}


def sluice(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ca_file(folder: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kafka-ca")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / "ca.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def files(tmp_path: Path, namespace: str) -> list[str]:
    instance = tmp_path / "instance.yaml"
    secrets = tmp_path / "secrets.yaml"
    admin = {
        "bootstrap.servers": "kafka.example:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="orders" password="${secrets.kafka.password}";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca_file(tmp_path)),
    }
    compute = {
        "namespace": namespace,
        "image": "registry.example/orders:1",
        "bootstrapServers": "my-cluster-kafka-bootstrap.kafka:9093",
        "topics": "strimzi",
        "strimziCluster": "my-cluster",
    }
    instance.write_text(
        yaml.safe_dump(
            {
                "instance": {
                    "streamingCluster": {"type": "kafka", "configuration": {"admin": admin}},
                    "computeCluster": {"type": "knative", "configuration": compute},
                }
            }
        )
    )
    secrets.write_text(
        yaml.safe_dump({"secrets": [{"id": "kafka", "data": {"password": PASSWORD}}]})
    )
    return ["-i", str(instance), "-s", str(secrets)]


def stored(kube_api: KubeApi, manifest: dict[str, Any]) -> dict[str, Any] | None:
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    meta = manifest["metadata"]
    with kube_api.http_client() as http:
        response = http.get(f"{base}/namespaces/{meta['namespace']}/{PLURALS[kind]}/{meta['name']}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_a_secured_kafka_and_strimzi_topics_on_a_real_api_server(
    kube_api: KubeApi, tmp_path: Path
) -> None:
    namespace = f"secured-{uuid.uuid4().hex[:8]}"
    given = files(tmp_path, namespace)
    cluster = ["--kubeconfig", str(kube_api.kubeconfig)]
    rendered = sluice("manifests", str(APP), *given)
    assert rendered.returncode == 0, rendered.stderr
    objects = list(yaml.safe_load_all(rendered.stdout))
    kinds = {o["kind"] for o in objects}
    assert {"KafkaTopic", "KafkaSource", "KafkaSink", "Secret"} <= kinds

    # No Kafka answers at kafka.example: with topics: strimzi the admin client is not used.
    deployed = sluice("deploy", str(APP), *given, *cluster)
    assert deployed.returncode == 0, deployed.stderr
    assert "topics:" not in deployed.stderr  # what the admin client's creation prints
    for manifest in objects:
        live = stored(kube_api, manifest)
        assert live is not None, manifest["metadata"]["name"]
        if manifest["kind"] == "Secret":
            assert live["data"] == manifest["data"]
        elif manifest["kind"] in ("KafkaSource", "KafkaSink", "KafkaTopic"):
            assert live["spec"] == manifest["spec"], manifest["metadata"]["name"]

    credentials = stored(
        kube_api,
        next(
            o
            for o in objects
            if o["kind"] == "Secret" and o["metadata"]["name"] == "dead-letter-kafka"
        ),
    )
    assert credentials is not None
    assert base64.b64decode(credentials["data"]["password"]).decode() == PASSWORD

    removed = sluice("delete", "dead-letter", "-n", namespace, *cluster)
    assert removed.returncode == 0, removed.stderr
    for manifest in objects:
        left = stored(kube_api, manifest)
        # Deleting a KafkaTopic would make the Topic Operator delete the topic: it stays.
        assert (left is not None) == (manifest["kind"] == "KafkaTopic"), manifest["kind"]


def test_a_cluster_without_strimzi_is_named(kube_api: KubeApi) -> None:
    from kubernetes import config as kube_config

    from knative.cluster import ClusterError, apply_objects

    topic = {
        "apiVersion": "kafka.strimzi.io/v1alpha9",  # a version no Strimzi serves
        "kind": "KafkaTopic",
        "metadata": {"name": "orders", "namespace": "default"},
        "spec": {"partitions": 1},
    }
    loader: Any = kube_config
    with (
        loader.new_client_from_config(config_file=str(kube_api.kubeconfig)) as api,
        pytest.raises(ClusterError, match=r"install Strimzi 0\.49 or later"),
    ):
        apply_objects(api, [topic])
