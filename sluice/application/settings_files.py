"""Reading instance.yaml, secrets.yaml and configuration.yaml."""

from __future__ import annotations

from typing import Any

from sluice.application.kafka_properties import check_properties
from sluice.application.model import ClusterSpec, DependencySpec, InstanceSpec, ResourceSpec
from sluice.application.reader import Node

COMPUTE_CLUSTERS = ("local", "knative", "kubernetes", "none")


def parse_secrets(root: Node) -> dict[str, dict[str, Any]]:
    """Secret id -> data. Values are never shown in errors."""
    if not root.is_mapping("a mapping with a secrets list", optional=True):
        return {}
    root.check_keys(("secrets",))
    secrets: dict[str, dict[str, Any]] = {}
    for node in root.child("secrets").items("a list of secrets"):
        if not node.is_mapping("a secret (a mapping with id and data)"):
            continue
        node.check_keys(("id", "name", "data"))
        secret_id = node.string("id", required=True)
        data = node.mapping("data")
        if secret_id is None:
            continue
        if secret_id in secrets:
            node.error(f'duplicate secret id "{secret_id}"', "id")
        secrets[secret_id] = data
    return secrets


def parse_instance(root: Node) -> InstanceSpec:
    if not root.is_mapping("a mapping with an instance block", optional=True):
        return InstanceSpec()
    root.check_keys(("instance",))
    node = root.child("instance")
    if not node.is_mapping(optional=True):
        return InstanceSpec()
    node.check_keys(("streamingCluster", "computeCluster", "globals"))
    streaming = _cluster(node.child("streamingCluster"), "kafka", ("kafka",))
    compute = _cluster(node.child("computeCluster"), "local", COMPUTE_CLUSTERS)
    if compute.type == "kubernetes":
        # LangStream's "kubernetes" compute cluster is what Knative is here.
        compute = ClusterSpec("knative", compute.configuration)
    streaming_config = streaming.configuration.get("admin")
    configuration = node.child("streamingCluster").child("configuration")
    if streaming_config is not None and not isinstance(streaming_config, dict):
        configuration.error("must be a mapping of Kafka client properties", "admin")
    elif streaming_config:
        _check_kafka_properties(configuration.child("admin"), streaming_config)
    return InstanceSpec(streaming, compute, node.mapping("globals"))


def _check_kafka_properties(node: Node, properties: dict[str, Any]) -> None:
    """Each unsupported or malformed Kafka client property is an error at its line; a value
    from secrets.yaml is not shown."""
    options = {k: v for k, v in properties.items() if k != "bootstrap.servers"}
    for name, message in check_properties(options):
        if name in options:
            message = message.replace(repr(options[name]), node.show(options[name], name))
        node.error(message, name)


def _cluster(node: Node, default: str, kinds: tuple[str, ...]) -> ClusterSpec:
    if not node.is_mapping(optional=True):
        return ClusterSpec(default)
    node.check_keys(("type", "configuration"))
    kind = node.string("type", default=default, choices=kinds) or default
    return ClusterSpec(kind, node.mapping("configuration"))


def configuration_globals(root: Node) -> dict[str, Any]:
    """``configuration.defaults.globals``: read first, placeholders need them."""
    config = root.child("configuration")
    defaults = config.child("defaults") if isinstance(config.value, dict) else None
    if defaults is None or not isinstance(defaults.value, dict):
        return {}
    value = defaults.get("globals")
    return value if isinstance(value, dict) else {}


def parse_configuration(root: Node) -> tuple[list[ResourceSpec], list[DependencySpec]]:
    if not root.is_mapping("a mapping with a configuration block", optional=True):
        return [], []
    root.check_keys(("configuration",))
    node = root.child("configuration")
    if not node.is_mapping(optional=True):
        return [], []
    node.check_keys(("defaults", "resources", "dependencies"))
    defaults = node.child("defaults")
    if defaults.is_mapping(optional=True):
        defaults.check_keys(("globals",))
        defaults.mapping("globals")
    # Keyed as LangStream keys them: by id, else name; a later resource with the same key
    # replaces the earlier one there, so it does here, with a warning.
    resources: dict[str, tuple[ResourceSpec, Node]] = {}
    for item in node.child("resources").items("a list of resources"):
        if not item.is_mapping("a resource (a mapping with type, name and configuration)"):
            continue
        item.check_keys(("type", "name", "id", "configuration"))
        kind = item.string("type", required=True)
        name = item.string("name")
        key = item.string("id") or name
        if key is None:
            item.error("a resource needs an id or a name")
            continue
        previous = resources.get(key)
        if previous is not None:
            line = previous[1].file.line(previous[1].path)
            where = f"{previous[1].file.name}:{line}" if line else previous[1].file.name
            item.warn(
                f'resource "{key}" is declared again (first at {where}): this one replaces it, '
                "as in LangStream (resources are keyed by id, else name)"
            )
        if kind:
            resources[key] = (ResourceSpec(kind, key, item.mapping("configuration"), name), item)
    dependencies: list[DependencySpec] = []
    for item in node.child("dependencies").items("a list of dependencies"):
        if isinstance(item.value, str):
            dependencies.append(DependencySpec(maven=item.value))
            continue
        if not item.is_mapping("a dependency (Maven coordinates, or a mapping with url)"):
            continue
        item.check_keys(("name", "url", "sha512sum", "type", "maven"))
        dependency = DependencySpec(
            name=item.string("name"),
            url=item.string("url"),
            sha512sum=item.string("sha512sum"),
            type=item.string("type", default="java-library", choices=("java-library",))
            or "java-library",
            maven=item.string("maven"),
        )
        if dependency.url is None and dependency.maven is None:
            item.error("a dependency needs a url or maven coordinates (group:artifact:version)")
        dependencies.append(dependency)
    return [spec for spec, _ in resources.values()], dependencies
