"""``sluice deploy`` / ``sluice delete`` against a real kube-apiserver (Knative CRDs installed,
no controllers) and the test broker: objects created by server-side apply, a second deploy a
no-op, a changed application updating only what changed, ``--dry-run`` printing the diff,
deletion by label, and the config-features check for disks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.kafka import KafkaSettings
from sluice.kafka.admin import delete_topics, list_topics
from tests.kube.apiserver import KubeApi

pytestmark = pytest.mark.kafka

APPS = Path(__file__).parents[1] / "knative" / "apps"
FEATURES = (
    "kubernetes.podspec-persistent-volume-claim",
    "kubernetes.podspec-persistent-volume-write",
)
KINDS = (
    ("v1", "secrets", "Secret"),
    ("v1", "configmaps", "ConfigMap"),
    ("v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    ("serving.knative.dev/v1", "services", "Service"),
    ("sources.knative.dev/v1beta1", "kafkasources", "KafkaSource"),
    ("eventing.knative.dev/v1alpha1", "kafkasinks", "KafkaSink"),
)


def sluice(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def instance(tmp_path: Path, bootstrap: str, namespace: str) -> Path:
    path = tmp_path / "instance.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "instance": {
                    "streamingCluster": {
                        "type": "kafka",
                        "configuration": {"admin": {"bootstrap.servers": bootstrap}},
                    },
                    "computeCluster": {
                        "type": "knative",
                        "configuration": {
                            "namespace": namespace,
                            "image": "registry.example/orders:1",
                            "bootstrapServers": "kafka.kafka:9092",
                            "storageClasses": {"default": None, "fast": "ssd"},
                        },
                    },
                }
            }
        )
    )
    return path


def live(kube_api: KubeApi, namespace: str, application: str) -> dict[str, str]:
    """``Kind/name`` -> resourceVersion of every object labelled with ``application``."""
    found: dict[str, str] = {}
    with kube_api.http_client() as http:
        for api_version, plural, kind in KINDS:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            response = http.get(
                f"{base}/namespaces/{namespace}/{plural}",
                params={"labelSelector": f"sluice.dev/application={application}"},
            )
            assert response.status_code == 200, response.text
            for item in response.json()["items"]:
                metadata: dict[str, Any] = item["metadata"]
                found[f"{kind}/{metadata['name']}"] = metadata["resourceVersion"]
    return found


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    """The dead-letter application, copied so that the test can change it."""
    app = tmp_path / "orders"
    shutil.copytree(APPS / "dead-letter", app)
    return app


async def test_deploy_is_idempotent_updates_what_changed_and_delete_removes_everything(
    kube_api: KubeApi, kafka_bootstrap: str, orders: Path, tmp_path: Path
) -> None:
    namespace = f"orders-{uuid.uuid4().hex[:8]}"
    files = ["-i", str(instance(tmp_path, kafka_bootstrap, namespace))]
    cluster = ["--kubeconfig", str(kube_api.kubeconfig)]
    try:
        first = sluice("deploy", str(orders), *files, *cluster)
        assert first.returncode == 0, first.stderr
        assert f"namespace {namespace}: created" in first.stderr
        expected = sluice("manifests", str(orders), *files, "-o", "yaml")
        titles = {
            f"{doc['kind']}/{doc['metadata']['name']}"
            for doc in yaml.safe_load_all(expected.stdout)
        }
        versions = live(kube_api, namespace, "orders")
        assert set(versions) == titles
        assert "KafkaSink/orders-orders-deadletter" in versions
        assert f"orders: {len(titles)} objects applied" in first.stderr
        # The topics, the dead-letter one included, were created before the objects.
        topics = await list_topics(KafkaSettings(kafka_bootstrap))
        assert {"orders", "valid-orders", "orders-deadletter"} <= set(topics)

        again = sluice("deploy", str(orders), *files, *cluster)
        assert again.returncode == 0, again.stderr
        assert f"(0 created, 0 configured, {len(titles)} unchanged)" in again.stderr
        assert live(kube_api, namespace, "orders") == versions

        # A change to one agent: its Service (resources) and the ConfigMap (the file) change;
        # the other Services only roll (their pods' config checksum); the rest stays.
        pipeline = orders / "pipeline.yaml"
        pipeline.write_text(
            pipeline.read_text().replace(
                "    configuration: {className: orders.Store}",
                "    configuration: {className: orders.Store}\n    resources: {size: 2}",
            )
        )
        preview = sluice("deploy", str(orders), *files, *cluster, "--dry-run")
        assert preview.returncode == 0, preview.stderr
        assert "Service/orders-store: configured" in preview.stderr
        assert re.search(r"^\+\s+memory: 1024Mi$", preview.stdout, re.MULTILINE), preview.stdout
        for same in ("Secret/orders-secrets", "KafkaSource/orders-validate", "KafkaSink/"):
            assert re.search(f"^{same}\\S*: unchanged$", preview.stderr, re.MULTILINE), same
        assert live(kube_api, namespace, "orders") == versions  # a dry run changes nothing

        changed = sluice("deploy", str(orders), *files, *cluster)
        assert changed.returncode == 0, changed.stderr
        now = live(kube_api, namespace, "orders")
        moved = {title for title in now if now[title] != versions[title]}
        assert "Service/orders-store" in moved
        assert "ConfigMap/orders-app" in moved
        assert moved == {
            "ConfigMap/orders-app",
            "Service/orders-store",
            "Service/orders-validate",
            "Service/orders-audit",
        }

        waited = sluice("deploy", str(orders), *files, *cluster, "--wait", "--timeout", "1")
        assert waited.returncode == 1
        assert "not ready after 1 s" in waited.stderr
        assert "no status yet" in waited.stderr  # nothing reconciles them here

        removed = sluice("delete", "orders", "-n", namespace, *cluster)
        assert removed.returncode == 0, removed.stderr
        assert f"orders: {len(titles)} objects deleted from {namespace}" in removed.stderr
        assert live(kube_api, namespace, "orders") == {}
    finally:
        await delete_topics(
            KafkaSettings(kafka_bootstrap), ["orders", "valid-orders", "orders-deadletter"]
        )


def test_disks_need_the_persistent_volume_features(
    kube_api: KubeApi, kafka_bootstrap: str, tmp_path: Path
) -> None:
    namespace = f"stateful-{uuid.uuid4().hex[:8]}"
    stateful = APPS / "stateful"
    files = ["-i", str(instance(tmp_path, kafka_bootstrap, namespace))]
    cluster = ["--kubeconfig", str(kube_api.kubeconfig)]
    result = sluice("deploy", str(stateful), *files, *cluster, "--skip-topics")
    assert result.returncode == 1
    assert "kubernetes.podspec-persistent-volume-claim" in result.stderr
    assert "kubernetes.podspec-persistent-volume-write" in result.stderr
    assert live(kube_api, namespace, "stateful") == {}  # nothing was applied

    features = "/api/v1/namespaces/knative-serving/configmaps/config-features"
    enabled = {key: "enabled" for key in FEATURES}
    with kube_api.http_client() as http:
        patch = {"data": enabled}
        merge = {"Content-Type": "application/merge-patch+json"}
        assert http.patch(features, json=patch, headers=merge).status_code == 200
        try:
            result = sluice("deploy", str(stateful), *files, *cluster, "--skip-topics")
            assert result.returncode == 0, result.stderr
            objects = live(kube_api, namespace, "stateful")
            assert {
                "PersistentVolumeClaim/stateful-exclamation",
                "PersistentVolumeClaim/stateful-tally",
            } <= set(objects)
        finally:
            restore = {"data": dict.fromkeys(FEATURES)}
            assert http.patch(features, json=restore, headers=merge).status_code == 200


def test_a_disk_with_parallelism_above_one_is_refused(tmp_path: Path) -> None:
    app = tmp_path / "counter"
    app.mkdir()
    (app / "pipeline.yaml").write_text(
        "topics:\n  - {name: in, creation-mode: create-if-not-exists}\n"
        "pipeline:\n  - id: count\n    type: python-processor\n    input: in\n"
        "    configuration: {className: count.Count}\n"
        "    resources: {parallelism: 3, disk: {enabled: true, size: 1G}}\n"
    )
    result = sluice("manifests", str(app), "-i", str(instance(tmp_path, "kafka:9092", "ns")))
    assert result.returncode == 1
    assert "count" in result.stderr
    assert "parallelism" in result.stderr
