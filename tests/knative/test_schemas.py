"""The validator of the other tests rejects what the API server would, so their passing means
something."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.knative import schemas
from tests.knative.conftest import HERE, build, find

OBJECTS = build(HERE / "apps" / "stateful")


def _broken(kind: str, name: str) -> dict[str, Any]:
    return copy.deepcopy(find(OBJECTS, kind, name))


def test_an_unknown_field_in_a_service_spec() -> None:
    service = _broken("Service", "stateful-exclamation")
    service["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert any("imagePullPolicyy" in p for p in schemas.problems(service))


def test_a_wrong_type() -> None:
    source = _broken("KafkaSource", "stateful-exclamation")
    source["spec"]["consumers"] = "3"
    assert schemas.problems(source) == ["KafkaSource spec.consumers: '3' is not of type 'integer'"]


def test_two_volumes_with_one_name() -> None:
    service = _broken("Service", "stateful-exclamation")
    volumes = service["spec"]["template"]["spec"]["volumes"]
    volumes.append(copy.deepcopy(volumes[0]))
    assert any("same key" in p for p in schemas.problems(service))


def test_a_missing_required_field_and_a_wrong_api_version() -> None:
    source = _broken("KafkaSource", "stateful-exclamation")
    del source["spec"]["topics"]
    source["apiVersion"] = "sources.knative.dev/v1alpha1"
    assert schemas.problems(source) == ["KafkaSource: version 'v1alpha1' is not served by the CRD"]
    source["apiVersion"] = "sources.knative.dev/v1beta1"
    assert any("'topics' is a required property" in p for p in schemas.problems(source))


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "Not-DNS"), ("name", "x" * 64), ("namespace", "a_b")],
)
def test_bad_metadata(field: str, value: str) -> None:
    sink = _broken("Service", "stateful-gateway")
    sink["metadata"][field] = value
    assert schemas.problems(sink)


def test_bad_label_value_in_a_pod_template() -> None:
    service = _broken("Service", "stateful-gateway")
    service["spec"]["template"]["metadata"]["labels"]["sluice.dev/agent"] = "not valid!"
    assert any("template.metadata.labels" in p for p in schemas.problems(service))


def test_core_objects_are_checked_against_their_types() -> None:
    claim = _broken("PersistentVolumeClaim", "stateful-tally")
    claim["spec"]["accessMode"] = ["ReadWriteOnce"]
    assert schemas.problems(claim) == [
        "PersistentVolumeClaim.spec: unknown field 'accessMode' in V1PersistentVolumeClaimSpec"
    ]
    secret = _broken("Secret", "stateful-secrets")
    secret["data"]["secrets.yaml"] = "not base64!"
    assert schemas.problems(secret) == ["Secret.data.secrets.yaml: expected base64 data"]


def test_a_pvc_volume_source_is_checked_although_the_schema_leaves_it_open() -> None:
    service = _broken("Service", "stateful-exclamation")
    for volume in service["spec"]["template"]["spec"]["volumes"]:
        if "persistentVolumeClaim" in volume:
            volume["persistentVolumeClaim"]["name"] = "x"
    assert any("unknown field 'name'" in p for p in schemas.problems(service))
