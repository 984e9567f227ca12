"""``sluice run`` as a library: an application on this machine, with a local Kafka broker when
the instance names none.

:func:`run_application` checks nothing about the command line and prints nothing: it takes a
loaded application and frozen :class:`RunSettings`, tells :class:`~sluice.local.events.RunEvents`
what it does, and runs until its block ends. In order: the broker (reused when ``sluice kafka
start`` runs one on the same data folder), a PostgreSQL for each ``jdbc`` datasource that names
this machine where nothing listens (:mod:`sluice.local.databases`; Milvus Lite and Cassandra
likewise, :mod:`sluice.local.milvus`, :mod:`sluice.local.cassandra`), the topics, the
``jdbc-table`` assets (:mod:`sluice.local.assets`), one supervised worker process per executor,
the gateway in this process (it serves as soon as Kafka does, before the workers are ready),
then the wait until every worker is ready or has failed. While the block runs, a watch keeps the
gateway's service routes current and tells about workers that come and go. Leaving it stops the
gateway (drained), then the workers, then the PostgreSQL servers and the broker it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gateway.settings import GatewaySettings
from sluice.application import Application, Plan, plan_application
from sluice.application.assets import CREATED
from sluice.commands import WorkerCommand
from sluice.kafka import KafkaSettings
from sluice.local.cassandra import local_cassandra
from sluice.local.databases import local_databases
from sluice.local.environment import worker_python
from sluice.local.events import RunEvents, Running, Worker
from sluice.local.milvus import local_milvus
from sluice.local.watch import Status, WorkerWatch
from sluice.net import free_port
from workers.supervisor import ChildSpec, Supervisor

__all__ = ["RunSettings", "run_application"]


@dataclass(frozen=True)
class RunSettings:
    """How to run an application here. The CLI fills it from ``sluice run``'s flags and the
    environment; nothing here reads either."""

    app_dir: Path
    """The application folder (the workers load it again from there)."""
    instance: Path | None = None
    secrets: Path | None = None
    tenant: str = "default"
    """The tenant of the gateway URLs."""
    kafka_port: int = 0
    """Port of a local broker started here; 0: a free one."""
    kafka_data_dir: Path | None = None
    """Data folder of the local broker; None: in the user data folder."""
    java_home: Path | None = None
    """The Java the local broker runs on; None: ``java`` on PATH."""
    state_dir: Path | None = None
    """Root of the agents' state directories; None: the workers' default."""
    python_envs_dir: Path | None = None
    """Where applications' Python environments are kept; None: the user cache."""
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8091
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    wait_workers: float = 60.0
    """Seconds the start waits for workers that are neither ready nor failed."""
    postgres_data_dir: Path | None = None
    """Where PostgreSQL servers started for ``jdbc`` datasources keep their data, one folder per
    port (:mod:`sluice.local.databases`); None: the local server's default. Milvus Lite and
    Cassandra nodes keep theirs beside (``milvus-<port>``, ``cassandra-<port>``), by default in
    Sluice's user data directory."""


@contextlib.asynccontextmanager
async def run_application(
    app: Application, settings: RunSettings, events: RunEvents | None = None
) -> AsyncIterator[Running]:
    """Start everything, wait for the workers to settle, and run until the block ends.

    Raises :class:`~sluice.errors.SluiceError` (e.g. no Java for the broker, topics that cannot
    be created) with everything started so far stopped again.
    """
    events = events or RunEvents()
    started = time.monotonic()
    plan = plan_application(app)
    events.done(
        f"application {settings.tenant}/{app.name}: {len(app.agents)} agent(s) in "
        f"{len(plan.executors)} executor(s), {len(plan.topics)} topic(s), "
        f"{len(app.gateways)} gateway(s)"
    )
    async with (
        _kafka(app, settings, events) as bootstrap,
        local_databases(app, settings.postgres_data_dir, events),
        local_milvus(app, settings.postgres_data_dir, events),
        local_cassandra(app, settings.postgres_data_dir, events, settings.java_home),
    ):
        from sluice.kafka.admin import ensure_topics

        kafka = KafkaSettings(bootstrap, app.instance.kafka_client_options)
        with _working(events, "creating topics"):
            await ensure_topics(kafka, plan.topics)
        created = [t.name for t in plan.topics if t.creation_mode == "create-if-not-exists"]
        events.done(f"topics: {', '.join(created) or 'none to create'}")
        if any(asset.asset_type in CREATED for asset in app.assets):
            from sluice.local.assets import create_assets

            with _working(events, "creating assets"):
                for line in await create_assets(app):
                    events.done(f"asset {line}")
        supervisor, children = _workers(app, plan, settings, bootstrap, events)
        services = {
            e.id: (settings.tenant, app.name, e.agents[0].id)
            for e in plan.executors
            if e.component == "service"
        }
        from gateway.proxy import ServiceRoutes

        watch = WorkerWatch(supervisor, children, services, ServiceRoutes())
        await supervisor.start()
        try:
            # The gateway needs Kafka, not the workers: it serves now, and the watch routes
            # each service gateway once its worker is up.
            async with (
                _gateway(app, kafka, settings, events, watch) as base_url,
                httpx.AsyncClient(timeout=2) as client,
            ):
                events.done(f"gateway: {base_url}")
                await _wait_settled(events, watch, client, children, settings.wait_workers)
                workers = tuple(
                    _worker(watch, supervisor, c, settings.wait_workers) for c in children
                )
                running = Running(
                    settings.tenant,
                    app,
                    plan,
                    base_url,
                    bootstrap,
                    workers,
                    time.monotonic() - started,
                )
                events.ready(running)

                def changed(name: str, previous: Status, status: Status) -> None:
                    events.worker_changed(name, previous, status, time.monotonic() - started)

                watch.on_change = changed
                follower = asyncio.create_task(watch.follow(client))
                try:
                    yield running
                finally:
                    follower.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await follower
        finally:
            with _working(events, "stopping the workers"):
                await supervisor.stop()


