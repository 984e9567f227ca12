"""Generator golden tests: every object of each application, compared with a reviewed YAML file,
and validated against its CRD (or the Kubernetes types for core objects).

Set SLUICE_UPDATE_GOLDEN=1 to rewrite the files after a deliberate change, then review the diff.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from knative import build_manifests, read_app_files, to_yaml
from knative.eventing import DELIVERY_RETRIES
from knative.pods import APP_ENV_PYTHON
from knative.settings import DeploySettings
from sluice.application import plan_application
from tests.knative import schemas
from tests.knative.conftest import HERE, HTTP_GATEWAYS, build, find, load

GOLDEN = HERE / "golden"
APPS = HERE / "apps"
CASES: dict[str, Path] = {
    "http-gateways": HTTP_GATEWAYS,
    "stateful": APPS / "stateful",
    "fused": APPS / "fused",
    "dead-letter": APPS / "dead-letter",
    "service": APPS / "service",
    "camel": APPS / "camel",
    "parallel": APPS / "parallel",
    "requirements": APPS / "requirements",
}
SECRET_VALUE = "a-test-only-shared-secret-of-32-bytes!"


def _template(service: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = service["spec"]["template"]
    return template


def _scale(service: dict[str, Any]) -> tuple[str, str]:
    annotations = _template(service)["metadata"]["annotations"]
    return (
        annotations["autoscaling.knative.dev/min-scale"],
        annotations["autoscaling.knative.dev/max-scale"],
    )


def _container(service: dict[str, Any]) -> dict[str, Any]:
    [container] = _template(service)["spec"]["containers"]
    assert isinstance(container, dict)
    return container


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    rendered = to_yaml(build(CASES[case]))
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("SLUICE_UPDATE_GOLDEN") == "1":
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_object_validates(case: str) -> None:
    for manifest in build(CASES[case]):
        assert schemas.problems(manifest) == [], (manifest["kind"], manifest["metadata"]["name"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_labels_namespace_and_names(case: str) -> None:
    app = load(CASES[case])
    for manifest in build(CASES[case]):
        meta = manifest["metadata"]
        assert meta["namespace"] == "tenant-a"
        assert len(meta["name"]) <= 63
        assert meta["labels"]["app.kubernetes.io/part-of"] == "sluice"
        assert meta["labels"]["sluice.dev/application"] == app.name
        assert "sluice.dev/agent" in meta["labels"]
        if manifest["kind"] == "Service":
            assert _template(manifest)["metadata"]["labels"] == meta["labels"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_output_from_another_folder(case: str, tmp_path: Path) -> None:
    """Nothing of the machine (paths, order of directory listings) leaks into the objects."""
    copy = tmp_path / "elsewhere" / CASES[case].name
    shutil.copytree(CASES[case], copy)
    assert to_yaml(build(copy)) == to_yaml(build(CASES[case]))


def test_http_gateways() -> None:
    objects = build(HTTP_GATEWAYS)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Secret", "http-gateways-secrets"),
        ("ConfigMap", "http-gateways-app"),
        ("Service", "http-gateways-exclamation"),
        ("Service", "http-gateways-gateway"),
        ("KafkaSource", "http-gateways-exclamation"),
    ]
    source = find(objects, "KafkaSource", "http-gateways-exclamation")["spec"]
    assert source["topics"] == ["inputs"]
    assert source["consumerGroup"] == "sluice-http-gateways-exclamation"
    assert source["initialOffset"] == "earliest"
    assert source["ordering"] == "ordered"
    assert source["sink"]["ref"] == {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "name": "http-gateways-exclamation",
    }
    assert source["bootstrapServers"] == ["kafka-0.kafka:9092", "kafka-1.kafka:9092"]
    service = find(objects, "Service", "http-gateways-exclamation")
    assert _scale(service) == ("0", "2")
    assert _template(service)["spec"]["containerConcurrency"] == 1
    args = _container(service)["args"]
    assert args[:2] == ["/app", "--bootstrap-servers"]
    assert "--push" in args and args[args.index("--executor") + 1] == "exclamation"
    mounts = {m["mountPath"] for m in _container(service)["volumeMounts"]}
    assert {"/app/pipeline.yaml", "/app/gateways.yaml", "/etc/sluice/secrets"} <= mounts


def test_config_map_holds_files_and_plan_but_no_secret_value() -> None:
    objects = build(APPS / "service")
    data = find(objects, "ConfigMap", "service-app")["data"]
    assert sorted(data) == ["gateways.yaml", "pipeline.yaml", "plan.json"]
    assert data["gateways.yaml"] == (APPS / "service" / "gateways.yaml").read_text()
    for manifest in objects:
        if manifest["kind"] != "Secret":
            assert SECRET_VALUE not in to_yaml([manifest])
    secret = find(objects, "Secret", "service-secrets")
    decoded = yaml.safe_load(base64.b64decode(secret["data"]["secrets.yaml"]))
    assert decoded == {"secrets": [{"id": "jwt", "data": {"secret-key": SECRET_VALUE}}]}
    instance = yaml.safe_load(base64.b64decode(secret["data"]["instance.yaml"]))
    assert instance["instance"]["computeCluster"]["configuration"]["namespace"] == "tenant-a"


def test_secrets_take_environment_references_resolved() -> None:
    key = "from-the-deployers-environment-32-bytes"
    objects = build(APPS / "service", environ={"JWT_SECRET_KEY": key})
    secret = find(objects, "Secret", "service-secrets")
    assert key in base64.b64decode(secret["data"]["secrets.yaml"]).decode()


def test_new_files_roll_out_new_pods(write_app: Any) -> None:
    pipeline = """
    topics: [{name: in, creation-mode: create-if-not-exists}]
    pipeline: [{id: a, type: identity, input: in}]
    """
    first = build(write_app({"pipeline.yaml": pipeline}))
    second = build(write_app({"pipeline.yaml": pipeline + "# changed\n"}))
    checksum = "sluice.dev/config-checksum"
    before = _template(find(first, "Service", "my-app-a"))["metadata"]["annotations"][checksum]
    after = _template(find(second, "Service", "my-app-a"))["metadata"]["annotations"][checksum]
    assert before != after


def test_stateful_agents_get_their_disks() -> None:
    objects = build(APPS / "stateful")
    claims = {
        o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "PersistentVolumeClaim"
    }
    assert claims == {
        "stateful-exclamation": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "50Mi"}},
        },
        "stateful-tally": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "ssd",
        },
    }
    service = find(objects, "Service", "stateful-exclamation")
    assert service["metadata"]["annotations"]["sluice.dev/agents"] == "exclamation,tally"
    assert _scale(service) == ("1", "1")
    mounts = {m["mountPath"]: m["name"] for m in _container(service)["volumeMounts"]}
    volumes = {v["name"]: v for v in _template(service)["spec"]["volumes"]}
    for agent in ("exclamation", "tally"):
        volume = volumes[mounts[f"/persistent-state/{agent}"]]
        assert volume["persistentVolumeClaim"] == {"claimName": f"stateful-{agent}"}
    assert "--state-dir" in _container(service)["args"]


def test_fused_processors_are_one_service_and_one_source() -> None:
    objects = build(APPS / "fused")
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Secret", "fused-secrets"),
        ("ConfigMap", "fused-app"),
        ("Service", "fused-parse"),
        ("KafkaSource", "fused-parse"),
    ]
    service = find(objects, "Service", "fused-parse")
    assert service["metadata"]["annotations"]["sluice.dev/agents"] == "parse,pass-through,normalise"


def test_dead_letter_sink_and_delivery() -> None:
    objects = build(APPS / "dead-letter")
    sink = find(objects, "KafkaSink", "dead-letter-orders-deadletter")
    assert sink["spec"] == {
        "topic": "orders-deadletter",
        "bootstrapServers": ["kafka-0.kafka:9092", "kafka-1.kafka:9092"],
        "contentMode": "binary",
    }
    reference = {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "KafkaSink",
        "name": "dead-letter-orders-deadletter",
    }
    for executor in ("validate", "audit"):
        delivery = find(objects, "KafkaSource", f"dead-letter-{executor}")["spec"]["delivery"]
        assert delivery["deadLetterSink"] == {"ref": reference}
    store = find(objects, "KafkaSource", "dead-letter-store")["spec"]["delivery"]
    assert "deadLetterSink" not in store
    # The worker applies retries and on-failure itself: KafkaSource never gives up on a record.
    for source in (o for o in objects if o["kind"] == "KafkaSource"):
        assert source["spec"]["delivery"]["retry"] == DELIVERY_RETRIES


def test_fail_never_lets_kafka_source_drop_a_record() -> None:
    objects = build(HTTP_GATEWAYS)  # on-failure: fail (the default)
    delivery = find(objects, "KafkaSource", "http-gateways-exclamation")["spec"]["delivery"]
    assert delivery["retry"] >= 1_000_000
    assert "deadLetterSink" not in delivery


def test_python_service_and_agent_id_gateway() -> None:
    objects = build(APPS / "service")
    assert not [o for o in objects if o["kind"] == "KafkaSource"]
    service = find(objects, "Service", "service-chat")
    container = _container(service)
    assert container["ports"] == [{"name": "http1", "containerPort": 8000}]
    assert container["resources"]["requests"] == {"cpu": "1000m", "memory": "1024Mi"}
    assert _scale(service) == ("0", "2")
    gateway = find(objects, "Service", "service-gateway")
    args = _container(gateway)["args"]
    assert _container(gateway)["command"] == ["python", "-m", "gateway"]
    assert args[args.index("--service-url") + 1] == (
        "chat=http://service-chat.tenant-a.svc.cluster.local"
    )
    assert _scale(gateway) == ("1", "3")


def test_camel_source_is_always_on_with_the_camel_image() -> None:
    objects = build(APPS / "camel")
    timer = find(objects, "Service", "camel-timer")
    assert _scale(timer) == ("1", "1")
    assert _container(timer)["image"] == "registry.example/sluice-camel:1.0"
    assert "--push" not in _container(timer)["args"]
    assert "containerConcurrency" not in _template(timer)["spec"]
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "KafkaSource"] == [
        "camel-enrich"
    ]
    enrich = find(objects, "Service", "camel-enrich")
    assert _container(enrich)["image"] == "registry.example/sluice-apps:1.0"


def test_python_agents_run_on_the_applications_environment() -> None:
    """python/requirements.txt: the workers of Python agents start with the interpreter of the
    environment `sluice image` builds into the image; built-in agents and the gateway keep
    Sluice's interpreter (and its libraries)."""
    objects = build(APPS / "requirements")
    commands = {
        o["metadata"]["name"]: _container(o)["command"] for o in objects if o["kind"] == "Service"
    }
    on_environment = ["/opt/sluice/app-env/bin/python", "-m", "workers"]
    assert commands == {
        "requirements-ticks": on_environment,
        "requirements-shout": on_environment,
        "requirements-chat": on_environment,
        "requirements-copy": ["python", "-m", "workers"],
        "requirements-gateway": ["python", "-m", "gateway"],
    }
    assert on_environment[0] == APP_ENV_PYTHON


