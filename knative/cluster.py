"""The one module of ``knative/`` that talks to a cluster: server-side apply of generated
objects (field manager ``sluice``), their diff against what is live, readiness, and deletion by
the application's label. ``sluice deploy`` and ``sluice delete`` drive it.

Apply is idempotent: a second apply of the same objects changes nothing (the API server keeps the
same ``resourceVersion``), a changed application updates only the objects that changed. With
``dry_run`` the API server computes the result of the apply without storing it, and the diff is
against that result.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import yaml
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import (
    NotFoundError,
    ResourceNotFoundError,
)

from knative.errors import KnativeError
from knative.features import FEATURES_CONFIG_MAP, FEATURES_NAMESPACE
from knative.labels import Manifest

__all__ = [
    "FIELD_MANAGER",
    "KINDS",
    "Change",
    "ClusterError",
    "apply_objects",
    "delete_application",
    "ensure_namespace",
    "features_data",
    "readiness",
]

FIELD_MANAGER: Final = "sluice"
APPLICATION_LABEL: Final = "sluice.dev/application"
KINDS: Final = (
    ("sources.knative.dev/v1beta1", "KafkaSource"),
    ("serving.knative.dev/v1", "Service"),
    ("eventing.knative.dev/v1alpha1", "KafkaSink"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
)
"""What the generator makes, in the order ``sluice delete`` removes it (users first)."""

# Fields the API server owns: not part of what the application declares.
_SERVER_METADATA: Final = (
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
)

Action = Literal["created", "configured", "unchanged"]


class ClusterError(KnativeError):
    """The cluster refused or could not do what was asked; the message says which object."""


@dataclass(frozen=True)
class Change:
    """What applying one object did (or, in a dry run, would do)."""

    kind: str
    name: str
    action: Action
    diff: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.kind}/{self.name}"


def _client(api: ApiClient) -> Any:
    """The dynamic client (untyped upstream, hence ``Any``)."""
    client: Any = DynamicClient
    return client(api)


def _resource(client: DynamicClient, api_version: str, kind: str) -> Any:
    try:
        return client.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError:
        if kind == "KafkaTopic":
            raise ClusterError(
                f"the cluster does not serve {kind} ({api_version}): install Strimzi 0.49 or "
                "later (its Topic Operator), or create the topics with --topics admin"
            ) from None
        raise ClusterError(
            f"the cluster does not serve {kind} ({api_version}): install Knative Serving, "
            "Knative Eventing and its Kafka source and sink first (see the README)"
        ) from None


def _reason(error: ApiException) -> str:
    try:
        body = yaml.safe_load(error.body or "")
    except yaml.YAMLError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"{error.status} {error.reason}"


def _declared(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``document`` without the fields the server owns (status included)."""
    if document is None:
        return None
    trimmed = {k: v for k, v in document.items() if k != "status"}
    metadata = {
        k: v for k, v in dict(trimmed.get("metadata") or {}).items() if k not in _SERVER_METADATA
    }
    annotations = {
        k: v
        for k, v in dict(metadata.get("annotations") or {}).items()
        if not k.startswith(("serving.knative.dev/", "kubectl.kubernetes.io/"))
    }
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    trimmed["metadata"] = metadata
    return trimmed


