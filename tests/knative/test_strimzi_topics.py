"""``topics: strimzi``: a Strimzi ``KafkaTopic`` per topic the application creates, valid against
Strimzi's CRD, instead of the Kafka admin client."""

from __future__ import annotations

import copy
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest
import yaml

from knative import InvalidSettings, ManifestError, build_manifests, read_app_files
from knative import settings_from_instance as knative_settings
from knative.manifests import KIND_ORDER
from sluice.application import plan_application
from sluice.application.model import ClusterSpec, InstanceSpec
from tests.knative import schemas
from tests.knative.conftest import HERE, INSTANCE, SECRETS, WriteApp, build, find, load

DEAD_LETTER = HERE / "apps" / "dead-letter"
REPLICATED = """
topics:
  - name: Orders_In
    creation-mode: create-if-not-exists
    partitions: 6
    options: {replication-factor: 3}
    config: {min.insync.replicas: 2, retention.ms: 604800000}
  - name: made-elsewhere
pipeline:
  - {id: copy, type: identity, input: Orders_In, output: made-elsewhere}
"""


def strimzi(directory: Any, **overrides: Any) -> list[dict[str, Any]]:
    """The objects of the application with ``topics: strimzi`` (cluster ``my-cluster``)."""
    app = load(directory)
    options = {"topics": "strimzi", "strimzi_cluster": "my-cluster", **overrides}
    settings = knative_settings(app.instance, **options)
    files = read_app_files(directory, instance=INSTANCE, secrets=SECRETS)
    return build_manifests(plan_application(app), app, files, settings)


def topics(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "KafkaTopic"}


def test_one_kafka_topic_per_topic_the_application_creates() -> None:
    objects = strimzi(DEAD_LETTER)
    found = topics(objects)
    plan = plan_application(load(DEAD_LETTER))
    created = {t.name for t in plan.topics if t.creation_mode == "create-if-not-exists"}
    assert {o["spec"]["topicName"] for o in found.values()} == created
    assert found["orders"]["spec"] == {"topicName": "orders", "partitions": 3}
    assert found["orders"]["metadata"]["namespace"] == "tenant-a"
    assert found["orders"]["metadata"]["labels"]["strimzi.io/cluster"] == "my-cluster"
    assert found["orders"]["metadata"]["labels"]["app.kubernetes.io/component"] == "topic"
    for manifest in objects:
        assert schemas.problems(manifest) == [], (manifest["kind"], manifest["metadata"]["name"])
    # Topics before those that use them: KafkaTopic right after the ConfigMap.
    kinds = [o["kind"] for o in objects]
    assert kinds == sorted(kinds, key=KIND_ORDER.index)
    assert KIND_ORDER.index("KafkaTopic") < KIND_ORDER.index("KafkaSink")


def test_partitions_replicas_and_config_from_the_topic_definition(write_app: WriteApp) -> None:
    found = topics(strimzi(write_app({"pipeline.yaml": REPLICATED})))
    assert list(found) == ["orders-in"]  # the topic made elsewhere gets none
    topic = found["orders-in"]
    assert topic["spec"] == {
        "topicName": "Orders_In",
        "partitions": 6,
        "replicas": 3,
        "config": {"min.insync.replicas": "2", "retention.ms": "604800000"},
    }
    assert schemas.problems(topic) == []


def test_the_strimzi_namespace_and_the_instance_settings(write_app: WriteApp) -> None:
    app_dir = write_app({"pipeline.yaml": REPLICATED})
    app = load(app_dir)
    configuration = {
        **app.instance.compute_cluster.configuration,
        "topics": "strimzi",
        "strimziCluster": "prod",
        "strimziNamespace": "kafka",
    }
    instance = replace(app.instance, compute_cluster=ClusterSpec("knative", configuration))
    settings = knative_settings(instance)
    assert (settings.topics, settings.strimzi_cluster, settings.strimzi_namespace) == (
        "strimzi",
        "prod",
        "kafka",
    )
    files = read_app_files(app_dir, instance=INSTANCE, secrets=SECRETS)
    objects = build_manifests(plan_application(app), app, files, settings)
    topic = find(objects, "KafkaTopic", "orders-in")
    assert topic["metadata"]["namespace"] == "kafka"
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "prod"
    # The command-line option wins over the file.
    assert knative_settings(instance, strimzi_cluster="other").strimzi_cluster == "other"


