"""``sluice run``: an application on this machine, with a local Kafka when none is configured."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console

from gateway.options import add_gateway_arguments, gateway_settings
from sluice import eventloop
from sluice.application import Application, Plan, plan_application
from sluice.cli.app import app_arguments, check_runtime, load
from sluice.cli.summary import Worker, summary_lines
from sluice.cli.watch import Status, WorkerWatch
from sluice.errors import SluiceError
from sluice.kafka.client import KafkaSettings
from sluice.net import free_port
from workers.supervisor import ChildSpec, Supervisor

if TYPE_CHECKING:
    # Imported when the gateway starts: Quart is too slow to import for every command.
    from gateway.proxy import ServiceRoutes


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="run an application on this machine",
        description="Validate and plan the application, start a local Kafka broker unless the "
        "instance names bootstrap servers (Java 17+ and Maven needed; the jars are cached), "
        "create the topics, start one worker process per executor (a failed one is restarted "
        "with backoff) and the gateway, which serves as soon as Kafka does; print a summary "
        "once every worker is ready or has failed (naming those not running, and why), and "
        "keep running until Ctrl-C, which drains and stops everything.",
    )
    app_arguments(run)
    run.add_argument(
        "--tenant", default="default", help="tenant of the gateway URLs (default: default)"
    )
    run.add_argument(
        "--kafka-port",
        type=int,
        default=0,
        metavar="PORT",
        help="port of the local broker (default: a free port)",
    )
    run.add_argument(
        "--kafka-data-dir",
        type=Path,
        metavar="DIR",
        help="data folder of the local broker (default: in the user data folder)",
    )
    run.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="root of the agents' persistent state directories (default: SLUICE_STATE_DIR, "
        "else the user data folder)",
    )
    run.add_argument(
        "--gateway-host",
        default="127.0.0.1",
        help="address the gateway listens on (default: 127.0.0.1)",
    )
    run.add_argument(
        "--gateway-port",
        type=int,
        default=8091,
        help="port of the gateway (default: 8091, as LangStream)",
    )
    run.add_argument(
        "--wait-workers",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the summary waits for workers that are neither ready nor failed; the "
        "gateway serves before that, and a worker ready later is picked up (default: 60)",
    )
    run.add_argument(
        "--ui",
        action="store_true",
        help="serve the chat web page at /ui/TENANT/APP (for applications with a chat gateway)",
    )
    add_gateway_arguments(run)
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        args.gateway_settings = replace(gateway_settings(args), ui=args.ui)
    except SluiceError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    app = load(args)
    if app is None or not check_runtime(app):
        return 1
    try:
        return eventloop.run(_cancellable(_serve(app, args, console)))
    except SluiceError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 1
    except asyncio.CancelledError:
        console.print("stopped while starting")
        return 128 + signal.SIGTERM


async def _cancellable(job: Coroutine[Any, Any, int]) -> int:
    """Run ``job``; SIGTERM while it starts cancels it, so everything it started is stopped
    (without this a SIGTERM before the gateway is up would orphan the workers)."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await job