def test_without_requirements_every_worker_runs_on_sluices_interpreter(tmp_path: Path) -> None:
    app = tmp_path / "requirements"
    shutil.copytree(APPS / "requirements", app)
    (app / "python" / "requirements.txt").unlink()
    for manifest in build(app):
        if manifest["kind"] == "Service":
            assert _container(manifest)["command"][0] == "python"


def test_parallelism_scales_services_and_consumers() -> None:
    objects = build(APPS / "parallel")
    translate = find(objects, "Service", "parallel-translate")
    assert _scale(translate) == ("0", "6")  # parallelism 3 x maxScaleFactor 2
    assert _container(translate)["resources"]["limits"] == {"cpu": "1000m", "memory": "1024Mi"}
    assert _template(translate)["spec"]["containerConcurrency"] == 1
    source = find(objects, "KafkaSource", "parallel-translate")["spec"]
    assert (source["consumers"], source["ordering"]) == (3, "ordered")
    summarize = find(objects, "Service", "parallel-summarize")
    assert _template(summarize)["spec"]["containerConcurrency"] == 4
    assert find(objects, "KafkaSource", "parallel-summarize")["spec"]["ordering"] == "unordered"


def test_the_plan_must_be_of_the_application() -> None:
    app = load(APPS / "fused")
    other = plan_application(load(APPS / "camel"))
    with pytest.raises(ValueError, match="plan"):
        build_manifests(other, app, read_app_files(APPS / "fused"), DeploySettings())
