"""The ConfigMap (application files and plan) and the Secret (secrets and instance) of an app.

The ConfigMap ``<app>-app`` holds each application YAML file under its own name, as written,
and the plan as ``plan.json`` (for people and tools; the pods plan again from the files). The
Secret ``<app>-secrets`` holds ``secrets.yaml`` and ``instance.yaml``: placeholders in the
files are resolved inside the pods, so no secret value is ever written into the ConfigMap. Kafka
certificate files named in instance.yaml are replaced by the Kafka Secret's files
(:func:`knative.kafka_secret.pod_instance`).
Secret values are base64 ``data``, not ``stringData``, so that server-side apply owns exactly
the fields it wrote.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

import yaml

from knative.files import AppFiles
from knative.kafka_secret import pod_instance
from knative.labels import Manifest, labels, metadata
from knative.names import config_map_name, secret_name
from knative.scope import Scope
from sluice.application.plan import Plan
from sluice.errors import Problem

__all__ = [
    "INSTANCE_KEY",
    "MAX_CONFIG_MAP_BYTES",
    "PLAN_KEY",
    "SECRETS_KEY",
    "config_data",
    "config_map",
    "config_problems",
    "data_checksum",
    "secret",
]

PLAN_KEY: Final = "plan.json"
INSTANCE_KEY: Final = "instance.yaml"
SECRETS_KEY: Final = "secrets.yaml"
MAX_CONFIG_MAP_BYTES: Final = 1024 * 1024
"""What the API server stores at most in one ConfigMap (etcd's object size limit)."""
_KEY: Final = re.compile(r"^[-._a-zA-Z0-9]+$")


def config_data(files: AppFiles, plan: Plan) -> dict[str, str]:
    data = {name: files.application[name] for name in sorted(files.application)}
    data[PLAN_KEY] = json.dumps(plan.to_dict(), indent=2) + "\n"
    return data


def config_problems(files: AppFiles, data: Mapping[str, str]) -> list[Problem]:
    problems = [
        Problem(
            name,
            "",
            "this file name cannot be a ConfigMap key (letters, digits, '-', '_' and '.' "
            "only): rename the file",
        )
        for name in sorted(files.application)
        if not _KEY.match(name) or name == PLAN_KEY
    ]
    size = sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in data.items())
    if size > MAX_CONFIG_MAP_BYTES:
        problems.append(
            Problem(
                "",
                "",
                f"the application's YAML files and plan take {size} bytes, more than a "
                f"ConfigMap holds ({MAX_CONFIG_MAP_BYTES}); move data out of the YAML files",
            )
        )
    return problems


def data_checksum(data: Mapping[str, str]) -> str:
    encoded = json.dumps(dict(data), sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:16]


def config_map(scope: Scope, data: Mapping[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            config_map_name(scope.app), scope.namespace, labels(scope.app, "", "config")
        ),
        "data": dict(data),
    }


def secret(scope: Scope, files: AppFiles) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(
            secret_name(scope.app), scope.namespace, labels(scope.app, "", "config")
        ),
        "type": "Opaque",
        "data": {
            INSTANCE_KEY: _base64_yaml(pod_instance(files.instance, scope.settings.kafka_auth)),
            SECRETS_KEY: _base64_yaml(files.secrets),
        },
    }


def _base64_yaml(document: Mapping[str, Any]) -> str:
    text = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
