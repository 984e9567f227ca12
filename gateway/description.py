"""An application described in the JSON shape of LangStream's control plane.

LangStream's CLI reads ``GET /api/applications/{tenant}/{application}`` before every ``gateway``
command (the gateways, their parameters and authentication) and prints it for ``apps get`` and
``apps list`` (the id, the cluster types, the status, the executors and their replicas). This
module builds that description (LangStream's ``ApplicationDescription``: ``application-id``,
``application`` with ``resources``, ``modules`` (pipelines and topics), ``gateways`` and
``instance``, and ``status``) from a loaded :class:`~sluice.application.model.Application`, its
plan and what is known of its workers. Pure: data in, plain JSON values out.

Nothing that may be a credential is shown: agent configuration values that came from secrets read
``(a secret value)`` (as ``sluice plan`` prints them); the configuration of resources, of the
instance's clusters, of gateway authentication and the globals, where Sluice does not track which
values came from secrets, keep their keys with every value reading ``(not shown)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sluice.application.model import (
    DEFAULT_MODULE,
    AgentSpec,
    Application,
    ErrorsSpec,
    GatewaySpec,
    HeaderSpec,
    PipelineSpec,
    ResourcesSpec,
    SchemaSpec,
    TopicSpec,
)
from sluice.application.plan import REDACTED, Executor, Plan

__all__ = [
    "NOT_SHOWN",
    "ReplicaState",
    "ReplicaStatus",
    "WorkerStates",
    "describe",
]

NOT_SHOWN: Final = "(not shown)"
"""What a configuration value reads where Sluice cannot tell whether it came from a secret."""

ReplicaStatus = Literal["INITIALIZING", "RUNNING", "ERROR"]


@dataclass(frozen=True)
class ReplicaState:
    """One running copy of an executor (a worker process, a pod), as LangStream's
    ``AgentWorkerStatus``: ``INITIALIZING`` until ready, ``RUNNING``, or ``ERROR`` and why."""

    status: ReplicaStatus
    reason: str | None = None


WorkerStates = Mapping[str, Sequence[ReplicaState]]
"""Executor id -> its replicas. An executor missing from it is described without replicas
(deployed, its pods unknown to the gateway: on Knative)."""


def describe(
    tenant: str, app: Application, plan: Plan, workers: WorkerStates | None = None
) -> dict[str, Any]:
    """LangStream's ``ApplicationDescription`` of ``app`` served to ``tenant``."""
    del tenant  # LangStream's description does not name the tenant either.
    return {
        "application-id": app.name,
        "application": _definition(app),
        "status": _status(app, plan, workers or {}),
    }


def _definition(app: Application) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "resources": {
            r.id: {
                "id": r.id,
                "name": r.name,
                "type": r.type,
                "configuration": _not_shown(r.configuration),
            }
            for r in app.resources
        },
        "modules": _modules(app),
    }
    if app.gateways:
        definition["gateways"] = {"gateways": [_gateway(g) for g in app.gateways]}
    instance = app.instance
    definition["instance"] = {
        "streamingCluster": {
            "type": instance.streaming_cluster.type,
            "configuration": _not_shown(instance.streaming_cluster.configuration),
        },
        "computeCluster": {
            "type": instance.compute_cluster.type,
            "configuration": _not_shown(instance.compute_cluster.configuration),
        },
        "globals": _not_shown(instance.globals) if instance.globals else None,
    }
    return definition


def _modules(app: Application) -> list[dict[str, Any]]:
    names = [DEFAULT_MODULE]
    names += sorted({p.module for p in app.pipelines} - {DEFAULT_MODULE})
    modules = []
    for name in names:
        pipelines = [p for p in app.pipelines if p.module == name]
        if not pipelines and name != DEFAULT_MODULE:
            continue
        modules.append(
            {
                "id": name,
                "pipelines": [_pipeline(p) for p in pipelines],
                # Sluice keeps one namespace of topics for the application: all in the default
                # module, as every LangStream example declares them.
                "topics": [_topic(t) for t in app.topics.values()]
                if name == DEFAULT_MODULE
                else [],
            }
        )
    return modules


def _pipeline(pipeline: PipelineSpec) -> dict[str, Any]:
    agents = pipeline.agents
    # Sluice applies a pipeline's resources and errors to its agents and keeps no pipeline-level
    # copy: the first agent's stand for them.
    first = agents[0] if agents else None
    return {
        "id": pipeline.id,
        "module": pipeline.module,
        "name": pipeline.name,
        "resources": _resources(first.resources if first else ResourcesSpec()),
        "errors": _errors(first.errors if first else ErrorsSpec()),
        "agents": [_agent(agents, i) for i in range(len(agents))],
    }


def _agent(agents: Sequence[AgentSpec], index: int) -> dict[str, Any]:
    """An agent as LangStream's ``AgentConfiguration``, its connections as its ModelBuilder
    makes them: a declared topic, else the previous agent (and the previous agent's output is
    this one when it names no topic)."""
    agent = agents[index]
    previous = agents[index - 1] if index > 0 else None
    following = agents[index + 1] if index + 1 < len(agents) else None
    dead_letter = agent.errors.on_failure == "dead-letter"
    connection_in: dict[str, Any] | None = None
    if agent.input is not None:
        connection_in = _connection("TOPIC", agent.input, dead_letter)
    elif previous is not None:
        connection_in = _connection("AGENT", previous.id, dead_letter)
    connection_out: dict[str, Any] | None = None
    if agent.output is not None:
        connection_out = _connection("TOPIC", agent.output, False)
    elif following is not None and following.input is None:
        next_dead_letter = following.errors.on_failure == "dead-letter"
        connection_out = _connection("AGENT", following.id, next_dead_letter)
    return {
        "id": agent.id,
        "name": agent.name,
        "type": agent.type,
        "input": connection_in,
        "output": connection_out,
        "configuration": _configuration(agent),
        "resources": _resources(agent.resources),
        "errors": _errors(agent.errors),
    }


