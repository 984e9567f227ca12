"""A worker process: runs one planned executor. ``python -m workers --executor ID ...``.

``sluice run`` starts one per executor; it can be run by hand too. Settings are read here, at
the edge, and passed down; this is the only module of the runtime that reads the environment.

The worker's event loop runs on the main thread, except for a python-service executor: there it
runs beside the main thread, which a ``main()``-style service needs for its own server
(:mod:`workers.main_thread`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sluice import eventloop
from sluice.application import Application, Executor, load_application, plan_application
from sluice.application.model import TopicSpec
from sluice.application.plan import Plan
from sluice.commands import WorkerCommand
from sluice.entrypoint import (
    SUPERVISOR_PID_ENV,
    configure_logging,
    ignore_stop_signals,
    port_from,
)
from sluice.errors import SluiceError
from sluice.events import agent_source
from sluice.kafka import Consumer, KafkaSettings, Producer, RebalanceListener
from sluice.sdk import AgentContext
from workers.agents import LoadedAgent, LoadedProcessor, LoadedService, LoadedSink, LoadedSource
from workers.camel import CamelSettings
from workers.chain import Chain
from workers.errors import ExecutorFailed, WorkerError
from workers.health import HealthServer, Observer, WorkerMetrics, no_fields
from workers.loading import load_agent
from workers.main_thread import MainThread
from workers.pull import PullExecutor, PullSettings
from workers.push import PushExecutor, PushSettings
from workers.service_host import ServiceEnded, ServiceHost
from workers.sources import SourceExecutor, SourceSettings
from workers.state import (
    StateLock,
    default_state_root,
    state_directory,
    volume_state_directory,
)
from workers.topic_producer import SharedTopicProducer

log = logging.getLogger("sluice.worker")

_PARENT_POLL = 1.0
"""Seconds between checks that the supervisor is still alive."""


@dataclass(frozen=True)
class WorkerSettings:
    app_dir: Path
    executor_id: str
    bootstrap_servers: str
    instance: Path | None = None
    secrets: Path | None = None
    tenant: str = "default"
    app_id: str | None = None
    state_root: Path = field(default_factory=default_state_root)
    health_port: int = 0
    service_port: int = 8000
    state_wait: float = 30.0
    state_volumes: bool = False
    """Each agent's state directory is a volume at ``<state_root>/<agent-id>`` (Knative)."""
    push: bool = False
    """Push mode: events arrive over HTTP on ``host:port`` (Knative's KafkaSource), not by
    polling the input topic."""
    host: str = "0.0.0.0"
    port: int = 8080
    fault_kill_after: int | None = None
    java_home: Path | None = None
    """``JAVA_HOME``: the Java that camel-source agents run on (else ``java`` on PATH)."""
    camel_cache_dir: Path | None = None
    """``SLUICE_CAMEL_CACHE_DIR``: where camel-source jar sets are kept (else the user cache)."""
    environ: dict[str, str] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None, environ: dict[str, str]) -> WorkerSettings:
    """The settings of the command line (:class:`~sluice.commands.WorkerCommand`, which
    ``sluice run`` and the Knative generator build) and of the environment."""
    command = WorkerCommand.from_argv(argv)
    port = command.port
    if port is None:
        port = port_from(environ)
    state_dir = command.state_dir or (
        Path(environ["SLUICE_STATE_DIR"]) if environ.get("SLUICE_STATE_DIR") else None
    )
    kill_after = environ.get("SLUICE_FAULT_KILL_AFTER")
    return WorkerSettings(
        app_dir=command.app_dir,
        executor_id=command.executor_id,
        bootstrap_servers=command.bootstrap_servers,
        instance=command.instance,
        secrets=command.secrets,
        tenant=command.tenant,
        app_id=command.app_id,
        state_root=state_dir or default_state_root(),
        state_volumes=command.state_volumes,
        health_port=command.health_port if command.health_port is not None else 0,
        service_port=command.service_port if command.service_port is not None else 8000,
        push=command.push,
        host=command.host if command.host is not None else "0.0.0.0",
        port=port,
        fault_kill_after=int(kill_after) if kill_after else None,
        java_home=Path(environ["JAVA_HOME"]) if environ.get("JAVA_HOME") else None,
        camel_cache_dir=(
            Path(environ["SLUICE_CAMEL_CACHE_DIR"])
            if environ.get("SLUICE_CAMEL_CACHE_DIR")
            else None
        ),
        environ=environ,
    )


