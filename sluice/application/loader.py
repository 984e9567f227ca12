"""Loading an application directory with its instance and secrets, validating everything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.builtin_schemas.flare import loop_topics
from sluice.application.builtin_schemas.flow import destination_topics
from sluice.application.datasources import check_datasources
from sluice.application.gateways import ParsedGateway, gateway_headers, parse_gateways
from sluice.application.model import (
    Application,
    DependencySpec,
    InstanceSpec,
    PipelineSpec,
    ResourceSpec,
    TopicSpec,
)
from sluice.application.pipelines import ParsedPipeline, ParsedTopic, parse_pipeline_file
from sluice.application.placeholders import (
    PlaceholderContext,
    Resolution,
    resolve,
    resolve_environment,
)
from sluice.application.reader import Node, Report, did_you_mean, locate
from sluice.application.settings_files import (
    configuration_globals,
    parse_configuration,
    parse_instance,
    parse_secrets,
)
from sluice.application.yamlfile import YamlFile, YamlSyntaxError, load_yaml
from sluice.errors import InvalidApplication, Problem

RESERVED_MODULES = ("sluice", "gateway", "workers", "knative", "auth")
SPECIAL_FILES = ("gateways.yaml", "configuration.yaml")
SEPARATE_FILES = ("instance.yaml", "secrets.yaml")
IGNORED_FILES = ("archetype.yaml",)


@dataclass
class _Loading:
    report: Report

    def read(self, path: Path, name: str, kind: str) -> YamlFile | None:
        try:
            file = load_yaml(path, name)
        except YamlSyntaxError as exc:
            self.report.problems.append(exc.problem)
            return None
        file.kind = kind
        return file

    def node(self, file: YamlFile, resolution: Resolution | None = None) -> Node:
        data = file.data if resolution is None else resolution.value
        secret_paths = resolution.secret_paths if resolution else set()
        return Node(file, (), data, self.report, secret_paths)

    def resolve(self, file: YamlFile, context: PlaceholderContext) -> Resolution:
        return self.report_resolution(file, resolve(file.data, context))

    def environment(self, file: YamlFile, environ: Mapping[str, str], path: Path) -> YamlFile:
        """instance.yaml or secrets.yaml as LangStream's CLI reads them: environment references
        substituted, ``<file:...>`` references inlined relative to the file's folder."""
        resolution = resolve_environment(file.data, environ, directory=path.parent)
        self.report_resolution(file, resolution)
        return YamlFile(file.name, resolution.value, file.lines, file.kind)

    def report_resolution(self, file: YamlFile, resolution: Resolution) -> Resolution:
        for path, message in resolution.errors:
            self.report.problems.append(locate(file, path, message))
        for path, message in resolution.warnings:
            self.report.warnings.append(str(locate(file, path, message)))
        return resolution


