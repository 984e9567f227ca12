"""Offline validation of generated objects, as strict as server-side apply with field validation.

Custom objects are checked against their CRD's ``openAPIV3Schema`` turned into JSON Schema:
objects that list ``properties`` allow no other field unless they say
``x-kubernetes-preserve-unknown-fields``, ``x-kubernetes-int-or-string`` is an integer or a
string, ``x-kubernetes-list-type: set`` items are unique and ``x-kubernetes-list-map-keys``
identify each item. The CRD schemas say nothing useful about ``apiVersion``, ``kind`` and
``metadata``; those are checked here (served version, kind, name and label syntax). Core objects
(Secret, ConfigMap, PersistentVolumeClaim) are checked against the field types of the Kubernetes
OpenAPI as the ``kubernetes`` client models carry them.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Final

import kubernetes.client
import yaml
from jsonschema import Draft7Validator, validators
from jsonschema.exceptions import ValidationError

CRDS: Final = Path(__file__).parent / "crds"
CRD_FILES: Final = {
    ("serving.knative.dev", "Service"): "serving.knative.dev_services.yaml",
    ("sources.knative.dev", "KafkaSource"): "sources.knative.dev_kafkasources.yaml",
    ("eventing.knative.dev", "KafkaSink"): "eventing.knative.dev_kafkasinks.yaml",
    ("kafka.strimzi.io", "KafkaTopic"): "kafka.strimzi.io_kafkatopics.yaml",
}
CORE_MODELS: Final = {
    "Secret": "V1Secret",
    "ConfigMap": "V1ConfigMap",
    "PersistentVolumeClaim": "V1PersistentVolumeClaim",
}

DNS_1035: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_1123_LABEL: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME: Final = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
QUALIFIED_NAME: Final = rf"^({_DNS_SUBDOMAIN}/)?{_NAME}$"
LABEL_VALUE: Final = rf"^({_NAME})?$"
QUANTITY: Final = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")

OBJECT_META: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["name", "namespace"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 63, "pattern": DNS_1035},
        "namespace": {"type": "string", "maxLength": 63, "pattern": DNS_1123_LABEL},
        "labels": {
            "type": "object",
            "propertyNames": {"pattern": QUALIFIED_NAME},
            "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
        },
        "annotations": {
            "type": "object",
            "propertyNames": {"pattern": QUALIFIED_NAME},
            "additionalProperties": {"type": "string"},
        },
    },
}


def _list_map_keys(
    validator: Any, keys: list[str], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """Each item of a list-map has its key fields (or defaults for them) and a unique key."""
    if not isinstance(instance, list):
        return
    fields = schema.get("items", {}).get("properties", {})
    seen: set[tuple[str, ...]] = set()
    for item in instance:
        if not isinstance(item, dict):
            continue
        missing = [k for k in keys if k not in item and "default" not in fields.get(k, {})]
        if missing:
            yield ValidationError(f"list-map item {item!r} lacks its key field(s) {missing}")
        identity = tuple(repr(item.get(k, fields.get(k, {}).get("default"))) for k in keys)
        if identity in seen:
            yield ValidationError(f"two list-map items have the same key {keys} = {identity}")
        seen.add(identity)


# jsonschema's stubs leave extend() untyped.
StructuralValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft7Validator, {"x-kubernetes-list-map-keys": _list_map_keys}
)


def _structural(node: Any) -> Any:
    """A CRD schema node as JSON Schema with Kubernetes' structural rules (see module doc)."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _structural(value) for key, value in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    preserve = out.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@cache