def main(argv: Sequence[str] | None = None) -> int:
    environ = dict(os.environ)
    settings = parse_args(argv, environ)
    configure_logging()
    try:
        app, plan, executor = plan_executor(settings)
        if executor.component == "service" and not settings.push:
            MainThread().run(
                lambda main_thread: run_worker(settings, app, plan, executor, main_thread)
            )
        else:
            eventloop.run(run_worker(settings, app, plan, executor))
    except ServiceEnded as error:
        # One line says what happened; the traceback is the user's code's, when it raised.
        log.error("%s", error, exc_info=error.error if isinstance(error.error, Exception) else None)
        return 1
    except (SluiceError, WorkerError) as error:
        log.error("%s", error)
        return 1
    except Exception:
        # An agent hook outside the per-record policy (read, commit, start...) raised.
        log.exception("executor %s stopped: an agent raised", settings.executor_id)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def plan_executor(settings: WorkerSettings) -> tuple[Application, Plan, Executor]:
    """The application, its plan and the executor this worker runs."""
    app = load_application(
        settings.app_dir,
        instance=settings.instance,
        secrets=settings.secrets,
        environ=settings.environ,
        name=settings.app_id,
    )
    plan = plan_application(app)
    executor = plan.executor(settings.executor_id)
    if executor is None:
        known = ", ".join(e.id for e in plan.executors)
        raise ExecutorFailed(f"no executor {settings.executor_id!r} in the plan (known: {known})")
    return app, plan, executor


