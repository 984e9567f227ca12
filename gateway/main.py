"""``python -m gateway APP_DIR ...``: the gateway alone, as Knative runs it.

``sluice run`` serves the gateway beside its workers; on Kubernetes the gateway is a Knative
Service of its own (knative/services.py writes these arguments). Agent-id service gateways
forward to the URLs given with ``--service-url AGENT=URL``: the cluster-local URLs of the
python-service agents' Knative Services. SIGTERM (Knative scaling down or rolling out) drains:
readiness goes false, sockets get 1001, in-flight requests finish.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.options import add_gateway_arguments, gateway_settings
from sluice.entrypoint import configure_logging, port_from
from sluice.errors import SluiceError
from sluice.eventloop import run

__all__ = ["main", "parse_service_urls"]

log = logging.getLogger("gateway")


def parse_service_urls(items: Sequence[str]) -> dict[str, str]:
    """``AGENT=URL`` pairs -> {agent id: base URL}; SluiceError naming a malformed one."""
    urls: dict[str, str] = {}
    for item in items:
        agent, sep, url = item.partition("=")
        if not sep or not agent or not url.startswith(("http://", "https://")):
            raise SluiceError(f"--service-url {item!r}: expected AGENT_ID=http(s)://host[:port]")
        urls[agent] = url.rstrip("/")
    return urls


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description="Serve the gateways of one Sluice application (Knative runs this).",
        epilog="environment: PORT (default for --port, set by Knative)",
    )
    parser.add_argument("app", type=Path, metavar="APP_DIR")
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("-i", "--instance", type=Path)
    parser.add_argument("-s", "--secrets", type=Path)
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--app-id")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, help="HTTP port (default: $PORT or 8080)")
    parser.add_argument(
        "--service-url",
        action="append",
        default=[],
        metavar="AGENT=URL",
        help="where the python-service agent AGENT answers (agent-id service gateways); repeat",
    )
    add_gateway_arguments(parser)
    return parser


async def _serve(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    from gateway.app import create_app
    from gateway.serving import serving
    from sluice.application import load_application
    from sluice.kafka.client import KafkaSettings

    settings = gateway_settings(args)
    urls = parse_service_urls(args.service_url)
    app = load_application(
        args.app, instance=args.instance, secrets=args.secrets, environ=dict(environ),
        name=args.app_id,
    )  # fmt: skip
    kafka = KafkaSettings(args.bootstrap_servers, app.instance.kafka_client_options)
    unknown = sorted(set(urls) - {a.id for a in app.agents})
    if unknown:
        raise SluiceError(f"--service-url names agents the application lacks: {unknown}")
    served = create_app(
        {(args.tenant, app.name): app},
        kafka,
        settings,
        service_urls={(args.tenant, app.name, agent): url for agent, url in urls.items()},
    )
    port = args.port
    if port is None:
        port = port_from(environ)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(served, args.host, port) as url:
        log.info("gateway of %s/%s serving on %s", args.tenant, app.name, url)
        await stop.wait()
        log.info("stopping: draining in-flight requests and sockets")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    try:
        run(_serve(args, dict(os.environ)))  # on uvloop when it is installed
    except SluiceError as error:
        log.error("%s", error)
        return 1
    return 0
