"""The command lines of the worker (``python -m workers``) and of the gateway
(``python -m gateway``), each built and parsed by one type.

``sluice run`` and the Knative generator build the worker's with :meth:`WorkerCommand.to_argv`;
the worker parses it with :meth:`WorkerCommand.from_argv`. The Knative generator builds the
gateway's with :meth:`GatewayCommand.to_argv`; ``python -m gateway`` parses it with
:meth:`GatewayCommand.from_argv` (``sluice run`` serves the gateway in its own process and only
shares its :class:`GatewayOptions`). They live at the bottom so that the entry points and the
generator, which do not import each other, share them. The environment (``PORT``,
``SLUICE_STATE_DIR``, ``JAVA_HOME``...) is not part of them: each process reads that at its edge.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sluice.errors import SluiceError

__all__ = [
    "API_TOKEN_ENV",
    "GATEWAY_ENVIRONMENT",
    "WORKER_ENVIRONMENT",
    "GatewayCommand",
    "GatewayOptions",
    "WorkerCommand",
    "add_gateway_options",
    "gateway_parser",
    "parse_service_urls",
]

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
        argv = _application_argv(
            self.app_dir,
            self.bootstrap_servers,
            self.instance,
            self.secrets,
            self.tenant,
            self.app_id,
        )
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
    _add_application_arguments(parser)
    parser.add_argument("--executor", required=True, help="executor id (from sluice plan)")
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


API_TOKEN_ENV = "SLUICE_API_TOKEN"
"""The environment variable of the token the gateway's control-plane API wants (read by
``python -m gateway`` and ``sluice run``, set from a Secret on Knative); unset: no token."""

GATEWAY_ENVIRONMENT = (
    "environment: PORT (default for --port, set by Knative); "
    f"{API_TOKEN_ENV} (the bearer token of /api/applications, LangStream's control-plane API)"
)


@dataclass(frozen=True)
class GatewayOptions:
    """The gateway's options that ``sluice run`` shares with ``python -m gateway``; the
    defaults are the parser's, and :meth:`to_argv` writes only what differs from them.
    Their values are checked where the gateway's settings are made from them."""

    allowed_origins: tuple[str, ...] = ()
    """Browser origins allowed to open WebSockets; empty: any origin."""
    auth_failure_limit: int = 100
    """Failed authentications of a client in a row before 429; 0: no limit."""
    client_ip_header: str | None = None
    drain_timeout: float = 35.0
    produce_timeout: float = 30.0
    test_auth: str | None = None
    """The provider that checks test-credentials."""
    test_auth_config: tuple[str, ...] = ()
    """Its configuration, ``KEY=VALUE`` items as given."""

    def to_argv(self) -> list[str]:
        """The options' arguments, in a fixed order."""
        argv: list[str] = []
        for origin in self.allowed_origins:
            argv += ["--allowed-origin", origin]
        if self.auth_failure_limit != 100:
            argv += ["--auth-failure-limit", str(self.auth_failure_limit)]
        if self.client_ip_header is not None:
            argv += ["--client-ip-header", self.client_ip_header]
        if self.drain_timeout != 35.0:
            argv += ["--drain-timeout", str(self.drain_timeout)]
        if self.produce_timeout != 30.0:
            argv += ["--produce-timeout", str(self.produce_timeout)]
        if self.test_auth is not None:
            argv += ["--test-auth", self.test_auth]
        for item in self.test_auth_config:
            argv += ["--test-auth-config", item]
        return argv

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> GatewayOptions:
        """The options of a parser that :func:`add_gateway_options` filled."""
        return cls(
            allowed_origins=tuple(args.allowed_origin or ()),
            auth_failure_limit=args.auth_failure_limit,
            client_ip_header=args.client_ip_header,
            drain_timeout=args.drain_timeout,
            produce_timeout=args.produce_timeout,
            test_auth=args.test_auth,
            test_auth_config=tuple(args.test_auth_config),
        )