def _connection(kind: str, definition: str, dead_letter: bool) -> dict[str, Any]:
    return {"connectionType": kind, "definition": definition, "enableDeadletterQueue": dead_letter}


def _configuration(agent: AgentSpec) -> Any:
    configuration = _plain(agent.configuration)
    for path in sorted(agent.secret_paths, key=len):
        configuration = _redact(configuration, path)
    return configuration


def _redact(data: Any, path: tuple[str | int, ...]) -> Any:
    if not path:
        return REDACTED
    head, rest = path[0], path[1:]
    if isinstance(data, dict) and str(head) in data:
        data[str(head)] = _redact(data[str(head)], rest)
    elif isinstance(data, list) and isinstance(head, int) and head < len(data):
        data[head] = _redact(data[head], rest)
    return data


def _resources(spec: ResourcesSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"parallelism": spec.parallelism, "size": spec.size}
    if spec.disk is not None:
        out["disk"] = {"enabled": spec.disk.enabled, "size": spec.disk.size, "type": spec.disk.type}
    return out


def _errors(spec: ErrorsSpec) -> dict[str, Any]:
    return {"retries": spec.retries, "on-failure": spec.on_failure}


def _topic(topic: TopicSpec) -> dict[str, Any]:
    return {
        "name": topic.name,
        "config": dict(topic.config) or None,
        "options": _plain(topic.options) or None,
        "keySchema": _schema(topic.key_schema),
        "valueSchema": _schema(topic.schema),
        "partitions": topic.partitions,
        "implicit": topic.implicit,
        "creation-mode": topic.creation_mode,
        "deletion-mode": topic.deletion_mode,
    }


def _schema(schema: SchemaSpec | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    return {"type": schema.type, "schema": schema.schema, "name": schema.name}


def _gateway(spec: GatewaySpec) -> dict[str, Any]:
    """A gateway as LangStream's ``Gateway`` serializes: camelCase produce and consume options
    and header fields, kebab-case chat and service options, every field present."""
    auth = spec.authentication
    chat = spec.chat
    service = spec.service
    return {
        "id": spec.id,
        "type": spec.type,
        "topic": spec.topic,
        "authentication": None
        if auth is None
        else {
            "provider": auth.provider,
            "configuration": _not_shown(auth.configuration),
            "allow-test-mode": auth.allow_test_mode,
        },
        "parameters": list(spec.parameters) or None,
        "produceOptions": {"headers": _headers(spec.produce_headers)}
        if spec.produce_headers
        else None,
        "consumeOptions": {"filters": {"headers": _headers(spec.consume_filters)}}
        if spec.consume_filters
        else None,
        "chat-options": None
        if chat is None
        else {
            "questions-topic": chat.questions_topic,
            "answers-topic": chat.answers_topic,
            "headers": _headers(chat.headers),
        },
        "service-options": None
        if service is None
        else {
            "agent-id": service.agent_id,
            "input-topic": service.input_topic,
            "output-topic": service.output_topic,
            "headers": _headers(service.headers),
        },
        "events-topic": spec.events_topic,
    }


def _headers(headers: Sequence[HeaderSpec]) -> list[dict[str, Any]]:
    return [
        {
            "key": h.key,
            "value": h.value,
            "valueFromParameters": h.value_from_parameters,
            "valueFromAuthentication": h.value_from_authentication,
        }
        for h in headers
    ]


def _status(app: Application, plan: Plan, workers: WorkerStates) -> dict[str, Any]:
    return {
        "status": {"status": "DEPLOYED", "reason": None},
        "executors": [
            _executor(app, e, workers.get(e.id)) for e in sorted(plan.executors, key=lambda e: e.id)
        ],
    }


def _executor(
    app: Application, executor: Executor, replicas: Sequence[ReplicaState] | None
) -> dict[str, Any]:
    agents: list[dict[str, Any]] = []
    if executor.input_topic is not None:
        agents.append(_node("topic-source", "topic-source", "SOURCE", executor.input_topic))
    agents += [_node(a.id, a.type, a.component.upper(), None) for a in executor.agents]
    if executor.output_topic is not None:
        agents.append(_node("topic-sink", "topic-sink", "SINK", executor.output_topic))
    return {
        "id": executor.id,
        "status": {"status": "DEPLOYED", "reason": None},
        "replicas": [
            {
                "id": f"{app.name}-{executor.id}-{index}",
                "status": replica.status,
                "reason": replica.reason,
                "agents": agents,
            }
            for index, replica in enumerate(replicas or ())
        ],
    }


def _node(agent_id: str, agent_type: str, component: str, topic: str | None) -> dict[str, Any]:
    return {
        "agent-id": agent_id,
        "agent-type": agent_type,
        "component-type": component,
        "info": {"topic": topic} if topic is not None else {},
    }


def _plain(value: Any) -> Any:
    """Mappings and sequences of the frozen model as JSON dicts and lists (copies)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _not_shown(value: Any) -> Any:
    """``value`` with its mapping keys and list shape kept and every other value hidden."""
    if isinstance(value, Mapping):
        return {str(k): _not_shown(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_not_shown(v) for v in value]
    return NOT_SHOWN
