"""The generator: an application's plan and files + deploy settings -> Kubernetes objects. Pure.

======================================  ==================================  =====================
object                                  API                                 per
======================================  ==================================  =====================
Secret ``<app>-secrets``                v1                                  application
Secret ``<app>-kafka``                  v1                                  application on a
                                                                            secured Kafka
ConfigMap ``<app>-app``                 v1                                  application
KafkaTopic ``<topic>``                  kafka.strimzi.io/v1                 topic to create,
                                                                            with ``topics:
                                                                            strimzi``
PersistentVolumeClaim ``<app>-<agent>`` v1                                  agent with a disk
KafkaSink ``<app>-<topic>-deadletter``  eventing.knative.dev/v1alpha1       dead-letter topic
Service ``<app>-<executor>``            serving.knative.dev/v1              executor
Service ``<app>-gateway``               serving.knative.dev/v1              application with
                                                                            gateways
KafkaSource ``<app>-<executor>``        sources.knative.dev/v1beta1         processor or sink
                                                                            executor
======================================  ==================================  =====================

The list comes back in that order of kinds (what others refer to first), then by name; the same
input gives the same objects, byte for byte. All in the settings' namespace (the tenant). See
:mod:`knative.file_objects`, :mod:`knative.services`, :mod:`knative.eventing` and
:mod:`knative.storage`, :mod:`knative.kafka_secret` and :mod:`knative.topics` for the choices
each kind embodies.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Final

from knative.errors import ManifestError
from knative.eventing import dead_letter_sink, kafka_source
from knative.file_objects import config_data, config_map, config_problems, data_checksum, secret
from knative.files import AppFiles
from knative.kafka_secret import kafka_secret
from knative.labels import Manifest
from knative.scope import Scope
from knative.services import (
    concurrency_problem,
    executor_service,
    gateway_service,
    service_urls,
)
from knative.settings import DeploySettings
from knative.storage import disk_problems, persistent_volume_claim
from knative.topics import kafka_topic, strimzi_topics, topic_problems
from sluice.application.model import Application
from sluice.application.plan import Executor, Plan
from sluice.errors import Problem

__all__ = ["KIND_ORDER", "build_manifests"]

KIND_ORDER: Final = (
    "Secret",
    "ConfigMap",
    "KafkaTopic",
    "PersistentVolumeClaim",
    "KafkaSink",
    "Service",
    "KafkaSource",
)


@dataclass(frozen=True)
class _Generated:
    manifest: Manifest
    origin: str
    file: str


def build_manifests(
    plan: Plan, app: Application, files: AppFiles, settings: DeploySettings
) -> list[Manifest]:
    """Every object that runs ``app`` (planned as ``plan``) on Knative.

    Raises :class:`~knative.errors.ManifestError` listing every problem found: a disk on an
    executor with parallelism above 1, a disk type with no StorageClass, a bad
    ``concurrency``, a file name that cannot be a ConfigMap key, files too large for a
    ConfigMap, a topic a ``KafkaTopic`` cannot carry (with ``topics: strimzi``), or two objects
    that would get the same name.
    """
    if plan.application != app.name:
        raise ValueError(f"the plan is of {plan.application!r}, not of {app.name!r}")
    data = config_data(files, plan)
    problems = [
        *disk_problems(plan, app, settings),
        *_executor_problems(plan, app),
        *config_problems(files, data),
        *(topic_problems(plan) if settings.topics == "strimzi" else []),
    ]
    if problems:
        raise ManifestError(problems)
    scope = Scope(
        app.name,
        settings,
        tuple(sorted(files.application)),
        data_checksum(data),
        files.python_environment,
    )

    generated = [
        _Generated(secret(scope, files), "the application", ""),
        _Generated(config_map(scope, data), "the application", ""),
    ]
    credentials = kafka_secret(scope)
    if credentials is not None:
        generated.append(_Generated(credentials, "the Kafka credentials", "instance.yaml"))
    if settings.topics == "strimzi":
        generated += [
            _Generated(kafka_topic(scope, topic), f'topic "{topic.name}"', "")
            for topic in strimzi_topics(plan)
        ]
    dead_letters: dict[str, list[str]] = defaultdict(list)
    for executor in plan.executors:
        file = _file(app, executor.id)
        origin = f'executor "{executor.id}"'
        generated.append(_Generated(executor_service(scope, executor), origin, file))
        if _pushed(executor):
            generated.append(_Generated(kafka_source(scope, executor), origin, file))
            if executor.errors.on_failure == "dead-letter" and executor.dead_letter_topic:
                dead_letters[executor.dead_letter_topic].append(executor.id)
        for disk in executor.disks:
            generated.append(
                _Generated(
                    persistent_volume_claim(scope, disk),
                    f'the disk of agent "{disk.agent_id}"',
                    _file(app, disk.agent_id),
                )
            )
    for topic, executor_ids in sorted(dead_letters.items()):
        generated.append(
            _Generated(
                dead_letter_sink(scope, topic, executor_ids), f'dead-letter topic "{topic}"', ""
            )
        )
    if app.gateways:
        gateway = gateway_service(scope, service_urls(scope, plan.executors))
        generated.append(_Generated(gateway, "the gateway", "gateways.yaml"))

    _check_names(generated)
    return [g.manifest for g in sorted(generated, key=_order)]


def _pushed(executor: Executor) -> bool:
    """Whether a KafkaSource feeds the executor (push mode), rather than it reading or serving."""
    return executor.component in ("processor", "sink") and executor.input_topic is not None


def _file(app: Application, agent_id: str) -> str:
    agent = app.agent(agent_id)
    return agent.file if agent is not None else ""


def _executor_problems(plan: Plan, app: Application) -> list[Problem]:
    problems: list[Problem] = []
    for executor in plan.executors:
        if executor.component in ("processor", "sink") and executor.input_topic is None:
            problems.append(
                Problem(_file(app, executor.id), "", f'executor "{executor.id}" has no input topic')
            )
        for agent in executor.agents:
            if "concurrency" not in agent.configuration:
                continue
            message = concurrency_problem(agent.configuration["concurrency"])
            spec = app.agent(agent.id)
            if message is not None and spec is not None:
                problems.append(
                    Problem(
                        spec.file,
                        f"pipeline[{spec.index}].configuration.concurrency",
                        f'agent "{agent.id}": {message}',
                    )
                )
    return problems


def _order(generated: _Generated) -> tuple[int, str]:
    manifest = generated.manifest
    return KIND_ORDER.index(manifest["kind"]), manifest["metadata"]["name"]


def _check_names(generated: list[_Generated]) -> None:
    seen: dict[tuple[str, str], _Generated] = {}
    problems: list[Problem] = []
    for item in generated:
        key = (item.manifest["kind"], item.manifest["metadata"]["name"])
        first = seen.setdefault(key, item)
        if first is not item:
            problems.append(
                Problem(
                    item.file or first.file or "",
                    "",
                    f'{key[0]} "{key[1]}" would be generated for both {first.origin} and '
                    f"{item.origin}: rename one of them (names keep only lower-case letters, "
                    "digits and '-')",
                )
            )
    if problems:
        raise ManifestError(problems)