@contextlib.contextmanager
def _working(events: RunEvents, what: str) -> Iterator[None]:
    events.working(what)
    try:
        yield
    finally:
        events.working(None)


@contextlib.asynccontextmanager
async def _gateway(
    app: Application,
    kafka: KafkaSettings,
    settings: RunSettings,
    events: RunEvents,
    watch: WorkerWatch,
) -> AsyncIterator[str]:
    """The gateway (under Hypercorn) in this process, until the block ends; agent-id service
    gateways forward to the watch's routes (by tenant, application and agent id), which change
    while it serves, and its control-plane API tells the workers' states the watch sees."""
    from gateway.app import create_app
    from gateway.serving import serving
    from sluice.local.replicas import replica_states

    service_urls = watch.routes

    served = create_app(
        {(settings.tenant, app.name): app},
        kafka,
        settings.gateway,
        service_urls=service_urls,
        worker_states=lambda _tenant, _app: replica_states(watch),
    )
    async with serving(served, settings.gateway_host, settings.gateway_port) as base_url:
        try:
            yield base_url
        finally:
            events.note("stopping the gateway")


@contextlib.asynccontextmanager
async def _kafka(app: Application, settings: RunSettings, events: RunEvents) -> AsyncIterator[str]:
    configured = app.instance.bootstrap_servers
    if configured:
        events.done(f"Kafka: {configured} (from the instance)")
        yield configured
        return
    from sluice.kafka.local import LocalKafka, LocalKafkaSettings, broker_status

    local = LocalKafkaSettings(
        port=settings.kafka_port, data_dir=settings.kafka_data_dir, java_home=settings.java_home
    )
    running = broker_status(local.resolved_data_dir())
    if running.running and running.bootstrap_servers:
        # A broker from `sluice kafka start` owns this data folder: use it, leave it running.
        events.done(f"Kafka: {running.bootstrap_servers} (the local broker already running)")
        yield running.bootstrap_servers
        return
    with _working(events, "starting the local Kafka broker (first start downloads its jars)"):
        kafka = LocalKafka(local)
        await kafka.start()
    try:
        events.done(f"Kafka: {kafka.bootstrap_servers} (local broker, stops with this command)")
        yield kafka.bootstrap_servers
    finally:
        with _working(events, "stopping the local Kafka broker"):
            await kafka.stop()


def _workers(
    app: Application, plan: Plan, settings: RunSettings, bootstrap: str, events: RunEvents
) -> tuple[Supervisor, list[ChildSpec]]:
    """One worker process per executor; services get a free port the gateway will proxy to."""
    children: list[ChildSpec] = []
    python = worker_python(app, settings.app_dir, events, settings.python_envs_dir)
    for executor in plan.executors:
        health_port = free_port()
        service_port = free_port() if executor.component == "service" else None
        command = WorkerCommand(
            app_dir=settings.app_dir,
            executor_id=executor.id,
            bootstrap_servers=bootstrap,
            instance=settings.instance,
            secrets=settings.secrets,
            tenant=settings.tenant,
            app_id=app.name,
            service_port=service_port,
            health_port=health_port,
            state_dir=settings.state_dir,
        )
        argv = [python, "-m", "workers", *command.to_argv()]
        children.append(
            ChildSpec(executor.id, argv, health_port=health_port, service_port=service_port)
        )
    return Supervisor(children), children


async def _wait_settled(
    events: RunEvents,
    watch: WorkerWatch,
    client: httpx.AsyncClient,
    children: list[ChildSpec],
    within: float,
) -> None:
    """Until every worker is ready or has failed at least once (``within`` seconds at most)."""
    if not children:
        return
    deadline = time.monotonic() + within
    with _working(events, f"starting {len(children)} worker(s)"):
        while True:
            await watch.poll(client)
            pending = [c.name for c in children if watch.status(c.name).state == "starting"]
            if not pending or time.monotonic() >= deadline:
                break
            events.working(f"starting worker(s): {', '.join(pending)}")
            await asyncio.sleep(0.2)
    ready = [c.name for c in children if watch.status(c.name).state == "ready"]
    if len(ready) == len(children):
        events.done(f"{len(children)} worker(s) ready: {', '.join(ready)}")


def _worker(watch: WorkerWatch, supervisor: Supervisor, child: ChildSpec, waited: float) -> Worker:
    status = watch.status(child.name)
    reason = status.reason
    if status.state == "starting":
        reason = f"not ready after {waited:.0f} s ({reason})"
    return Worker(
        child.name,
        supervisor.pid(child.name),
        child.health_port,
        status.service_port,
        running=status.state == "ready",
        reason=reason,
    )
