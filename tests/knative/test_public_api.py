from __future__ import annotations

import knative


def test_public_api() -> None:
    assert knative.__all__ == [
        "AppFiles",
        "DeploySettings",
        "FeaturesDisabled",
        "InvalidSettings",
        "KnativeError",
        "Manifest",
        "ManifestError",
        "build_manifests",
        "check_features",
        "feature_problems",
        "read_app_files",
        "requires_persistent_volumes",
        "settings_from_instance",
        "to_yaml",
    ]
    for name in knative.__all__:
        assert getattr(knative, name) is not None


def test_errors_derive_from_sluice_error_and_a_builtin() -> None:
    from sluice.errors import SluiceError

    assert issubclass(knative.ManifestError, SluiceError) and issubclass(
        knative.ManifestError, ValueError
    )
    assert issubclass(knative.InvalidSettings, knative.ManifestError)
    assert issubclass(knative.FeaturesDisabled, RuntimeError)