async def run_worker(
    settings: WorkerSettings,
    app: Application,
    plan: Plan,
    executor: Executor,
    main_thread: MainThread | None = None,
) -> None:
    """Run the executor until SIGTERM/SIGINT. With ``main_thread``, this runs beside the main
    thread, which takes the signals and runs a service's ``main()``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if main_thread is None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    else:
        main_thread.on_stop(lambda: loop.call_soon_threadsafe(stop.set))
    watcher = asyncio.create_task(_watch_parent(stop))
    try:
        await _serve(settings, app, plan, executor, stop, main_thread)
    finally:
        watcher.cancel()
    if main_thread is None and stop.is_set():
        ignore_stop_signals(loop)


async def _watch_parent(stop: asyncio.Event) -> None:
    """Stop (draining as for SIGTERM) when the supervisor that started this worker dies: an
    orphaned worker would keep its state lock and consume for nobody. The supervisor names
    itself in ``SLUICE_SUPERVISOR_PID`` (it may be gone before this runs); without it, the
    parent at start is watched. A worker started by Kubernetes has no parent to lose."""
    named = os.environ.get(SUPERVISOR_PID_ENV, "")
    parent = int(named) if named.isdigit() else os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("the supervisor (pid %d) is gone: stopping", parent)
            stop.set()
        await asyncio.sleep(_PARENT_POLL)


async def _serve(
    settings: WorkerSettings,
    app: Application,
    plan: Plan,
    executor: Executor,
    stop: asyncio.Event,
    main_thread: MainThread | None = None,
) -> None:
    kafka = KafkaSettings(settings.bootstrap_servers, app.instance.kafka_client_options)
    source = output_source(settings.tenant, app, executor)
    metrics = WorkerMetrics(executor.id)
    if settings.push:
        await _serve_push(settings, app, plan, executor, stop, kafka, metrics)
        return
    async with AsyncExitStack() as stack:
        producer = await stack.enter_async_context(Producer(kafka))
        topic_producer = SharedTopicProducer(producer, asyncio.get_running_loop(), source=source)
        loaded = await _load_agents(stack, settings, app, executor, topic_producer)
        runner = _runner(
            settings, app, plan.topic_spec, executor, loaded, kafka, producer, metrics, main_thread
        )
        health = HealthServer(
            port=settings.health_port,
            readiness=_readiness(runner),
            metrics=metrics,
            fields=runner.readiness_fields if isinstance(runner, ServiceHost) else no_fields,
        )
        await stack.enter_async_context(health)
        if isinstance(runner, ServiceHost):
            runner.ignore_ports(health.port)
        log.info(
            "executor %s (%s): %s",
            executor.id,
            executor.component,
            ", ".join(f"{a.id} ({a.type})" for a in executor.agents),
        )
        await runner.run(stop)
    log.info("executor %s stopped", executor.id)


async def _load_agents(
    stack: AsyncExitStack,
    settings: WorkerSettings,
    app: Application,
    executor: Executor,
    topic_producer: SharedTopicProducer,
) -> list[LoadedAgent]:
    code_dirs = [settings.app_dir / "python", settings.app_dir / "python" / "lib"]
    camel = CamelSettings(
        java_home=settings.java_home,
        cache_dir=settings.camel_cache_dir,
        dependencies=app.dependencies,
    )
    loaded: list[LoadedAgent] = []
    for agent in executor.agents:
        directory = None
        if agent.disk is not None:
            if settings.state_volumes:
                path = volume_state_directory(settings.state_root, agent.id)
            else:
                path = state_directory(settings.state_root, settings.tenant, app.name, agent.id)
            lock = StateLock(path, wait=settings.state_wait, inside=settings.state_volumes)
            directory = await stack.enter_async_context(lock)
        context = AgentContext(
            agent_id=agent.id,
            tenant=settings.tenant,
            application=app.name,
            globals=app.globals,
            port=settings.service_port if agent.component == "service" else None,
            state_directory=str(directory) if directory is not None else None,
            topic_producer=topic_producer,
        )
        _export_environment(agent.configuration.get("environment"))
        instance = load_agent(agent, context, code_dirs=code_dirs, camel=camel)
        await instance.init(app.runtime_configuration(agent.configuration))
        await instance.start()
        stack.push_async_callback(_close, agent.id, instance)
        loaded.append(instance)
    return loaded


def _export_environment(entries: Any) -> None:
    """LangStream's ``configuration.environment: [{key, value}]``, set before the import."""
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("key"):
            os.environ[str(entry["key"])] = str(entry.get("value", ""))


async def _close(agent_id: str, instance: LoadedAgent) -> None:
    try:
        await instance.close()
    except Exception as error:
        log.warning("agent %s: close() failed: %s: %s", agent_id, type(error).__name__, error)


Runner = PullExecutor | SourceExecutor | ServiceHost


def _runner(
    settings: WorkerSettings,
    app: Application,
    topic_spec: Callable[[str], TopicSpec],
    executor: Executor,
    loaded: list[LoadedAgent],
    kafka: KafkaSettings,
    producer: Producer,
    metrics: WorkerMetrics,
    main_thread: MainThread | None = None,
) -> Runner:
    source = output_source(settings.tenant, app, executor)
    components = [a.component for a in executor.agents]
    # The loader adapted each agent to the protocol of its component, so these casts hold.
    if executor.component == "service":
        service = cast(LoadedService, loaded[0])
        return ServiceHost(
            service, port=settings.service_port, name=executor.id, main_thread=main_thread
        )
    chain = _chain(executor, loaded)
    if components[0] == "source":
        return SourceExecutor(
            SourceSettings(executor.output_topic, executor.errors, source),
            cast(LoadedSource, loaded[0]),
            chain,
            producer,
        )
    assert executor.input_topic is not None
    input_topic = topic_spec(executor.input_topic)
    pull = PullSettings(
        group_id=f"sluice-{app.name}-{executor.id}",
        input_topic=input_topic,
        output_topic=executor.output_topic,
        dead_letter_topic=executor.dead_letter_topic,
        errors=executor.errors,
        source=source,
        fault_kill_after=settings.fault_kill_after,
    )

    def consumer(listener: RebalanceListener) -> Consumer:
        return Consumer(kafka, [input_topic], group_id=pull.group_id, listener=listener)

    return PullExecutor(pull, consumer, producer, chain, _observer(metrics, executor.id))


