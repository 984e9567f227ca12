"""``sluice run``: an application on this machine, with a local Kafka when none is configured."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.status import Status as Spinner

from gateway.settings import GatewaySettings, api_token, gateway_settings
from sluice import eventloop
from sluice.application import Application
from sluice.cli.app import app_arguments, check_runtime, load
from sluice.cli.summary import summary_lines
from sluice.commands import GatewayOptions, add_gateway_options
from sluice.entrypoint import ignore_stop_signals
from sluice.errors import SluiceError
from sluice.local import RunEvents, Running, RunSettings, Status, run_application


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
    add_gateway_options(run)
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        gateway = replace(
            gateway_settings(GatewayOptions.from_namespace(args), args.tenant),
            ui=args.ui,
            api_token=api_token(os.environ),
        )
    except SluiceError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    app = load(args)
    if app is None or not check_runtime(app):
        return 1
    settings = _settings(args, gateway, os.environ)
    try:
        return eventloop.run(_serve(app, settings, console))
    except SluiceError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 1
    except asyncio.CancelledError:
        console.print("stopped while starting")
        return 128 + signal.SIGTERM


_ENVS_DIR_ENV = "SLUICE_PYTHON_ENVS_DIR"
"""Where applications' Python environments are kept (else the user cache)."""


def _settings(
    args: argparse.Namespace, gateway: GatewaySettings, environ: Mapping[str, str]
) -> RunSettings:
    java_home = environ.get("JAVA_HOME")
    envs_dir = environ.get(_ENVS_DIR_ENV)
    return RunSettings(
        app_dir=Path(args.app),
        instance=Path(args.instance) if args.instance else None,
        secrets=Path(args.secrets) if args.secrets else None,
        tenant=args.tenant,
        kafka_port=args.kafka_port,
        kafka_data_dir=args.kafka_data_dir,
        java_home=Path(java_home) if java_home else None,
        state_dir=args.state_dir,
        python_envs_dir=Path(envs_dir) if envs_dir else None,
        gateway_host=args.gateway_host,
        gateway_port=args.gateway_port,
        gateway=gateway,
        wait_workers=args.wait_workers,
    )


async def _serve(app: Application, settings: RunSettings, console: Console) -> int:
    interrupts = _Interrupts()
    async with run_application(app, settings, _ConsoleEvents(console, settings, interrupts)):
        await interrupts.stop.wait()
    console.print("stopped")
    ignore_stop_signals(asyncio.get_running_loop())
    return 0


class _Interrupts:
    """What Ctrl-C (SIGINT) and SIGTERM do through the run, installed before anything starts.

    While the application starts, they cancel the start, so everything started so far is
    stopped (without this a signal before the gateway is up would orphan the workers). From the
    moment the ready lines are printed (:meth:`armed`, before the first of them, so a script that
    signals as soon as it reads them is never too early) they ask for a clean stop. While it
    stops, a second one (a user's impatience, or a wrapper such as ``timeout`` forwarding the
    user's Ctrl-C) is noted and ignored instead of raising KeyboardInterrupt mid-shutdown.
    """

    def __init__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._armed = False
        self.stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signalled)

    def armed(self) -> None:
        """The application is up: from now on a signal asks for a clean stop."""
        self._armed = True

    def _signalled(self) -> None:
        if self.stop.is_set():
            print(
                "already stopping: waiting for the gateway and the workers to finish",
                file=sys.stderr,
            )
        elif self._armed:
            if sys.stderr.isatty():
                print(file=sys.stderr)
            self.stop.set()
        else:
            self._task.cancel()


_STYLES = {"ready": "bold green", "not-ready": "bold red", "problem": "red"}


class _ConsoleEvents(RunEvents):
    """The run's steps on stderr (a spinner while one takes a while, a check mark when it is
    done), the summary once the workers settled, and the lines scripts wait for on stdout."""

    def __init__(self, console: Console, settings: RunSettings, interrupts: _Interrupts) -> None:
        self._console = console
        self._settings = settings
        self._interrupts = interrupts
        self._spinner: Spinner | None = None
        self._reported: dict[str, str] = {}
        """The state last reported of each worker that is not ready."""

    def working(self, what: str | None) -> None:
        if what is None:
            if self._spinner is not None:
                self._spinner.stop()
                self._spinner = None
        elif self._spinner is None:
            self._spinner = self._console.status(what)
            self._spinner.start()
        else:
            self._spinner.update(what)

    def done(self, what: str) -> None:
        self._console.print(f"[green]✔[/green] {what}", highlight=False, soft_wrap=True)

    def note(self, what: str) -> None:
        self._console.print(what, highlight=False)

    def ready(self, running: Running) -> None:
        self._interrupts.armed()
        lines = summary_lines(
            running.app,
            running.plan,
            tenant=running.tenant,
            base_url=running.base_url,
            bootstrap=running.bootstrap,
            workers=running.workers,
            ui=self._settings.gateway.ui,
            elapsed=running.elapsed,
        )
        for line in lines:
            style = _STYLES.get(line.style, "")
            self._console.print(
                line.text, style=style, highlight=False, soft_wrap=True, markup=False
            )
        self._console.print("Press Ctrl-C to stop.")
        # One line each for scripts (and tests) that wait for `sluice run` on stdout.
        for worker in running.workers:
            print(
                f"worker: {worker.executor} pid={worker.pid or '-'} health={worker.health_port}",
                flush=True,
            )
        print(f"gateway: {running.base_url}", flush=True)
        print(f"ready: kafka={running.bootstrap}", flush=True)

    def worker_changed(self, name: str, previous: Status, status: Status, elapsed: float) -> None:
        """A line when a worker becomes ready late, or stops running."""
        if status.state == "ready":
            self._reported.pop(name, None)
            port = f", service on port {status.service_port}" if status.service_port else ""
            self.done(f"worker {name} is ready ({elapsed:.1f} s after the start{port})")
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