def test_admin_is_the_default_and_makes_no_kafka_topic() -> None:
    assert knative_settings(load(DEAD_LETTER).instance).topics == "admin"
    assert topics(build(DEAD_LETTER)) == {}


def _instance(**configuration: Any) -> InstanceSpec:
    return InstanceSpec(
        ClusterSpec("kafka", {"admin": {"bootstrap.servers": "kafka:9092"}}),
        ClusterSpec("knative", configuration),
    )


@pytest.mark.parametrize(
    ("configuration", "named"),
    [
        ({"topics": "strimzi"}, "strimziCluster"),
        ({"topics": "operator"}, "topics"),
        ({"topics": "strimzi", "strimziCluster": "My_Cluster"}, "strimziCluster"),
        ({"topics": "strimzi", "strimziCluster": "c", "strimziNamespace": ""}, "strimziNamespace"),
    ],
)
def test_bad_topic_settings_are_named(configuration: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        knative_settings(_instance(**configuration))
    paths = [p.path for p in caught.value.problems]
    assert paths == [f"instance.computeCluster.configuration.{named}"]


def test_a_replication_factor_a_kafka_topic_cannot_carry(write_app: WriteApp) -> None:
    pipeline = REPLICATED.replace("replication-factor: 3", "replication-factor: none")
    with pytest.raises(ManifestError, match='topic "Orders_In": replication-factor'):
        strimzi(write_app({"pipeline.yaml": pipeline}))


def test_more_in_sync_replicas_than_replicas_is_refused(write_app: WriteApp) -> None:
    pipeline = REPLICATED.replace("min.insync.replicas: 2", "min.insync.replicas: 4")
    with pytest.raises(ManifestError, match=r"min\.insync\.replicas 4 is more than its"):
        strimzi(write_app({"pipeline.yaml": pipeline}))


def test_two_topics_with_one_object_name_are_refused(write_app: WriteApp) -> None:
    pipeline = """
    topics:
      - {name: a_b, creation-mode: create-if-not-exists}
      - {name: a.b, creation-mode: create-if-not-exists}
    pipeline:
      - {id: copy, type: identity, input: a_b, output: a.b}
    """
    with pytest.raises(ManifestError, match='KafkaTopic "a-b" would be generated for both'):
        strimzi(write_app({"pipeline.yaml": pipeline}))


def test_the_validator_holds_kafka_topics_to_strimzis_crd(write_app: WriteApp) -> None:
    topic = find(strimzi(write_app({"pipeline.yaml": REPLICATED})), "KafkaTopic", "orders-in")
    for path, value in (("replicas", 0), ("partitions", "6"), ("replicationFactor", 3)):
        broken = copy.deepcopy(topic)
        broken["spec"][path] = value
        assert schemas.problems(broken), path
    old = copy.deepcopy(topic)
    old["apiVersion"] = "kafka.strimzi.io/v1beta2"
    assert schemas.problems(old) == ["KafkaTopic: version 'v1beta2' is not served by the CRD"]


def test_the_command_line_options() -> None:
    def manifests(*options: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sluice.cli.main", "manifests", str(DEAD_LETTER)]
        return subprocess.run(
            [*command, "-i", str(INSTANCE), "-s", str(SECRETS), *options],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = manifests("--topics", "strimzi", "--strimzi-cluster", "prod")
    assert done.returncode == 0, done.stderr
    found = topics(list(yaml.safe_load_all(done.stdout)))
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in found.values()} == {"prod"}
    refused = manifests("--topics", "strimzi")
    assert refused.returncode == 1
    assert "instance.computeCluster.configuration.strimziCluster" in refused.stderr
    assert "Traceback" not in refused.stderr