def _crd_validator(group: str, kind: str, version: str) -> Any:
    """A validator for ``group/version`` ``kind``; None when the CRD does not serve it."""
    crd = yaml.safe_load((CRDS / CRD_FILES[(group, kind)]).read_text(encoding="utf-8"))
    versions = crd["spec"]["versions"]
    served = next((v for v in versions if v["name"] == version and v["served"]), None)
    if served is None:
        return None
    schema = _structural(copy.deepcopy(served["schema"]["openAPIV3Schema"]))
    schema["properties"]["apiVersion"] = {"const": f"{group}/{version}"}
    schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
    schema["properties"]["metadata"] = OBJECT_META
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    schema["additionalProperties"] = False
    StructuralValidator.check_schema(schema)
    return StructuralValidator(schema)


def problems(manifest: dict[str, Any]) -> list[str]:
    """Everything wrong with one object; empty when the API server would take it as is."""
    api_version = manifest.get("apiVersion", "")
    kind = manifest.get("kind", "")
    if api_version == "v1" and kind in CORE_MODELS:
        found = _model_problems(manifest, CORE_MODELS[kind], kind)
        meta = Draft7Validator(OBJECT_META)
        found += [f"{kind}.metadata: {e.message}" for e in meta.iter_errors(manifest["metadata"])]
        return found
    group, _, version = api_version.partition("/")
    if (group, kind) not in CRD_FILES:
        return [f"no schema for {api_version} {kind}"]
    validator = _crd_validator(group, kind, version)
    if validator is None:
        return [f"{kind}: version {version!r} is not served by the CRD"]
    found = [
        f"{kind} {'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]
    if kind == "Service" and not found:
        found += _knative_service_problems(manifest)
    return found


def _knative_service_problems(manifest: dict[str, Any]) -> list[str]:
    """What the Serving schema leaves open: template labels, quantities, PVC volume sources."""
    template = manifest["spec"]["template"]
    found: list[str] = []
    for key in ("labels", "annotations"):
        schema = Draft7Validator(OBJECT_META["properties"][key])
        found += [
            f"template.metadata.{key}: {e.message}"
            for e in schema.iter_errors(template["metadata"].get(key, {}))
        ]
    spec = template["spec"]
    for container in spec["containers"]:
        for group, amounts in container.get("resources", {}).items():
            for name, amount in amounts.items():
                if not QUANTITY.match(str(amount)):
                    found.append(f"container {container['name']} {group}.{name}: {amount!r}")
    for volume in spec.get("volumes", []):
        if "persistentVolumeClaim" in volume:
            found += _model_problems(
                volume["persistentVolumeClaim"],
                "V1PersistentVolumeClaimVolumeSource",
                f"volume {volume['name']}",
            )
    return found


_LIST: Final = re.compile(r"^List\[(.+)\]$")
_DICT: Final = re.compile(r"^Dict\[str, (.+)\]$")


def _model_problems(value: Any, type_name: str, where: str) -> list[str]:
    """``value`` against a ``kubernetes.client`` model type: no unknown field, right types."""
    if (match := _LIST.match(type_name)) is not None:
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {value!r}"]
        return [
            p
            for i, item in enumerate(value)
            for p in _model_problems(item, match[1], f"{where}[{i}]")
        ]
    if (match := _DICT.match(type_name)) is not None:
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping, got {value!r}"]
        return [
            p for k, item in value.items() for p in _model_problems(item, match[1], f"{where}.{k}")
        ]
    simple: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,)}
    if type_name in simple:
        ok = isinstance(value, simple[type_name]) and not (
            type_name == "int" and isinstance(value, bool)
        )
        return [] if ok else [f"{where}: expected {type_name}, got {value!r}"]
    if type_name == "bytes":
        try:
            base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            return [f"{where}: expected base64 data"]
        return []
    if type_name == "object":
        return []
    model = getattr(kubernetes.client, type_name)
    if not isinstance(value, dict):
        return [f"{where}: expected a {type_name} mapping, got {value!r}"]
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    found: list[str] = []
    for key, item in value.items():
        if key not in by_json:
            found.append(f"{where}: unknown field {key!r} in {type_name}")
            continue
        found += _model_problems(item, model.openapi_types[by_json[key]], f"{where}.{key}")
    return found
