"""Reading pipeline files: topics, pipeline defaults and agents."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.assets import parse_assets
from sluice.application.builtin_config import check_configuration
from sluice.application.model import (
    DEFAULT_DISK_SIZE,
    DEFAULT_MODULE,
    AgentSpec,
    AssetSpec,
    DiskSpec,
    ErrorsSpec,
    ResourcesSpec,
    SchemaSpec,
    TopicSpec,
)
from sluice.application.reader import Node, did_you_mean

MAX_UNITS = 8
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
PIPELINE_KEYS = ("module", "id", "name", "topics", "assets", "resources", "errors", "pipeline")
AGENT_KEYS = ("id", "name", "type", "input", "output", "configuration", "resources", "errors")
TOPIC_KEYS = (
    "name",
    "creation-mode",
    "deletion-mode",
    "partitions",
    "schema",
    "keySchema",
    "key-schema",
    "options",
    "config",
)


@dataclass
class ParsedAgent:
    spec: AgentSpec
    node: Node


@dataclass
class ParsedPipeline:
    id: str
    module: str
    file: str
    name: str | None
    agents: list[ParsedAgent] = field(default_factory=list)
    assets: list[AssetSpec] = field(default_factory=list)


@dataclass
class ParsedTopic:
    spec: TopicSpec
    node: Node


def parse_size(text: Any) -> int | None:
    """``50M`` -> 52428800 (binary multiples); None when it is not a size."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text if text > 0 else None
    match = _SIZE.match(str(text))
    if not match:
        return None
    number = int(match.group(1))
    return number * 1024 ** _POWERS[match.group(2).lower()] if number > 0 else None


def parse_pipeline_file(root: Node, stem: str) -> tuple[ParsedPipeline, list[ParsedTopic]]:
    if not root.is_mapping("a mapping with topics and pipeline", optional=True):
        return ParsedPipeline(stem, DEFAULT_MODULE, root.file.name, None), []
    root.check_keys(PIPELINE_KEYS)
    module = root.string("module", default=DEFAULT_MODULE) or DEFAULT_MODULE
    pipeline_id = root.string("id", default=stem) or stem
    pipeline = ParsedPipeline(pipeline_id, module, root.file.name, root.string("name"))
    topics = [_topic(node) for node in root.child("topics").items()]
    pipeline.assets = parse_assets(root.child("assets"), root.file.name)
    resources = _resources(root.child("resources"))
    errors = _errors(root.child("errors"))
    auto = 1
    for node in root.child("pipeline").items("a list of agents"):
        if not node.is_mapping("an agent (a mapping with at least a type)"):
            continue
        parsed = _agent(node, pipeline, resources, errors, auto)
        if node.get("id") is None:
            auto += 1
        pipeline.agents.append(parsed)
    return pipeline, [t for t in topics if t is not None]


def _topic(node: Node) -> ParsedTopic | None:
    if not node.is_mapping("a topic (a mapping with a name)"):
        return None
    node.check_keys(TOPIC_KEYS)
    name = node.string("name", required=True)
    key_field = node.aliased("keySchema", "key-schema") or "keySchema"
    spec = TopicSpec(
        name=name or "",
        creation_mode=node.string(  # type: ignore[arg-type]
            "creation-mode", default="none", choices=("none", "create-if-not-exists")
        ),
        deletion_mode=node.string(  # type: ignore[arg-type]
            "deletion-mode", default="none", choices=("none", "delete")
        ),
        partitions=node.integer("partitions", 0, low=0),
        schema=_schema(node.child("schema")),
        key_schema=_schema(node.child(key_field)),
        options=node.mapping("options"),
        config={k: _config_text(v) for k, v in node.mapping("config").items()},
    )
    return ParsedTopic(spec, node) if name else None


def _config_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _schema(node: Node) -> SchemaSpec | None:
    if not node.is_mapping(optional=True):
        return None
    node.check_keys(("type", "schema", "name"))
    kind = node.string("type", required=True, choices=("string", "bytes", "json", "avro"))
    if kind is None:
        return None
    schema = node.get("schema")
    if schema is not None and not isinstance(schema, str):
        import json

        schema = json.dumps(schema)
    return SchemaSpec(kind, schema, node.string("name"))  # type: ignore[arg-type]


