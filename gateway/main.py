"""``python -m gateway APP_DIR ...``: the gateway alone, as Knative runs it.

``sluice run`` serves the gateway beside its workers; on Kubernetes the gateway is a Knative
Service of its own (knative/services.py writes these arguments). Agent-id service gateways
forward to the URLs given with ``--service-url AGENT=URL``: the cluster-local URLs of the
python-service agents' Knative Services. SIGTERM (Knative scaling down or rolling out) drains:
readiness goes false, sockets get 1001, in-flight requests finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import replace

from gateway.settings import api_token, gateway_settings
from sluice.commands import GatewayCommand
from sluice.entrypoint import configure_logging, port_from
from sluice.errors import SluiceError
from sluice.eventloop import run

__all__ = ["main"]

log = logging.getLogger("gateway")


async def _serve(command: GatewayCommand, environ: Mapping[str, str]) -> None:
    from gateway.app import create_app
    from gateway.serving import serving
    from sluice.application import load_application
    from sluice.kafka import KafkaSettings

    settings = replace(
        gateway_settings(command.options, command.tenant), api_token=api_token(environ)
    )
    app = load_application(
        command.app_dir, instance=command.instance, secrets=command.secrets,
        environ=dict(environ), name=command.app_id,
    )  # fmt: skip
    kafka = KafkaSettings(command.bootstrap_servers, app.instance.kafka_client_options)
    urls = command.service_urls
    unknown = sorted(set(urls) - {a.id for a in app.agents})
    if unknown:
        raise SluiceError(f"--service-url names agents the application lacks: {unknown}")
    served = create_app(
        {(command.tenant, app.name): app},
        kafka,
        settings,
        service_urls={(command.tenant, app.name, agent): url for agent, url in urls.items()},
    )
    port = command.port
    if port is None:
        port = port_from(environ)
    host = "0.0.0.0" if command.host is None else command.host
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(served, host, port) as url:
        log.info("gateway of %s/%s serving on %s", command.tenant, app.name, url)
        await stop.wait()
        log.info("stopping: draining in-flight requests and sockets")


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    try:
        command = GatewayCommand.from_argv(argv)
        run(_serve(command, dict(os.environ)))  # on uvloop when it is installed
    except SluiceError as error:
        log.error("%s", error)
        return 1
    return 0
