"""The worker's command line (``python -m workers``), built and parsed by one type.

``sluice run`` and the Knative generator build it with :meth:`WorkerCommand.to_argv`; the
worker parses it with :meth:`WorkerCommand.from_argv`. It lives at the bottom so that both the
worker and the generator, which do not import each other, share it. The environment (``PORT``,
``SLUICE_STATE_DIR``, ``JAVA_HOME``...) is not part of it: the worker reads that at its edge.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WORKER_ENVIRONMENT", "WorkerCommand"]

WORKER_ENVIRONMENT = (
    "environment: SLUICE_STATE_DIR (default for --state-dir); "
    "PORT (default for --port, set by Knative); "
    "SLUICE_FAULT_KILL_AFTER=N (tests only: SIGKILL the worker after N finished records, "
    "before their offsets are committed); JAVA_HOME (the Java of camel-source agents, else "
    "java on PATH); SLUICE_CAMEL_CACHE_DIR (where camel-source jars are kept, else the user "
    "cache folder)"
)


@dataclass(frozen=True)
class WorkerCommand:
    """The arguments of ``python -m workers``. None (or False) leaves an option out, so the
    worker uses its default."""

    app_dir: Path
    executor_id: str
    bootstrap_servers: str
    instance: Path | None = None
    secrets: Path | None = None
    tenant: str = "default"
    app_id: str | None = None
    service_port: int | None = None
    """Where a python-service agent is told to listen (worker default: 8000)."""
    health_port: int | None = None
    """Pull mode's /healthz, /readyz and /metrics (worker default: 0, a free port)."""
    push: bool = False
    port: int | None = None
    """Push mode's HTTP port (worker default: ``$PORT``, else 8080)."""
    host: str | None = None
    """Push mode's address (worker default: 0.0.0.0)."""
    state_dir: Path | None = None
    state_volumes: bool = False

    def to_argv(self) -> list[str]:
        """The arguments after ``python -m workers``, in a fixed order."""
        argv = [str(self.app_dir), "--bootstrap-servers", self.bootstrap_servers]
        if self.instance is not None:
            argv += ["-i", str(self.instance)]
        if self.secrets is not None:
            argv += ["-s", str(self.secrets)]
        argv += ["--tenant", self.tenant]
        if self.app_id is not None:
            argv += ["--app-id", self.app_id]
        argv += ["--executor", self.executor_id]
        if self.service_port is not None:
            argv += ["--service-port", str(self.service_port)]
        if self.health_port is not None:
            argv += ["--health-port", str(self.health_port)]
        if self.push:
            argv.append("--push")
        if self.port is not None:
            argv += ["--port", str(self.port)]
        if self.host is not None:
            argv += ["--host", self.host]
        if self.state_dir is not None:
            argv += ["--state-dir", str(self.state_dir)]
        if self.state_volumes:
            argv.append("--state-volumes")
        return argv

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None) -> WorkerCommand:
        """Parse the arguments (None: ``sys.argv``); argparse exits with usage on bad ones."""
        args = parser().parse_args(argv)
        return cls(
            app_dir=args.app_dir,
            executor_id=args.executor,
            bootstrap_servers=args.bootstrap_servers,
            instance=args.instance,
            secrets=args.secrets,
            tenant=args.tenant,
            app_id=args.app_id,
            service_port=args.service_port,
            health_port=args.health_port,
            push=args.push,
            port=args.port,
            host=args.host,
            state_dir=args.state_dir,
            state_volumes=args.state_volumes,
        )


def parser() -> argparse.ArgumentParser:
    """``python -m workers``'s parser (also its ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m workers",
        description="Run one executor of a Sluice application (sluice run starts these).",
        epilog=WORKER_ENVIRONMENT,
    )
    parser.add_argument("app_dir", type=Path, metavar="APP_DIR")
    parser.add_argument("--executor", required=True, help="executor id (from sluice plan)")
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("-i", "--instance", type=Path)
    parser.add_argument("-s", "--secrets", type=Path)
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--app-id")
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument(
        "--state-volumes",
        action="store_true",
        help="each agent's state directory is a volume mounted at STATE_DIR/AGENT_ID, shared "
        "by the pods of a rollout: the lock file is inside it (Knative)",
    )
    parser.add_argument("--health-port", type=int, help="default: 0 (a free port)")
    parser.add_argument("--service-port", type=int, help="default: 8000")
    parser.add_argument(
        "--push",
        action="store_true",
        help="push mode: receive the input events as CloudEvents over HTTP (KafkaSource) on "
        "--port, with /healthz, /readyz and /metrics on the same port (--health-port is unused)",
    )
    parser.add_argument("--port", type=int, help="push mode: HTTP port (default: $PORT or 8080)")
    parser.add_argument("--host", help="push mode: address to listen on (default: 0.0.0.0)")
    return parser
