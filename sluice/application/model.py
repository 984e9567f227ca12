"""The validated, placeholder-resolved application: frozen data, no behaviour.

Produced by :func:`sluice.application.load_application`; consumed by the planner, the runner, the
gateway and the Knative generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sluice.errors import Problem

CreationMode = Literal["none", "create-if-not-exists"]
DeletionMode = Literal["none", "delete"]
SchemaType = Literal["string", "bytes", "json", "avro"]
OnFailure = Literal["fail", "skip", "dead-letter"]
GatewayType = Literal["produce", "consume", "chat", "service"]
ComponentType = Literal["source", "processor", "sink", "service"]

DEFAULT_MODULE = "default"
DEFAULT_DISK_SIZE = 256 * 1024 * 1024


@dataclass(frozen=True)
class SchemaSpec:
    """The schema of a topic's values or keys (``schema`` / ``keySchema``)."""

    type: SchemaType
    schema: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class TopicSpec:
    """A topic of the application, declared in a pipeline file or implied by the planner."""

    name: str
    creation_mode: CreationMode = "none"
    deletion_mode: DeletionMode = "none"
    partitions: int = 0
    schema: SchemaSpec | None = None
    key_schema: SchemaSpec | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, str] = field(default_factory=dict)
    implicit: bool = False

    @classmethod
    def bare(cls, name: str) -> TopicSpec:
        """The spec of a topic the application does not declare: no schema, nothing created.

        Agents and gateways may name a topic made outside the application; its records are
        then read without a schema. One home for that rule: the application and the plan use it.
        """
        return cls(name)

    @property
    def value_type(self) -> SchemaType | None:
        return self.schema.type if self.schema else None

    @property
    def key_type(self) -> SchemaType | None:
        return self.key_schema.type if self.key_schema else None


@dataclass(frozen=True)
class DiskSpec:
    """``resources.disk``: a persistent directory for a stateful agent."""

    enabled: bool = False
    size: int = DEFAULT_DISK_SIZE
    type: str = "default"


@dataclass(frozen=True)
class ResourcesSpec:
    parallelism: int = 1
    size: int = 1
    disk: DiskSpec | None = None


@dataclass(frozen=True)
class ErrorsSpec:
    on_failure: OnFailure = "fail"
    retries: int = 0


@dataclass(frozen=True)
class AgentSpec:
    """One step of a pipeline, with its defaults applied and placeholders resolved."""

    id: str
    type: str
    pipeline: str
    module: str
    file: str
    index: int
    name: str | None = None
    input: str | None = None
    output: str | None = None
    configuration: Mapping[str, Any] = field(default_factory=dict)
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    errors: ErrorsSpec = field(default_factory=ErrorsSpec)
    # Paths inside ``configuration`` whose value came from a secret, so output can hide them.
    secret_paths: frozenset[tuple[str | int, ...]] = frozenset()

    @property
    def disk(self) -> DiskSpec | None:
        disk = self.resources.disk
        return disk if disk is not None and disk.enabled else None


@dataclass(frozen=True)
class PipelineSpec:
    id: str
    module: str
    file: str
    agents: tuple[AgentSpec, ...]
    name: str | None = None


@dataclass(frozen=True)
class HeaderSpec:
    """A gateway header: a literal, a query parameter, or a principal field."""

    key: str
    value: str | None = None
    value_from_parameters: str | None = None
    value_from_authentication: str | None = None


@dataclass(frozen=True)
class AuthenticationSpec:
    provider: str
    allow_test_mode: bool = False
    configuration: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatOptions:
    questions_topic: str
    answers_topic: str
    headers: tuple[HeaderSpec, ...] = ()


@dataclass(frozen=True)
class ServiceOptions:
    agent_id: str | None = None
    input_topic: str | None = None
    output_topic: str | None = None
    headers: tuple[HeaderSpec, ...] = ()


@dataclass(frozen=True)
class GatewaySpec:
    id: str
    type: GatewayType
    topic: str | None = None
    parameters: tuple[str, ...] = ()
    authentication: AuthenticationSpec | None = None
    produce_headers: tuple[HeaderSpec, ...] = ()
    consume_filters: tuple[HeaderSpec, ...] = ()
    chat: ChatOptions | None = None
    service: ServiceOptions | None = None
    events_topic: str | None = None

    @property
    def is_proxy(self) -> bool:
        """Whether this is a service gateway in agent-id mode: a reverse proxy to the agent's
        HTTP server (else, in topics mode, it writes requests and waits for the reply)."""
        return (
            self.type == "service"
            and self.service is not None
            and self.service.agent_id is not None
        )

    @property
    def configured_headers(self) -> tuple[HeaderSpec, ...]:
        """The headers this gateway writes on the records (or proxied requests) it produces.

        produce: produce-options; chat: chat-options; service: service-options then
        produce-options; consume: none (its headers are filters).
        """
        if self.type == "chat":
            return self.chat.headers if self.chat is not None else ()
        if self.type == "service":
            own = self.service.headers if self.service is not None else ()
            return own + self.produce_headers
        if self.type == "produce":
            return self.produce_headers
        return ()

    @property
    def filter_headers(self) -> tuple[HeaderSpec, ...]:
        """The headers the records this gateway pushes to a client must carry."""
        if self.type == "consume":
            return self.consume_filters
        if self.type == "chat":
            return self.chat.headers if self.chat is not None else ()
        if self.type == "service":
            return self.service.headers if self.service is not None else ()
        return ()

    @property
    def referenced_parameters(self) -> tuple[str, ...]:
        """Names used by ``value-from-parameters`` in any of the gateway's headers, in order."""
        names: list[str] = []
        for header in (*self.configured_headers, *self.filter_headers):
            name = header.value_from_parameters
            if name is not None and name not in names:
                names.append(name)
        return tuple(names)

    @property
    def required_parameters(self) -> tuple[str, ...]:
        """The parameters a client passes (``param:<name>``): the declared ``parameters``, then
        the names referenced by ``value-from-parameters``."""
        names = list(self.parameters)
        names += [name for name in self.referenced_parameters if name not in names]
        return tuple(names)


