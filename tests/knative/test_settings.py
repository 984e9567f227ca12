from __future__ import annotations

import pytest

from knative import DeploySettings, InvalidSettings, settings_from_instance
from sluice.application.model import ClusterSpec, InstanceSpec


def _instance(config: dict[str, object], **globals_: object) -> InstanceSpec:
    return InstanceSpec(
        streaming_cluster=ClusterSpec("kafka", {"admin": {"bootstrap.servers": "kafka:9092"}}),
        compute_cluster=ClusterSpec("knative", config),
        globals=globals_,
    )


def test_defaults() -> None:
    settings = settings_from_instance(_instance({}))
    assert settings == DeploySettings(namespace="default", bootstrap_servers=("kafka:9092",))
    assert settings.image == "sluice:0.1.0" and settings.source_image == "sluice:0.1.0"
    assert settings.max_scale_factor == 1
    assert dict(settings.storage_classes) == {"default": None}


def test_everything_set() -> None:
    settings = settings_from_instance(
        _instance(
            {
                "namespace": "team-a",
                "image": "registry.example/app:2",
                "camelImage": "registry.example/camel:2",
                "bootstrapServers": ["b1:9092", "b2:9092"],
                "maxScaleFactor": 4,
                "gatewayMaxScale": 2,
                "storageClasses": {"default": "standard", "fast": "ssd"},
            }
        )
    )
    assert settings == DeploySettings(
        namespace="team-a",
        image="registry.example/app:2",
        camel_image="registry.example/camel:2",
        bootstrap_servers=("b1:9092", "b2:9092"),
        max_scale_factor=4,
        gateway_max_scale=2,
        storage_classes={"default": "standard", "fast": "ssd"},
    )


def test_namespace_from_the_option_then_the_file_then_the_tenant() -> None:
    assert settings_from_instance(_instance({}, tenant="acme")).namespace == "acme"
    assert settings_from_instance(_instance({"namespace": "ns"}, tenant="acme")).namespace == "ns"
    chosen = settings_from_instance(_instance({"namespace": "ns"}), namespace="cli")
    assert chosen.namespace == "cli"


def test_comma_separated_bootstrap_servers() -> None:
    settings = settings_from_instance(_instance({"bootstrapServers": " a:1, b:2 ,"}))
    assert settings.bootstrap_servers == ("a:1", "b:2")


def test_every_bad_value_is_named() -> None:
    with pytest.raises(InvalidSettings) as caught:
        settings_from_instance(
            _instance(
                {
                    "namespace": "Not_A_Namespace",
                    "image": "",
                    "maxScaleFactor": 0,
                    "gatewayMaxScale": "3",
                    "storageClasses": {"fast": "SSD!"},
                    "replicas": 2,
                }
            )
        )
    paths = {p.path for p in caught.value.problems}
    prefix = "instance.computeCluster.configuration"
    assert paths == {
        f"{prefix}.namespace",
        f"{prefix}.image",
        f"{prefix}.maxScaleFactor",
        f"{prefix}.gatewayMaxScale",
        f"{prefix}.storageClasses.fast",
        f"{prefix}.replicas",
    }
    assert all(p.file == "instance.yaml" for p in caught.value.problems)


def test_kafka_must_be_somewhere() -> None:
    instance = InstanceSpec(compute_cluster=ClusterSpec("knative", {}))
    with pytest.raises(InvalidSettings, match=r"bootstrapServers: where is Kafka\?"):
        settings_from_instance(instance)
