"""``POST /api/gateways/produce/<tenant>/<application>/<gateway>``: HTTP produce gateways
(:func:`gateway.produce.produce` writes the records)."""

from __future__ import annotations

from quart import Quart, Response, request

from gateway.idempotency import IDEMPOTENCY_HEADER
from gateway.produce import produce
from gateway.routes.http import authenticated, json_response, read_body
from gateway.runtime import GatewayRuntime
from sluice.protocol import http_route

__all__ = ["register"]


def register(app: Quart, runtime: GatewayRuntime) -> None:
    """Add the HTTP produce route to ``app``."""
    settings = runtime.settings

    @app.post(http_route("produce"))
    async def produce_route(tenant: str, application: str, gateway: str) -> Response:
        async with runtime.until_drained():
            call = await authenticated(runtime, "produce", tenant, application, gateway)
            body = await read_body(settings)
            answer, count = await produce(
                runtime.producer,
                call,
                request.headers.get("Content-Type"),
                body,
                settings,
                idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
                keys=runtime.idempotency,
            )
        runtime.metrics.records_produced += count
        return json_response(answer)
