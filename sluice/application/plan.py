"""The planner: from a loaded application to topics and executors. Pure and deterministic.

Rules (docs/application.md, "The planner"): agents without an id get ``<pipeline>-<type>-<n>``
(done by the loader); two consecutive agents with no topic between them are joined by the
implicit topic ``agent-<next-id>-input`` unless they are fused; agents with
``on-failure: dead-letter`` get ``<input>-deadletter``; consecutive agents are fused into one
executor when joined by an implicit topic, neither is a service, both are composable, and their
parallelism, size and errors are equal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.model import (
    AgentSpec,
    Application,
    ComponentType,
    DiskSpec,
    ErrorsSpec,
    ResourcesSpec,
    TopicSpec,
)

DEAD_LETTER_SUFFIX = "-deadletter"
REDACTED = "(a secret value)"


@dataclass(frozen=True)
class AgentDisk:
    agent_id: str
    size: int
    type: str


@dataclass(frozen=True)
class PlannedAgent:
    id: str
    type: str
    component: ComponentType
    pipeline: str
    name: str | None = None
    configuration: Mapping[str, Any] = field(default_factory=dict)
    disk: AgentDisk | None = None
    secret_paths: frozenset[tuple[str | int, ...]] = field(
        default=frozenset(), metadata={"internal": True}
    )


@dataclass(frozen=True)
class Executor:
    """A unit that runs as one process (one Knative Service): a fused chain of agents."""

    id: str
    component: ComponentType
    agents: tuple[PlannedAgent, ...]
    input_topic: str | None
    output_topic: str | None
    dead_letter_topic: str | None
    resources: ResourcesSpec
    errors: ErrorsSpec

    @property
    def disks(self) -> tuple[AgentDisk, ...]:
        return tuple(a.disk for a in self.agents if a.disk is not None)


@dataclass(frozen=True)
class Plan:
    application: str
    topics: tuple[TopicSpec, ...]
    executors: tuple[Executor, ...]

    def executor(self, executor_id: str) -> Executor | None:
        return next((e for e in self.executors if e.id == executor_id), None)

    def executor_of(self, agent_id: str) -> Executor | None:
        return next((e for e in self.executors if any(a.id == agent_id for a in e.agents)), None)

    def topic(self, name: str) -> TopicSpec | None:
        return next((t for t in self.topics if t.name == name), None)

    def topic_spec(self, name: str) -> TopicSpec:
        """The planned topic ``name``, or a bare spec (no schema) for a topic not declared."""
        return self.topic(name) or TopicSpec.bare(name)

    def to_dict(self, *, show_secrets: bool = False) -> dict[str, Any]:
        """The plan as plain data; values of agent configurations that came from secrets are
        replaced by ``(a secret value)`` unless ``show_secrets``."""
        result = _to_plain(self, show_secrets)
        assert isinstance(result, dict)
        return result


def plan_application(app: Application) -> Plan:
    topics: dict[str, TopicSpec] = dict(app.topics)
    executors: list[Executor] = []
    for pipeline in app.pipelines:
        chains = _chains(pipeline.agents)
        for index, chain in enumerate(chains):
            first, last = chain[0], chain[-1]
            input_topic = first.input
            if input_topic is None and index > 0 and _connects(chains[index - 1][-1], first):
                previous = chains[index - 1][-1]
                input_topic = previous.output or implicit_topic_name(first.id)
            output_topic = last.output
            if output_topic is None and index + 1 < len(chains):
                following = chains[index + 1][0]
                if _connects(last, following):
                    output_topic = implicit_topic_name(following.id)
            for name in (input_topic, output_topic):
                if name is not None and name not in topics:
                    topics[name] = TopicSpec(name, "create-if-not-exists", implicit=True)
            dead_letter = None
            if first.errors.on_failure == "dead-letter" and input_topic is not None:
                dead_letter = input_topic + DEAD_LETTER_SUFFIX
                source = topics[input_topic]
                topics.setdefault(
                    dead_letter,
                    TopicSpec(
                        dead_letter,
                        "create-if-not-exists",
                        schema=source.schema,
                        key_schema=source.key_schema,
                        implicit=True,
                    ),
                )
            executors.append(
                Executor(
                    id=first.id,
                    component=_component(chain),
                    agents=tuple(_planned(agent) for agent in chain),
                    input_topic=input_topic,
                    output_topic=output_topic,
                    dead_letter_topic=dead_letter,
                    resources=dataclasses.replace(first.resources, disk=None),
                    errors=first.errors,
                )
            )
    return Plan(app.name, tuple(sorted(topics.values(), key=lambda t: t.name)), tuple(executors))


def implicit_topic_name(agent_id: str) -> str:
    return f"agent-{agent_id}-input"


def _component_of(agent: AgentSpec) -> ComponentType:
    return AGENT_TYPES[agent.type].component


def _connects(previous: AgentSpec, agent: AgentSpec) -> bool:
    """Whether ``agent`` reads what ``previous`` writes because it names no input itself."""
    return (
        agent.input is None
        and _component_of(agent) in ("processor", "sink")
        and _component_of(previous) in ("source", "processor")
    )


def _composable(agent: AgentSpec) -> bool:
    flag = agent.configuration.get("composable", True)
    return AGENT_TYPES[agent.type].composable and str(flag).lower() != "false"


def _fuses(previous: AgentSpec, agent: AgentSpec) -> bool:
    return (
        _connects(previous, agent)
        and previous.output is None
        and _composable(previous)
        and _composable(agent)
        and previous.resources.parallelism == agent.resources.parallelism
        and previous.resources.size == agent.resources.size
        and previous.errors == agent.errors
    )


def _chains(agents: tuple[AgentSpec, ...]) -> list[list[AgentSpec]]:
    chains: list[list[AgentSpec]] = []
    for agent in agents:
        if chains and _fuses(chains[-1][-1], agent):
            chains[-1].append(agent)
        else:
            chains.append([agent])
    return chains


def _component(chain: list[AgentSpec]) -> ComponentType:
    first, last = _component_of(chain[0]), _component_of(chain[-1])
    if first in ("source", "service"):
        return first
    return "sink" if last == "sink" else "processor"


def _disk(agent: AgentSpec) -> DiskSpec | None:
    """The agent's persistent disk. ``webcrawler-source`` with ``state-storage: disk`` keeps
    its crawl there, so it gets one even when ``resources.disk`` does not ask (LangStream's
    planner does the same: 256M unless a size is given)."""
    configuration = agent.configuration or {}
    if agent.type == "webcrawler-source" and configuration.get("state-storage") == "disk":
        configured = agent.resources.disk or DiskSpec()
        return dataclasses.replace(configured, enabled=True)
    return agent.disk


def _planned(agent: AgentSpec) -> PlannedAgent:
    disk = _disk(agent)
    return PlannedAgent(
        id=agent.id,
        type=agent.type,
        component=_component_of(agent),
        pipeline=agent.pipeline,
        name=agent.name,
        configuration=agent.configuration,
        disk=AgentDisk(agent.id, disk.size, disk.type) if disk is not None else None,
        secret_paths=agent.secret_paths,
    )


def _to_plain(value: Any, show_secrets: bool) -> Any:
    """Dataclasses to dicts with kebab-case keys (user configuration kept as written)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {
            f.name.replace("_", "-"): _to_plain(getattr(value, f.name), show_secrets)
            for f in dataclasses.fields(value)
            if not f.metadata.get("internal")
        }
        if isinstance(value, Executor):
            out["disks"] = [_to_plain(d, show_secrets) for d in value.disks]
        if isinstance(value, PlannedAgent) and not show_secrets:
            for path in sorted(value.secret_paths, key=len):
                out["configuration"] = _redact(out["configuration"], path)
        return out
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v, show_secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v, show_secrets) for v in value]
    return value


def _redact(data: Any, path: tuple[str | int, ...]) -> Any:
    """``data`` (plain, already copied) with the value at ``path`` replaced by REDACTED."""
    if not path:
        return REDACTED
    head, rest = path[0], path[1:]
    if isinstance(data, dict) and str(head) in data:
        data[str(head)] = _redact(data[str(head)], rest)
    elif isinstance(data, list) and isinstance(head, int) and head < len(data):
        data[head] = _redact(data[head], rest)
    return data
