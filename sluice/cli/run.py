"""``sluice run``: an application on this machine, with a local Kafka when none is configured."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sluice.application import Application, Plan, plan_application
from sluice.errors import SluiceError

ArgumentAdder = Callable[[argparse.ArgumentParser], None]


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], app_arguments: ArgumentAdder
) -> None:
    run = commands.add_parser(
        "run",
        help="run an application on this machine",
        description="Validate and plan the application, start a local Kafka broker unless the "
        "instance names bootstrap servers (Java 17+ and Maven needed; the jars are cached), "
        "create the topics, and keep running until Ctrl-C.",
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
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sluice.cli.app import load

    app = load(args)
    if app is None:
        return 1
    console = Console(stderr=True)
    try:
        return asyncio.run(_serve(app, args, console))
    except SluiceError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 1


async def _serve(app: Application, args: argparse.Namespace, console: Console) -> int:
    plan = plan_application(app)
    async with _kafka(app, args, console) as bootstrap:
        from sluice.kafka.admin import ensure_topics
        from sluice.kafka.client import KafkaSettings

        options = {k: v for k, v in app.instance.kafka_admin.items() if k != "bootstrap.servers"}
        settings = KafkaSettings(bootstrap, options)
        with console.status("creating topics"):
            await ensure_topics(settings, plan.topics)
        _print_plan(console, app, plan, args.tenant, bootstrap)
        console.print(
            "[yellow]This version prepares Kafka and the plan; workers and the gateway are not "
            "started yet.[/yellow] Press Ctrl-C to stop."
        )
        print(f"ready: kafka={bootstrap}", flush=True)
        await _until_interrupted()
    console.print("stopped")
    return 0


@contextlib.asynccontextmanager
async def _kafka(
    app: Application, args: argparse.Namespace, console: Console
) -> AsyncIterator[str]:
    configured = app.instance.bootstrap_servers
    if configured:
        console.print(f"Kafka: {configured} (from the instance)")
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
        console.print(f"Kafka: {running.bootstrap_servers} (the local broker already running)")
        yield running.bootstrap_servers
        return
    with console.status("starting the local Kafka broker (first start downloads its jars)"):
        kafka = LocalKafka(settings)
        await kafka.start()
    try:
        console.print(f"Kafka: {kafka.bootstrap_servers} (local broker, stops with this command)")
        yield kafka.bootstrap_servers
    finally:
        with console.status("stopping the local Kafka broker"):
            await kafka.stop()


def _print_plan(
    console: Console, app: Application, plan: Plan, tenant: str, bootstrap: str
) -> None:
    table = Table(title=f"{tenant}/{app.name}", title_justify="left")
    for column in ("executor", "agents", "input", "output", "parallelism"):
        table.add_column(column)
    for executor in plan.executors:
        table.add_row(
            executor.id,
            ", ".join(f"{a.id} ({a.type})" for a in executor.agents),
            executor.input_topic or "-",
            executor.output_topic or "-",
            str(executor.resources.parallelism),
        )
    console.print(table)
    created = [t.name for t in plan.topics if t.creation_mode == "create-if-not-exists"]
    console.print(f"topics on {bootstrap}: {', '.join(created) or 'none to create'}")


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if sys.stderr.isatty():
        print(file=sys.stderr)
