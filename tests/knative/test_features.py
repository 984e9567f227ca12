from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from knative import FeaturesDisabled, check_features, feature_problems, requires_persistent_volumes
from tests.knative.conftest import HERE, HTTP_GATEWAYS, build

CLAIM = "kubernetes.podspec-persistent-volume-claim"
WRITE = "kubernetes.podspec-persistent-volume-write"


@pytest.mark.parametrize("value", ["enabled", "Enabled", " ENABLED "])
def test_enabled_passes(value: str) -> None:
    check_features({CLAIM: value, WRITE: value, "multi-container": "enabled"})


def test_allowed_is_rejected_naming_the_key_and_the_fix() -> None:
    with pytest.raises(FeaturesDisabled) as caught:
        check_features({CLAIM: "enabled", WRITE: "allowed"})
    assert caught.value.keys == (WRITE,)
    message = str(caught.value)
    assert f'{WRITE} is "allowed"' in message
    assert CLAIM not in message
    assert "kubectl patch configmap config-features -n knative-serving" in message
    assert f'"{WRITE}": "enabled"' in message
    assert isinstance(caught.value, RuntimeError)


def test_missing_flags_are_rejected() -> None:
    with pytest.raises(FeaturesDisabled) as caught:
        check_features(None)
    assert caught.value.keys == (CLAIM, WRITE)
    assert feature_problems({CLAIM: "disabled"}) == [
        f'{CLAIM} is "disabled"',
        f"{WRITE} is not set (the default is disabled)",
    ]


def test_knatives_shipped_config_features_is_rejected() -> None:
    """The ConfigMap as Knative Serving installs it: only an ``_example`` block."""
    shipped = yaml.safe_load(Path(HERE / "crds" / "serving-config-features.yaml").read_text())
    assert feature_problems(shipped["data"]) == [
        f"{CLAIM} is not set (the default is disabled)",
        f"{WRITE} is not set (the default is disabled)",
    ]


def test_only_applications_with_disks_need_the_flags() -> None:
    assert requires_persistent_volumes(build(HERE / "apps" / "stateful"))
    assert not requires_persistent_volumes(build(HTTP_GATEWAYS))