def _diff(
    title: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[str, ...]:
    old = yaml.safe_dump(before, sort_keys=True).splitlines() if before is not None else []
    new = yaml.safe_dump(after, sort_keys=True).splitlines() if after is not None else []
    return tuple(
        difflib.unified_diff(old, new, f"live/{title}", f"sluice/{title}", lineterm="", n=3)
    )


def ensure_namespace(api: ApiClient, namespace: str, *, dry_run: bool = False) -> bool:
    """Create ``namespace`` when it does not exist (without Sluice's labels: ``sluice delete``
    leaves it). True when it was (or would be) created."""
    resource = _resource(_client(api), "v1", "Namespace")
    try:
        resource.get(name=namespace)
        return False
    except NotFoundError:
        pass
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    try:
        resource.create(body=body, dry_run="All" if dry_run else None)
    except ApiException as error:
        raise ClusterError(f"cannot create namespace {namespace}: {_reason(error)}") from None
    return True


def features_data(api: ApiClient) -> dict[str, str] | None:
    """The data of Knative Serving's ``config-features`` ConfigMap; None when it is missing."""
    resource = _resource(_client(api), "v1", "ConfigMap")
    try:
        found = resource.get(name=FEATURES_CONFIG_MAP, namespace=FEATURES_NAMESPACE).to_dict()
    except NotFoundError:
        return None
    except ApiException as error:
        raise ClusterError(
            f"cannot read {FEATURES_NAMESPACE}/{FEATURES_CONFIG_MAP}: {_reason(error)}"
        ) from None
    return {str(k): str(v) for k, v in (found.get("data") or {}).items()}


def apply_objects(
    api: ApiClient,
    objects: Sequence[Manifest],
    *,
    dry_run: bool = False,
    new_namespace: bool = False,
    progress: Callable[[Change], None] | None = None,
) -> list[Change]:
    """Server-side apply every object in order (field manager ``sluice``, taking over fields
    another manager set); what each did, with its diff against the live object.

    A dry run into a namespace that does not exist yet (``new_namespace``) cannot be checked
    by the server, which refuses any object in a missing namespace even in a dry run: every
    object is then reported as created, its diff being the whole object as Sluice declares it.
    """
    client = _client(api)
    changes: list[Change] = []
    for manifest in objects:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        if dry_run and new_namespace:
            title = f"{kind}/{name}"
            change = Change(kind, name, "created", _diff(title, None, _declared(manifest)))
            changes.append(change)
            if progress is not None:
                progress(change)
            continue
        namespace = manifest["metadata"].get("namespace")
        resource = _resource(client, manifest["apiVersion"], kind)
        try:
            live = resource.get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            live = None
        except ApiException as error:
            raise ClusterError(f"cannot read {kind} {name}: {_reason(error)}") from None
        try:
            applied = client.server_side_apply(
                resource,
                body=manifest,
                name=name,
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                dry_run="All" if dry_run else None,
            ).to_dict()
        except ApiException as error:
            raise ClusterError(f"the cluster refused {kind} {name}: {_reason(error)}") from None
        title = f"{kind}/{name}"
        before, after = _declared(live), _declared(applied)
        if live is None:
            action: Action = "created"
        elif dry_run:
            action = "unchanged" if before == after else "configured"
        else:
            same = live["metadata"]["resourceVersion"] == applied["metadata"]["resourceVersion"]
            action = "unchanged" if same else "configured"
        change = Change(
            kind, name, action, _diff(title, before, after) if action != "unchanged" else ()
        )
        changes.append(change)
        if progress is not None:
            progress(change)
    return changes


def _ready(document: Mapping[str, Any]) -> tuple[bool, str]:
    kind = document.get("kind")
    status = document.get("status") or {}
    if kind in ("Secret", "ConfigMap"):
        return True, "present"
    if kind == "PersistentVolumeClaim":
        phase = status.get("phase") or "no status yet"
        # WaitForFirstConsumer classes bind when the pod starts: Pending is fine until then.
        return phase in ("Bound", "Pending"), phase
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            ready = condition.get("status") == "True"
            return ready, "ready" if ready else str(condition.get("message") or "not ready")
    return False, "no status yet (is its controller running?)"


def readiness(api: ApiClient, objects: Iterable[Manifest]) -> dict[str, tuple[bool, str]]:
    """``Kind/name`` -> (ready, why) for every object, as the cluster reports now."""
    client = _client(api)
    found: dict[str, tuple[bool, str]] = {}
    for manifest in objects:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        resource = _resource(client, manifest["apiVersion"], kind)
        try:
            live = resource.get(name=name, namespace=manifest["metadata"].get("namespace"))
        except NotFoundError:
            found[f"{kind}/{name}"] = (False, "missing")
            continue
        found[f"{kind}/{name}"] = _ready(live.to_dict())
    return found


def delete_application(api: ApiClient, application: str, namespace: str) -> list[str]:
    """Delete every object labelled with ``application`` in ``namespace``; ``Kind/name`` of
    each deleted. Kinds the cluster does not serve are skipped."""
    client = _client(api)
    deleted: list[str] = []
    selector = f"{APPLICATION_LABEL}={application}"
    for api_version, kind in KINDS:
        try:
            resource = client.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            continue
        try:
            items = resource.get(namespace=namespace, label_selector=selector).to_dict()["items"]
            for item in items:
                name = item["metadata"]["name"]
                resource.delete(name=name, namespace=namespace)
                deleted.append(f"{kind}/{name}")
        except NotFoundError:
            continue
        except ApiException as error:
            raise ClusterError(f"cannot delete the {kind} objects: {_reason(error)}") from None
    return deleted