async def _serve(app: Application, args: argparse.Namespace, console: Console) -> int:
    started = time.monotonic()
    plan = plan_application(app)
    _done(
        console,
        f"application {args.tenant}/{app.name}: {len(app.agents)} agent(s) in "
        f"{len(plan.executors)} executor(s), {len(plan.topics)} topic(s), "
        f"{len(app.gateways)} gateway(s)",
    )
    async with _kafka(app, args, console) as bootstrap:
        from sluice.kafka.admin import ensure_topics

        settings = KafkaSettings(bootstrap, app.instance.kafka_client_options)
        with console.status("creating topics"):
            await ensure_topics(settings, plan.topics)
        created = [t.name for t in plan.topics if t.creation_mode == "create-if-not-exists"]
        _done(console, f"topics: {', '.join(created) or 'none to create'}")
        supervisor, children = _workers(app, plan, args, bootstrap)
        services = {
            e.id: (args.tenant, app.name, e.agents[0].id)
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
                _gateway(app, settings, args, console, watch.routes) as base_url,
                httpx.AsyncClient(timeout=2) as client,
            ):
                _done(console, f"gateway: {base_url}")
                await _wait_settled(console, watch, client, children, args.wait_workers)
                workers = [_worker(watch, supervisor, c, args.wait_workers) for c in children]
                lines = summary_lines(
                    app,
                    plan,
                    tenant=args.tenant,
                    base_url=base_url,
                    bootstrap=bootstrap,
                    workers=workers,
                    ui=args.ui,
                    elapsed=time.monotonic() - started,
                )
                for line in lines:
                    style = _STYLES.get(line.style, "")
                    console.print(
                        line.text, style=style, highlight=False, soft_wrap=True, markup=False
                    )
                console.print("Press Ctrl-C to stop.")
                # One line each for scripts (and tests) that wait for `sluice run` on stdout.
                for child in children:
                    print(
                        f"worker: {child.name} pid={supervisor.pid(child.name) or '-'} "
                        f"health={child.health_port}",
                        flush=True,
                    )
                print(f"gateway: {base_url}", flush=True)
                print(f"ready: kafka={bootstrap}", flush=True)
                watch.on_change = _Reporter(console, started)
                follower = asyncio.create_task(watch.follow(client))
                try:
                    await _until_interrupted()
                finally:
                    follower.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await follower
        finally:
            with console.status("stopping the workers"):
                await supervisor.stop()
    console.print("stopped")
    return 0


def _done(console: Console, what: str) -> None:
    """One finished start-up step."""
    console.print(f"[green]✔[/green] {what}", highlight=False, soft_wrap=True)


@contextlib.asynccontextmanager
async def _gateway(
    app: Application,
    kafka: KafkaSettings,
    args: argparse.Namespace,
    console: Console,
    service_urls: ServiceRoutes,
) -> AsyncIterator[str]:
    """The gateway (Quart under Hypercorn) in this process, until the block ends; agent-id
    service gateways forward to ``service_urls`` (by tenant, application and agent id), which
    change while it serves."""
    from gateway.app import create_app
    from gateway.serving import serving

    served = create_app(
        {(args.tenant, app.name): app}, kafka, args.gateway_settings, service_urls=service_urls
    )
    async with serving(served, args.gateway_host, args.gateway_port) as base_url:
        try:
            yield base_url
        finally:
            console.print("stopping the gateway", highlight=False)


@contextlib.asynccontextmanager
async def _kafka(
    app: Application, args: argparse.Namespace, console: Console
) -> AsyncIterator[str]:
    configured = app.instance.bootstrap_servers
    if configured:
        _done(console, f"Kafka: {configured} (from the instance)")
        yield configured
        return
    from sluice.kafka.local import LocalKafka, LocalKafkaSettings, broker_status

    java_home = os.environ.get("JAVA_HOME")
    settings = LocalKafkaSettings(
        port=args.kafka_port,
        data_dir=args.kafka_data_dir,
        java_home=Path(java_home) if java_home else None,
    )
    running = broker_status(settings.resolved_data_dir())
    if running.running and running.bootstrap_servers:
        # A broker from `sluice kafka start` owns this data folder: use it, leave it running.
        _done(console, f"Kafka: {running.bootstrap_servers} (the local broker already running)")
        yield running.bootstrap_servers
        return
    with console.status("starting the local Kafka broker (first start downloads its jars)"):
        kafka = LocalKafka(settings)
        await kafka.start()
    try:
        _done(console, f"Kafka: {kafka.bootstrap_servers} (local broker, stops with this command)")
        yield kafka.bootstrap_servers
    finally:
        with console.status("stopping the local Kafka broker"):
            await kafka.stop()


