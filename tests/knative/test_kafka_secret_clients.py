"""What the pods get on a secured Kafka works with Sluice's real clients: the instance.yaml and
secrets.yaml of ``<app>-secrets`` and the files of ``<app>-kafka`` (laid out as the pods mount
them) connect to the three-node TLS + SCRAM-SHA-512 cluster; the same with a wrong password is
refused."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from knative import build_manifests, read_app_files
from knative import settings_from_instance as knative_settings
from knative.kafka_secret import KAFKA_DIR
from sluice.application import load_application, plan_application
from sluice.errors import KafkaError
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import list_topics
from tests.kafka_cluster import SecuredCluster
from tests.knative.conftest import HERE, find

pytestmark = pytest.mark.kafka

APP = HERE / "apps" / "dead-letter"


def _deployer_files(tmp_path: Path, cluster: SecuredCluster, password: str) -> tuple[Path, Path]:
    """instance.yaml and secrets.yaml as a deployer writes them: the CA by path, the password
    from secrets.yaml."""
    admin: dict[str, Any] = dict(cluster.properties)
    admin["sasl.jaas.config"] = admin["sasl.jaas.config"].replace(
        cluster.password, "${secrets.kafka.password}"
    )
    admin["ssl.truststore.location"] = str(cluster.ca_file)
    admin.pop("ssl.truststore.certificates", None)
    folder = tmp_path / "deployer"
    folder.mkdir(parents=True)
    instance, secrets = folder / "instance.yaml", folder / "secrets.yaml"
    compute = {"namespace": "tenant-a", "bootstrapServers": admin["bootstrap.servers"]}
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
        yaml.safe_dump({"secrets": [{"id": "kafka", "data": {"password": password}}]})
    )
    return instance, secrets


def _pod_settings(tmp_path: Path, cluster: SecuredCluster, password: str) -> KafkaSettings:
    """The Kafka settings a worker builds from what its pod mounts."""
    instance, secrets = _deployer_files(tmp_path, cluster, password)
    app = load_application(APP, instance=instance, secrets=secrets)
    files = read_app_files(APP, instance=instance, secrets=secrets)
    objects = build_manifests(plan_application(app), app, files, knative_settings(app.instance))

    # The mounts: <app>-kafka's items at KAFKA_DIR, <app>-secrets' files beside them.
    pod = tmp_path / "pod"
    mounted = pod / "kafka"
    mounted.mkdir(parents=True)
    credentials = find(objects, "Secret", "dead-letter-kafka")["data"]
    service = find(objects, "Service", "dead-letter-validate")
    [volume] = [
        v for v in service["spec"]["template"]["spec"]["volumes"] if v["name"] == "kafka-tls"
    ]
    for item in volume["secret"]["items"]:
        (mounted / item["path"]).write_bytes(base64.b64decode(credentials[item["key"]]))
    app_secret = find(objects, "Secret", "dead-letter-secrets")["data"]
    text = base64.b64decode(app_secret["instance.yaml"]).decode()
    assert str(cluster.ca_file) not in text  # the deployer's path does not reach the pods
    (pod / "instance.yaml").write_text(text.replace(KAFKA_DIR, str(mounted)))
    (pod / "secrets.yaml").write_bytes(base64.b64decode(app_secret["secrets.yaml"]))

    loaded = load_application(APP, instance=pod / "instance.yaml", secrets=pod / "secrets.yaml")
    servers = ",".join(knative_settings(loaded.instance).bootstrap_servers)
    return KafkaSettings(servers, loaded.instance.kafka_client_options)


async def test_the_pods_kafka_settings_reach_the_secured_cluster(
    kafka_cluster: SecuredCluster, tmp_path: Path
) -> None:
    settings = _pod_settings(tmp_path, kafka_cluster, kafka_cluster.password)
    assert settings.client_options["ssl.truststore.location"] == str(
        tmp_path / "pod" / "kafka" / "ca.crt"
    )
    assert isinstance(await list_topics(settings), frozenset)

    wrong = _pod_settings(tmp_path / "wrong", kafka_cluster, "not-the-password")
    with pytest.raises(KafkaError, match="SASL"):
        await list_topics(wrong)