def _observer(metrics: WorkerMetrics, executor_id: str) -> Observer:
    def observe(kind: str, amount: float) -> None:
        if kind == "seconds":
            metrics.processed(amount)
        elif kind == "in":
            metrics.received(int(amount))
        elif kind == "out":
            metrics.sent(int(amount))
        elif kind == "dead_letter":
            metrics.dead_lettered(int(amount))
        else:
            metrics.error(executor_id, kind)

    return observe


def _chain(executor: Executor, loaded: list[LoadedAgent]) -> Chain:
    """The processors (after a source, if any) and the sink the executor ends with, if any."""
    components = [a.component for a in executor.agents]
    start = 1 if components[0] == "source" else 0
    sink = cast(LoadedSink, loaded[-1]) if components[-1] == "sink" else None
    end = len(loaded) - 1 if sink is not None else len(loaded)
    return Chain([cast(LoadedProcessor, agent) for agent in loaded[start:end]], sink)


async def _serve_push(
    settings: WorkerSettings,
    app: Application,
    plan: Plan,
    executor: Executor,
    stop: asyncio.Event,
    kafka: KafkaSettings,
    metrics: WorkerMetrics,
) -> None:
    """Push mode: the HTTP server listens first (liveness while agents initialise or wait for
    their state lock), takes events once the agents are ready, and drains on ``stop``."""
    if executor.component in ("source", "service") or executor.input_topic is None:
        raise ExecutorFailed(
            f"executor {executor.id} ({executor.component}) has no input topic: push mode is "
            "for processors and sinks (run it without --push)"
        )
    input_topic = plan.topic_spec(executor.input_topic)
    source = output_source(settings.tenant, app, executor)
    # Imported here: pull mode does not need the push endpoint's modules.
    from workers.push_app import PushServer

    async with AsyncExitStack() as stack:
        producer = await stack.enter_async_context(Producer(kafka))
        server = PushServer(
            input_topic,
            port=settings.port,
            host=settings.host,
            metrics=metrics,
            max_body=producer.max_request_size,
        )
        await stack.enter_async_context(server)
        log.info("executor %s: push mode on %s:%d", executor.id, settings.host, server.port)
        topic_producer = SharedTopicProducer(producer, asyncio.get_running_loop(), source=source)
        try:
            loaded = await _load_agents(stack, settings, app, executor, topic_producer)
            push = PushExecutor(
                PushSettings(
                    input_topic=input_topic,
                    output_topic=executor.output_topic,
                    dead_letter_topic=executor.dead_letter_topic,
                    errors=executor.errors,
                    source=source,
                ),
                producer,
                _chain(executor, loaded),
                _observer(metrics, executor.id),
                on_fatal=stop.set,
            )
            server.attach(push)
            log.info(
                "executor %s (%s): %s",
                executor.id,
                executor.component,
                ", ".join(f"{a.id} ({a.type})" for a in executor.agents),
            )
            await stop.wait()
        finally:
            # Before the agents close and the producer flushes (the stack unwinds after this).
            await server.stop()
        if push.failure is not None:
            raise ExecutorFailed(f"{push.failure}") from push.failure
    log.info("executor %s stopped", executor.id)


def output_source(tenant: str, app: Application, executor: Executor) -> str:
    """The CloudEvent ``source`` of what an executor writes: its last agent, as LangStream
    names an agent (``/{tenant}/{application}/agents/{agent id}``)."""
    return agent_source(tenant, app.name, executor.agents[-1].id)


def _readiness(runner: Runner) -> Callable[[], str | None]:
    if isinstance(runner, ServiceHost):
        return runner.unready_reason
    return lambda: None if runner.ready else "the executor is starting"