@dataclass(frozen=True)
class GatewayCommand:
    """The arguments of ``python -m gateway``. None leaves an option out, so the gateway uses
    its default."""

    app_dir: Path
    bootstrap_servers: str
    instance: Path | None = None
    secrets: Path | None = None
    tenant: str = "default"
    app_id: str | None = None
    host: str | None = None
    """Address to listen on (gateway default: 0.0.0.0)."""
    port: int | None = None
    """HTTP port (gateway default: ``$PORT``, else 8080)."""
    options: GatewayOptions = field(default_factory=GatewayOptions)
    service_urls: Mapping[str, str] = field(default_factory=dict)
    """Agent id -> base URL of its python-service (agent-id service gateways)."""

    def to_argv(self) -> list[str]:
        """The arguments after ``python -m gateway``, in a fixed order (service URLs sorted by
        agent id)."""
        argv = _application_argv(
            self.app_dir,
            self.bootstrap_servers,
            self.instance,
            self.secrets,
            self.tenant,
            self.app_id,
        )
        if self.host is not None:
            argv += ["--host", self.host]
        if self.port is not None:
            argv += ["--port", str(self.port)]
        argv += self.options.to_argv()
        for agent_id, url in sorted(self.service_urls.items()):
            argv += ["--service-url", f"{agent_id}={url}"]
        return argv

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None) -> GatewayCommand:
        """Parse the arguments (None: ``sys.argv``); argparse exits with usage on bad ones,
        a malformed ``--service-url`` is a SluiceError naming it."""
        args = gateway_parser().parse_args(argv)
        return cls(
            app_dir=args.app_dir,
            bootstrap_servers=args.bootstrap_servers,
            instance=args.instance,
            secrets=args.secrets,
            tenant=args.tenant,
            app_id=args.app_id,
            host=args.host,
            port=args.port,
            options=GatewayOptions.from_namespace(args),
            service_urls=parse_service_urls(args.service_url),
        )


def parse_service_urls(items: Sequence[str]) -> dict[str, str]:
    """``AGENT=URL`` pairs -> {agent id: base URL}; SluiceError naming a malformed one."""
    urls: dict[str, str] = {}
    for item in items:
        agent, sep, url = item.partition("=")
        if not sep or not agent or not url.startswith(("http://", "https://")):
            raise SluiceError(f"--service-url {item!r}: expected AGENT_ID=http(s)://host[:port]")
        urls[agent] = url.rstrip("/")
    return urls


def gateway_parser() -> argparse.ArgumentParser:
    """``python -m gateway``'s parser (also its ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description="Serve the gateways of one Sluice application (Knative runs this).",
        epilog=GATEWAY_ENVIRONMENT,
    )
    _add_application_arguments(parser)
    parser.add_argument("--host", help="address to listen on (default: 0.0.0.0)")
    parser.add_argument("--port", type=int, help="HTTP port (default: $PORT or 8080)")
    parser.add_argument(
        "--service-url",
        action="append",
        default=[],
        metavar="AGENT=URL",
        help="where the python-service agent AGENT answers (agent-id service gateways); repeat",
    )
    add_gateway_options(parser)
    return parser


def add_gateway_options(parser: argparse.ArgumentParser) -> None:
    """The :class:`GatewayOptions` flags: browser origins, the failed-authentication limit, the
    client address header, the produce and drain timeouts and the test provider."""
    parser.add_argument(
        "--allowed-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="browser origin (scheme://host[:port]) allowed to open WebSockets; repeat for "
        "more (default: any origin; set it when a browser app is served)",
    )
    parser.add_argument(
        "--auth-failure-limit",
        type=int,
        default=100,
        metavar="N",
        help="failed authentications a client (IP address) may have in a row before it gets "
        "429 (then one more per second); 0: no limit (default: 100)",
    )
    parser.add_argument(
        "--client-ip-header",
        metavar="HEADER",
        help="header a trusted proxy sets to the client's address (its right-most public "
        "address counts), e.g. X-Forwarded-For behind Knative (default: the peer address)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=35.0,
        metavar="SECONDS",
        help="when the gateway stops (SIGTERM, Ctrl-C): how long in-flight requests get to "
        "finish; a service call still waiting for its reply then answers 503 (default: 35, "
        "longer than the default service timeout of 30)",
    )
    parser.add_argument(
        "--produce-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a produce waits for Kafka's acknowledgement before it answers 503; "
        "also the gateway producer's request timeout (default: 30)",
    )
    parser.add_argument(
        "--test-auth",
        metavar="PROVIDER",
        help="provider (google, github, jwt, http) that checks test-credentials on gateways "
        "with allow-test-mode: true (default: none, test credentials are refused)",
    )
    parser.add_argument(
        "--test-auth-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="configuration of the --test-auth provider (e.g. clientId=...); repeat for more",
    )


def _add_application_arguments(parser: argparse.ArgumentParser) -> None:
    """What both entry points are given about the application: its folder, Kafka, the instance
    and secrets files, the tenant and the application id."""
    parser.add_argument("app_dir", type=Path, metavar="APP_DIR")
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("-i", "--instance", type=Path)
    parser.add_argument("-s", "--secrets", type=Path)
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--app-id")


def _application_argv(
    app_dir: Path,
    bootstrap_servers: str,
    instance: Path | None,
    secrets: Path | None,
    tenant: str,
    app_id: str | None,
) -> list[str]:
    """The arguments of :func:`_add_application_arguments`, in the order both commands use."""
    argv = [str(app_dir), "--bootstrap-servers", bootstrap_servers]
    if instance is not None:
        argv += ["-i", str(instance)]
    if secrets is not None:
        argv += ["-s", str(secrets)]
    argv += ["--tenant", tenant]
    if app_id is not None:
        argv += ["--app-id", app_id]
    return argv