def _agent(
    node: Node,
    pipeline: ParsedPipeline,
    resources: dict[str, Any],
    errors: dict[str, Any],
    auto: int,
) -> ParsedAgent:
    node.check_keys(AGENT_KEYS)
    agent_type = node.string("type", required=True) or ""
    if agent_type and agent_type not in AGENT_TYPES:
        known = ", ".join(sorted(AGENT_TYPES))
        node.error(
            f'unknown agent type "{agent_type}"{did_you_mean(agent_type, AGENT_TYPES)}'
            f" (known types: {known})",
            "type",
        )
    agent_id = node.string("id")
    if agent_id is None:
        prefix = "" if pipeline.module == DEFAULT_MODULE else f"{pipeline.module}-"
        agent_id = f"{prefix}{pipeline.id}-{agent_type or 'agent'}-{auto}"
    configuration = node.mapping("configuration")
    check_configuration(agent_type, node.child("configuration"))
    kind = AGENT_TYPES.get(agent_type)
    if kind is not None and kind.needs_class_name and not configuration.get("className"):
        node.error(f"{agent_type} needs configuration.className (module.Class)", "configuration")
    if agent_type == "camel-source" and not configuration.get("component-uri"):
        node.error(
            "camel-source needs configuration.component-uri (a Camel URI such as timer:tick)",
            "configuration",
        )
    own = _resources(node.child("resources"))
    merged = {**resources, **own, "disk": {**resources.get("disk", {}), **own.get("disk", {})}}
    disk = merged.pop("disk")
    spec = AgentSpec(
        id=agent_id,
        type=agent_type,
        pipeline=pipeline.id,
        module=pipeline.module,
        file=pipeline.file,
        index=len(pipeline.agents),
        name=node.string("name"),
        input=node.string("input"),
        output=node.string("output"),
        configuration=configuration,
        resources=ResourcesSpec(**merged, disk=DiskSpec(**disk) if disk else None),
        errors=ErrorsSpec(**{**errors, **_errors(node.child("errors"))}),
        secret_paths=_secret_paths(node, "configuration"),
    )
    return ParsedAgent(spec, node)


def _secret_paths(node: Node, key: str) -> frozenset[tuple[str | int, ...]]:
    """The paths under ``node``'s ``key`` whose value a secret placeholder fed."""
    prefix = (*node.path, key)
    return frozenset(
        path[len(prefix) :] for path in node.secret_paths if path[: len(prefix)] == prefix
    )


def _resources(node: Node) -> dict[str, Any]:
    """The fields present in a ``resources`` block (absent ones inherit)."""
    if not node.is_mapping(optional=True):
        return {}
    node.check_keys(("parallelism", "size", "disk"))
    out: dict[str, Any] = {}
    if node.has("parallelism"):
        out["parallelism"] = node.integer("parallelism", 1, low=1, high=MAX_UNITS)
    if node.has("size"):
        out["size"] = node.integer("size", 1, low=1, high=MAX_UNITS)
    disk = node.child("disk")
    if disk.is_mapping(optional=True):
        disk.check_keys(("enabled", "size", "type"))
        out["disk"] = _disk_fields(disk)
    return out


def _disk_fields(disk: Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if disk.has("enabled"):
        out["enabled"] = disk.boolean("enabled", False)
    if disk.has("size"):
        size = parse_size(disk.get("size"))
        if size is None:
            disk.error(
                f"must be a size like 256M or 1G (K, M, G: binary multiples), got "
                f"{disk.show(disk.get('size'), 'size')}",
                "size",
            )
            size = DEFAULT_DISK_SIZE
        out["size"] = size
    if disk.has("type"):
        out["type"] = disk.string("type", default="default")
    return out


def _errors(node: Node) -> dict[str, Any]:
    if not node.is_mapping(optional=True):
        return {}
    node.check_keys(("on-failure", "retries"))
    out: dict[str, Any] = {}
    if node.has("on-failure"):
        out["on_failure"] = node.string(
            "on-failure", default="fail", choices=("fail", "skip", "dead-letter")
        )
    if node.has("retries"):
        out["retries"] = node.integer("retries", 0, low=0)
    return out