def load_application(
    directory: str | Path,
    *,
    instance: str | Path | None = None,
    secrets: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    name: str | None = None,
) -> Application:
    """Load, resolve and validate an application; raise :class:`InvalidApplication` listing
    every problem found.

    ``environ`` feeds ``${NAME}`` / ``${NAME:-default}`` references in instance.yaml and
    secrets.yaml (the CLI passes the process environment); it is empty when not given.
    """
    app_dir = Path(directory)
    loading = _Loading(Report())
    problems = loading.report.problems
    if not app_dir.is_dir():
        raise InvalidApplication([Problem(str(directory), "", "is not a directory")])
    env = environ or {}

    secrets_data: dict[str, dict[str, Any]] = {}
    if secrets is not None:
        secrets_file = _separate_file(loading, app_dir, Path(secrets), "secrets.yaml")
        if secrets_file is not None:
            secrets_file = loading.environment(secrets_file, env, Path(secrets))
            secrets_data = parse_secrets(loading.node(secrets_file))

    instance_spec = InstanceSpec()
    instance_file = None
    if instance is not None:
        instance_file = _separate_file(loading, app_dir, Path(instance), "instance.yaml")

    files = sorted(p for p in app_dir.iterdir() if p.is_file())
    for path in files:
        if path.suffix == ".yml":
            loading.report.warnings.append(
                f"{path.name}: ignored (only .yaml files are read; rename it to .yaml)"
            )
        elif path.name in SEPARATE_FILES:
            flag = "-s" if path.name == "secrets.yaml" else "-i"
            problems.append(
                Problem(
                    path.name,
                    "",
                    f"{path.name} must not be inside the application folder (it is not "
                    f"part of the code that gets deployed): move it out, pass it with {flag}",
                )
            )

    config_file = _optional(loading, app_dir, "configuration.yaml")
    config_globals = configuration_globals(loading.node(config_file)) if config_file else {}
    if instance_file is not None and instance is not None:
        instance_file = loading.environment(instance_file, env, Path(instance))
        instance_context = PlaceholderContext(secrets_data, config_globals)
        instance_spec = parse_instance(
            loading.node(instance_file, loading.resolve(instance_file, instance_context))
        )
    globals_ = {**config_globals, **instance_spec.globals}
    context = PlaceholderContext(secrets_data, globals_)

    resources: list[ResourceSpec] = []
    dependencies: list[DependencySpec] = []
    if config_file is not None:
        config_node = loading.node(config_file, loading.resolve(config_file, context))
        resources, dependencies = parse_configuration(config_node)

    pipelines: list[ParsedPipeline] = []
    topics: list[ParsedTopic] = []
    for path in files:
        if path.suffix != ".yaml" or path.name in (*SPECIAL_FILES, *SEPARATE_FILES, *IGNORED_FILES):
            continue
        file = loading.read(path, path.name, "pipeline")
        if file is None:
            continue
        pipeline, declared = parse_pipeline_file(
            loading.node(file, loading.resolve(file, context)), path.stem
        )
        pipelines.append(pipeline)
        topics.extend(declared)

    gateways: list[ParsedGateway] = []
    gateways_file = _optional(loading, app_dir, "gateways.yaml")
    if gateways_file is not None:
        gateways = parse_gateways(
            loading.node(gateways_file, loading.resolve(gateways_file, context))
        )

    declared_topics = _merge_topics(topics)
    unsupported = _check_agents(pipelines, declared_topics)
    unsupported += check_datasources(pipelines, resources)
    _check_gateways(gateways, declared_topics, pipelines)
    _check_python_folder(app_dir, loading.report, pipelines)

    if problems:
        raise InvalidApplication(problems)
    return Application(
        name=name or app_dir.resolve().name,
        directory=str(app_dir),
        topics=declared_topics,
        pipelines=tuple(
            PipelineSpec(p.id, p.module, p.file, tuple(a.spec for a in p.agents), p.name)
            for p in pipelines
        ),
        gateways=tuple(g.spec for g in gateways),
        resources=tuple(resources),
        dependencies=tuple(dependencies),
        assets=tuple(asset for p in pipelines for asset in p.assets),
        instance=instance_spec,
        globals=globals_,
        warnings=tuple(loading.report.warnings),
        unsupported=tuple(unsupported),
    )


def _optional(loading: _Loading, app_dir: Path, name: str) -> YamlFile | None:
    path = app_dir / name
    return loading.read(path, name, Path(name).stem) if path.is_file() else None


def _separate_file(loading: _Loading, app_dir: Path, path: Path, kind: str) -> YamlFile | None:
    shown = str(path)
    if not path.is_file():
        loading.report.problems.append(Problem(shown, "", f"{kind} file not found"))
        return None
    if path.resolve().parent == app_dir.resolve():
        # Reported once by the folder scan when it is called instance.yaml / secrets.yaml.
        if path.name not in SEPARATE_FILES:
            loading.report.problems.append(
                Problem(shown, "", f"the {kind} file must not be inside the application folder")
            )
        return None
    return loading.read(path, shown, Path(kind).stem)


def _merge_topics(topics: list[ParsedTopic]) -> dict[str, TopicSpec]:
    merged: dict[str, TopicSpec] = {}
    first: dict[str, ParsedTopic] = {}
    for topic in topics:
        name = topic.spec.name
        previous = first.get(name)
        if previous is not None and previous.spec != topic.spec:
            where = previous.node.file.name
            line = previous.node.file.line(previous.node.path)
            topic.node.error(
                f'topic "{name}" is declared again with a different definition (first in '
                f"{where}{f':{line}' if line else ''}; a topic may be declared in several files "
                "only if identical)"
            )
            continue
        first.setdefault(name, topic)
        merged[name] = topic.spec
    return merged


def _check_topic(node: Node, key: str, name: str | None, topics: Mapping[str, TopicSpec]) -> None:
    if name is not None and name not in topics:
        node.error(f'topic "{name}" is not declared{did_you_mean(name, topics)}', key)