@dataclass(frozen=True)
class AssetSpec:
    """An entry of a pipeline file's ``assets``: a table (or other thing) the application needs
    (:mod:`sluice.application.assets` reads it)."""

    id: str
    asset_type: str
    config: Mapping[str, Any] = field(default_factory=dict)
    creation_mode: CreationMode = "none"
    deletion_mode: DeletionMode = "none"
    name: str | None = None
    pipeline_file: str = ""


@dataclass(frozen=True)
class ResourceSpec:
    """An entry of ``configuration.resources`` (an AI service, a datasource...).

    ``id`` is how agents name it (its ``id``, else its ``name``, as LangStream keys resources).
    """

    type: str
    id: str
    configuration: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class DependencySpec:
    """An entry of ``configuration.dependencies``: a jar, by URL or Maven coordinates."""

    name: str | None = None
    url: str | None = None
    sha512sum: str | None = None
    type: str = "java-library"
    maven: str | None = None


@dataclass(frozen=True)
class ClusterSpec:
    type: str
    configuration: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InstanceSpec:
    streaming_cluster: ClusterSpec = field(default_factory=lambda: ClusterSpec("kafka"))
    compute_cluster: ClusterSpec = field(default_factory=lambda: ClusterSpec("local"))
    globals: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kafka_admin(self) -> Mapping[str, Any]:
        """Client properties of the streaming cluster (``configuration.admin``)."""
        admin = self.streaming_cluster.configuration.get("admin")
        return admin if isinstance(admin, Mapping) else {}

    @property
    def bootstrap_servers(self) -> str | None:
        """Where Kafka is, or None when Sluice should start its own local broker."""
        value = self.kafka_admin.get("bootstrap.servers")
        return str(value) if value else None

    @property
    def kafka_client_options(self) -> dict[str, Any]:
        """The client properties every Kafka client of the application gets (security,
        SASL...): ``configuration.admin`` without ``bootstrap.servers``, which the command line
        names (the instance's, or the local broker's)."""
        return {k: v for k, v in self.kafka_admin.items() if k != "bootstrap.servers"}


@dataclass(frozen=True)
class Application:
    """A loaded application: every file validated, placeholders resolved, defaults applied."""

    name: str
    directory: str
    topics: Mapping[str, TopicSpec]
    pipelines: tuple[PipelineSpec, ...]
    gateways: tuple[GatewaySpec, ...]
    resources: tuple[ResourceSpec, ...] = ()
    dependencies: tuple[DependencySpec, ...] = ()
    assets: tuple[AssetSpec, ...] = ()
    instance: InstanceSpec = field(default_factory=InstanceSpec)
    globals: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # Agents of a LangStream type Sluice cannot run yet: the application loads and plans (it is
    # valid LangStream), but ``sluice validate`` and ``sluice run`` refuse it with these.
    unsupported: tuple[Problem, ...] = ()

    def runtime_configuration(self, configuration: Mapping[str, Any]) -> dict[str, Any]:
        """An agent's ``configuration`` as the worker hands it to the agent, with what the
        application adds unless the agent sets it: ``resources`` (resource id -> its
        configuration, as LangStream passed them), ``resource-types`` (resource id -> its type:
        how a built-in AI agent finds its service without ``ai-service``) and ``globals``."""
        config = dict(configuration)
        config.setdefault("resources", {r.id: dict(r.configuration) for r in self.resources})
        config.setdefault("resource-types", {r.id: r.type for r in self.resources})
        config.setdefault("globals", dict(self.globals))
        return config

    @property
    def agents(self) -> tuple[AgentSpec, ...]:
        return tuple(agent for pipeline in self.pipelines for agent in pipeline.agents)

    def agent(self, agent_id: str) -> AgentSpec | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def topic_spec(self, name: str) -> TopicSpec:
        """The declared topic ``name``, or a bare spec (no schema) for a topic not declared."""
        return self.topics.get(name) or TopicSpec.bare(name)

    def gateway(self, gateway_id: str, gateway_type: str) -> GatewaySpec | None:
        return next(
            (g for g in self.gateways if g.id == gateway_id and g.type == gateway_type), None
        )
