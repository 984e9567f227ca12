"""The real API server of ``kube_api``: namespaces, the Knative CRDs, server-side apply, validation.

No Knative controller or webhook runs, so only the API server's own rules apply here: the CRDs'
OpenAPI schemas, server-side apply and resource versions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import UnprocessibleEntityError

from tests.kube.apiserver import CRDS_DIR, KubeApi, without_conversion_webhook

FIELD_MANAGER = "sluice"


@pytest.fixture
def dynamic(kube_api: KubeApi) -> Iterator[Any]:
    """A ``kubernetes.dynamic.DynamicClient`` (untyped) on the admin client."""
    with kube_api.client() as api_client:
        make_dynamic: Any = DynamicClient
        yield make_dynamic(api_client)


def kafka_source(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "sources.knative.dev/v1beta1",
        "kind": "KafkaSource",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "sluice"}},
        "spec": {
            "bootstrapServers": ["my-cluster-kafka-bootstrap.kafka:9092"],
            "topics": ["questions"],
            "consumerGroup": "sluice-answers",
            "sink": {
                "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}
            },
        },
    }


def knative_service(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}},
                "spec": {
                    "containers": [
                        {
                            "image": "ghcr.io/example/sluice-worker:1.0",
                            "args": ["--push", "--port", "8080"],
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "SLUICE_APP", "value": "answers"}],
                        }
                    ]
                },
            }
        },
    }


def apply(dynamic: Any, manifest: dict[str, Any]) -> Any:
    resource = dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    return dynamic.server_side_apply(
        resource,
        body=manifest,
        namespace=manifest["metadata"]["namespace"],
        field_manager=FIELD_MANAGER,
    )


def test_kube_apiserver_reports_its_real_version(kube_api: KubeApi) -> None:
    with kube_api.http_client() as http:
        version = http.get("/version").json()
    assert version["major"] == "1"
    assert version["gitVersion"].startswith(f"v1.{version['minor']}.")
    assert version["gitVersion"] != "v0.0.0-master"


def test_the_admin_token_is_required(kube_api: KubeApi) -> None:
    with kube_api.http_client() as http:
        del http.headers["Authorization"]
        assert http.get("/api/v1/namespaces").status_code in (401, 403)
        http.headers["Authorization"] = "Bearer not-the-token"
        assert http.get("/api/v1/namespaces").status_code == 401


def test_namespaces_can_be_created(kube_api: KubeApi) -> None:
    with kube_api.client() as api_client:
        core = k8s_client.CoreV1Api(api_client)
        created = core.create_namespace(
            k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(name="sluice-created"))
        )
        assert created.metadata is not None
        assert created.metadata.uid
        read = core.read_namespace("sluice-created")
        assert read.status is not None
        assert read.status.phase == "Active"
        names = [ns.metadata.name for ns in core.list_namespace().items if ns.metadata]
    assert {"default", "kube-system", "knative-serving", "sluice-created"} <= set(names)


def test_every_crd_in_tests_kube_crds_is_established(kube_api: KubeApi) -> None:
    expected = {
        manifest["metadata"]["name"]
        for path in CRDS_DIR.glob("*.yaml")
        for manifest in [yaml.safe_load(path.read_text())]
        if manifest["kind"] == "CustomResourceDefinition"
    }
    assert len(expected) == 6
    with kube_api.http_client() as http:
        crds = http.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()
    established = {
        item["metadata"]["name"]
        for item in crds["items"]
        if any(
            c["type"] == "Established" and c["status"] == "True"
            for c in item["status"]["conditions"]
        )
    }
    assert expected == established
    kafka_source_crd = next(
        i for i in crds["items"] if i["metadata"]["name"] == "kafkasources.sources.knative.dev"
    )
    assert kafka_source_crd["spec"]["conversion"] == {"strategy": "None"}


def test_the_serving_features_config_map_is_installed(kube_api: KubeApi) -> None:
    with kube_api.http_client() as http:
        response = http.get("/api/v1/namespaces/knative-serving/configmaps/config-features")
    assert response.status_code == 200
    assert "_example" in response.json()["data"]


def test_without_conversion_webhook_keeps_the_original() -> None:
    crd = {"spec": {"conversion": {"strategy": "Webhook", "webhook": {"x": 1}}}}
    assert without_conversion_webhook(crd) == {"spec": {"conversion": {"strategy": "None"}}}
    assert crd["spec"]["conversion"]["strategy"] == "Webhook"
    assert without_conversion_webhook({"spec": {}}) == {"spec": {}}


def test_kafka_source_server_side_apply_and_read_back(dynamic: Any, kube_namespace: str) -> None:
    manifest = kafka_source("answers", kube_namespace)
    applied = apply(dynamic, manifest)
    assert applied.metadata.name == "answers"
    managers = [entry.manager for entry in applied.metadata.managedFields]
    assert managers == [FIELD_MANAGER]

    resource = dynamic.resources.get(api_version="sources.knative.dev/v1beta1", kind="KafkaSource")
    read = resource.get(name="answers", namespace=kube_namespace).to_dict()
    assert read["spec"] == manifest["spec"]
    assert read["metadata"]["labels"] == {"app": "sluice"}
    assert read["metadata"]["generation"] == 1


def test_knative_service_server_side_apply_and_read_back(dynamic: Any, kube_namespace: str) -> None:
    manifest = knative_service("answers", kube_namespace)
    apply(dynamic, manifest)
    resource = dynamic.resources.get(api_version="serving.knative.dev/v1", kind="Service")
    read = resource.get(name="answers", namespace=kube_namespace).to_dict()
    container = read["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/example/sluice-worker:1.0"
    assert container["args"] == ["--push", "--port", "8080"]
    assert container["env"] == [{"name": "SLUICE_APP", "value": "answers"}]
    annotations = read["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"autoscaling.knative.dev/min-scale": "1"}


@pytest.mark.parametrize("make", [kafka_source, knative_service], ids=["KafkaSource", "Service"])
def test_a_second_identical_apply_changes_nothing(
    dynamic: Any, kube_namespace: str, make: Any
) -> None:
    manifest = make("same", kube_namespace)
    first = apply(dynamic, copy.deepcopy(manifest))
    second = apply(dynamic, copy.deepcopy(manifest))
    assert second.metadata.resourceVersion == first.metadata.resourceVersion
    assert second.metadata.generation == first.metadata.generation == 1

    changed = copy.deepcopy(manifest)
    changed["metadata"]["labels"] = {"changed": "yes"}
    third = apply(dynamic, changed)
    assert third.metadata.resourceVersion != first.metadata.resourceVersion
    assert third.metadata.generation == 1, "a label is metadata: the generation stays"


def test_an_invalid_knative_service_is_rejected_with_422(dynamic: Any, kube_namespace: str) -> None:
    manifest = knative_service("broken", kube_namespace)
    manifest["spec"]["template"]["spec"]["containers"] = "ghcr.io/example/sluice-worker:1.0"
    resource = dynamic.resources.get(api_version="serving.knative.dev/v1", kind="Service")
    with pytest.raises(UnprocessibleEntityError) as raised:
        resource.create(body=manifest, namespace=kube_namespace, field_manager=FIELD_MANAGER)
    assert raised.value.status == 422
    status = json.loads(raised.value.body or "{}")
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "spec.template.spec.containers"
    assert "must be of type array" in status["message"]


def test_an_apply_missing_a_required_field_is_rejected_with_422(
    dynamic: Any, kube_namespace: str
) -> None:
    manifest = kafka_source("no-topics", kube_namespace)
    del manifest["spec"]["topics"]
    with pytest.raises(UnprocessibleEntityError) as raised:
        apply(dynamic, manifest)
    assert raised.value.status == 422
    assert "spec.topics: Required value" in json.loads(raised.value.body or "{}")["message"]


def test_an_apply_with_a_wrongly_typed_field_is_rejected_but_not_as_422(
    kube_api: KubeApi, kube_namespace: str
) -> None:
    """Server-side apply turns a type mismatch into a 500 ("failed to create typed patch object"),
    not a 422: an upstream bug (kubernetes/kubernetes#139253, #122480; a fix proposes 400).
    Callers must not take such a 500 as a reason to retry."""
    manifest = knative_service("broken", kube_namespace)
    manifest["spec"]["template"]["spec"]["containers"] = "ghcr.io/example/sluice-worker:1.0"
    path = f"/apis/serving.knative.dev/v1/namespaces/{kube_namespace}/services/broken"
    with kube_api.http_client() as http:
        response = http.patch(
            path,
            params={"fieldManager": FIELD_MANAGER},
            headers={"Content-Type": "application/apply-patch+yaml"},
            content=yaml.safe_dump(manifest).encode(),
        )
        assert response.status_code in (400, 500), response.text
        message = response.json()["message"]
        assert "failed to create typed patch object" in message
        assert ".spec.template.spec.containers: expected list" in message
        assert http.get(path).status_code == 404


def test_the_schema_alone_does_not_check_what_knative_webhooks_check(
    dynamic: Any, kube_namespace: str
) -> None:
    """No Knative webhook runs: values the schema types allow are stored even when Knative
    would refuse them (an unknown port protocol, a negative timeout)."""
    manifest = knative_service("lenient", kube_namespace)
    template_spec = manifest["spec"]["template"]["spec"]
    template_spec["containers"][0]["ports"] = [{"containerPort": 8080, "protocol": "BOGUS"}]
    template_spec["timeoutSeconds"] = -5
    applied = apply(dynamic, manifest).to_dict()
    assert applied["spec"]["template"]["spec"]["timeoutSeconds"] == -5


def test_the_kubeconfig_works_with_the_kubernetes_package(kube_api: KubeApi) -> None:
    from kubernetes import config as k8s_config

    new_client_from_config: Any = k8s_config.new_client_from_config
    api_client = new_client_from_config(config_file=str(kube_api.kubeconfig))
    with api_client:
        assert k8s_client.VersionApi(api_client).get_code().major == "1"


def test_tls_is_verified_against_the_ca_file(kube_api: KubeApi) -> None:
    with httpx.Client(timeout=10.0) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get(f"{kube_api.host}/version")
    with kube_api.http_client() as http:
        assert http.get("/version").status_code == 200