def _check_agents(
    pipelines: list[ParsedPipeline], topics: Mapping[str, TopicSpec]
) -> list[Problem]:
    """Check the agents; return those of a type Sluice cannot run yet (not an error here:
    LangStream accepts them, and planning them is fine)."""
    unsupported: list[Problem] = []
    seen: dict[str, str] = {}
    for pipeline in pipelines:
        previous = None
        for parsed in pipeline.agents:
            agent, node = parsed.spec, parsed.node
            if agent.id in seen:
                node.error(f'duplicate agent id "{agent.id}" (also in {seen[agent.id]})', "id")
            seen.setdefault(agent.id, pipeline.file)
            _check_topic(node, "input", agent.input, topics)
            _check_topic(node, "output", agent.output, topics)
            written = (
                *destination_topics(agent.type, agent.configuration),
                *loop_topics(agent.type, agent.configuration),
            )
            for path, topic in written:
                target = node.child("configuration")
                for step in path[:-1]:
                    target = target.child(step)
                _check_topic(target, str(path[-1]), topic, topics)
            kind = AGENT_TYPES.get(agent.type)
            component = kind.component if kind else None
            if kind is not None and not kind.runnable:
                unsupported.append(
                    node.problem(
                        f'"{agent.type}" is a LangStream built-in agent type that Sluice does '
                        "not support yet",
                        "type",
                    )
                )
            if component == "source" and agent.input is not None:
                node.error("a source reads no topic: remove input", "input")
            if component == "sink" and agent.output is not None:
                node.error("a sink writes no topic: remove output", "output")
            if component == "service" and (agent.input or agent.output):
                node.error(
                    "a service agent is reached over HTTP, not through topics: remove input/output"
                )
            if previous is None and agent.input is None and component == "processor":
                node.error("the first agent of a pipeline needs an input topic", "input")
            if previous is not None and agent.input is None and component in ("processor", "sink"):
                prev_kind = AGENT_TYPES.get(previous.type)
                if prev_kind is not None and prev_kind.component in ("sink", "service"):
                    node.error(
                        f'has no input and follows "{previous.id}", a '
                        f"{prev_kind.component} that writes nothing: give it an input "
                        "topic",
                        "input",
                    )
            previous = agent
    return unsupported


def _check_gateways(
    gateways: list[ParsedGateway],
    topics: Mapping[str, TopicSpec],
    pipelines: list[ParsedPipeline],
) -> None:
    agents = {a.spec.id: a.spec for p in pipelines for a in p.agents}
    for parsed in gateways:
        spec, node = parsed.spec, parsed.node
        _check_topic(node, "topic", spec.topic, topics)
        _check_topic(node, "events-topic", spec.events_topic, topics)
        if spec.chat is not None:
            options = node.child("chat-options")
            _check_topic(options, "questions-topic", spec.chat.questions_topic, topics)
            _check_topic(options, "answers-topic", spec.chat.answers_topic, topics)
        if spec.service is not None:
            options = node.child("service-options")
            _check_topic(options, "input-topic", spec.service.input_topic, topics)
            _check_topic(options, "output-topic", spec.service.output_topic, topics)
            agent_id = spec.service.agent_id
            if agent_id is not None:
                agent = agents.get(agent_id)
                services = [
                    a
                    for a in agents.values()
                    if AGENT_TYPES.get(a.type) and AGENT_TYPES[a.type].component == "service"
                ]
                if agent is None:
                    options.error(
                        f'no agent with id "{agent_id}"'
                        f"{did_you_mean(agent_id, [a.id for a in services])}",
                        "agent-id",
                    )
                elif agent not in services:
                    options.error(
                        f'agent "{agent_id}" is a {agent.type}, not a service agent '
                        "(python-service)",
                        "agent-id",
                    )
        declared = set(spec.parameters)
        for header in gateway_headers(spec):
            name = header.value_from_parameters
            if name is not None and spec.type == "service" and name not in declared:
                node.warn(
                    f'header "{header.key}" reads param:{name}, which is not in '
                    "parameters; it is accepted as an optional parameter"
                )


def _check_python_folder(app_dir: Path, report: Report, pipelines: list[ParsedPipeline]) -> None:
    roots = [app_dir / "python", app_dir / "python" / "lib"]
    for root in roots:
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            module = entry.stem if entry.suffix == ".py" else entry.name
            if module in RESERVED_MODULES and (entry.is_dir() or entry.suffix == ".py"):
                shown = entry.relative_to(app_dir).as_posix()
                report.problems.append(
                    Problem(
                        shown,
                        "",
                        f'defines a top-level module "{module}", a name Sluice reserves '
                        f"for its own packages ({', '.join(RESERVED_MODULES)}); rename it",
                    )
                )
    for pipeline in pipelines:
        for parsed in pipeline.agents:
            class_name = parsed.spec.configuration.get("className")
            if not isinstance(class_name, str) or "." not in class_name:
                if isinstance(class_name, str):
                    parsed.node.child("configuration").error(
                        f'className "{class_name}" must be module.Class', "className"
                    )
                continue
            top = class_name.split(".")[0]
            if not any((r / f"{top}.py").is_file() or (r / top).is_dir() for r in roots):
                parsed.node.child("configuration").warn(
                    f'module "{top}" is not in python/ or python/lib (fine if it comes from '
                    "python/requirements.txt)",
                    "className",
                )
