"""Kubernetes objects for running a Sluice application on Knative (pure functions).

``sluice deploy`` / ``sluice manifests`` read the settings and files at the edge and call
:func:`build_manifests`; :func:`check_features` checks Knative Serving's feature flags.
"""

from knative.errors import FeaturesDisabled, InvalidSettings, KnativeError, ManifestError
from knative.features import check_features, feature_problems, requires_persistent_volumes
from knative.files import AppFiles, read_app_files
from knative.labels import Manifest
from knative.manifests import build_manifests
from knative.render import to_yaml
from knative.settings import DeploySettings, settings_from_instance

__all__ = [
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