def _workers(
    app: Application, plan: Plan, args: argparse.Namespace, bootstrap: str
) -> tuple[Supervisor, list[ChildSpec]]:
    """One worker process per executor; services get a free port the gateway will proxy to."""
    from sluice.cli.environment import worker_python

    children: list[ChildSpec] = []
    python = worker_python(app, Path(args.app))
    for executor in plan.executors:
        health_port = free_port()
        service_port = free_port() if executor.component == "service" else None
        argv = [
            python,
            "-m",
            "workers",
            str(args.app),
            "--executor",
            executor.id,
            "--bootstrap-servers",
            bootstrap,
            "--tenant",
            args.tenant,
            "--app-id",
            app.name,
            "--health-port",
            str(health_port),
        ]
        if service_port is not None:
            argv += ["--service-port", str(service_port)]
        for flag, value in (
            ("-i", args.instance),
            ("-s", args.secrets),
            ("--state-dir", args.state_dir),
        ):
            if value is not None:
                argv += [flag, str(value)]
        children.append(
            ChildSpec(executor.id, argv, health_port=health_port, service_port=service_port)
        )
    return Supervisor(children), children


_LANGSTREAM_SERVICE_PORT = 8000


def _service_ports(plan: Plan) -> dict[str, int]:
    """The port each python-service executor is given (its PORT), by executor id.

    LangStream gives every service port 8000 and applications hard-code it (``uvicorn.run(app,
    port=8000)``), so the first service gets 8000 when nothing here listens there; the others
    get free ports. The gateway routes to the port a service really listens on either way.
    """
    ports: dict[str, int] = {}
    for executor in plan.executors:
        if executor.component != "service":
            continue
        if not ports and _port_is_free(_LANGSTREAM_SERVICE_PORT):
            ports[executor.id] = _LANGSTREAM_SERVICE_PORT
        else:
            ports[executor.id] = free_port(avoid=_LANGSTREAM_SERVICE_PORT)
    return ports


def _port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` on every address and on loopback now."""
    for host in ("0.0.0.0", "127.0.0.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As servers do: a connection of a past run in TIME_WAIT does not make it busy.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


_STYLES = {"ready": "bold green", "not-ready": "bold red", "problem": "red"}


async def _wait_settled(
    console: Console,
    watch: WorkerWatch,
    client: httpx.AsyncClient,
    children: list[ChildSpec],
    within: float,
) -> None:
    """Until every worker is ready or has failed at least once (``within`` seconds at most)."""
    if not children:
        return
    deadline = time.monotonic() + within
    with console.status(f"starting {len(children)} worker(s)") as status:
        while True:
            await watch.poll(client)
            pending = [c.name for c in children if watch.status(c.name).state == "starting"]
            if not pending or time.monotonic() >= deadline:
                break
            status.update(f"starting worker(s): {', '.join(pending)}")
            await asyncio.sleep(0.2)
    ready = [c.name for c in children if watch.status(c.name).state == "ready"]
    if len(ready) == len(children):
        _done(console, f"{len(children)} worker(s) ready: {', '.join(ready)}")


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


class _Reporter:
    """After the summary: a line when a worker becomes ready late, or stops running."""

    def __init__(self, console: Console, started: float) -> None:
        self._console = console
        self._started = started
        self._reported: dict[str, str] = {}
        """The state last reported of each worker that is not ready."""

    def __call__(self, name: str, previous: Status, status: Status) -> None:
        if status.state == "ready":
            self._reported.pop(name, None)
            port = f", service on port {status.service_port}" if status.service_port else ""
            after = time.monotonic() - self._started
            _done(self._console, f"worker {name} is ready ({after:.1f} s after the start{port})")
            return
        said = self._reported.get(name)
        # Once per stop: not a line for each restart of a worker that keeps failing.
        if said is None or (said == "starting" and status.state == "failed"):
            self._reported[name] = status.state
            what = "not running" if status.state == "failed" else "not ready"
            self._console.print(
                f"worker {name} is {what}: {status.reason}",
                style="red",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    # A second Ctrl-C (or a SIGTERM forwarded by a wrapper such as `timeout`) while everything
    # drains would otherwise raise KeyboardInterrupt in the middle of the shutdown, print a
    # traceback and leave the workers to notice on their own that their parent is gone.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _already_stopping)


def _already_stopping() -> None:
    print("already stopping: waiting for the gateway and the workers to finish", file=sys.stderr)
