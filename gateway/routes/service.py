"""``/api/gateways/service/<tenant>/<application>/<gateway>[/<path>]``: HTTP service gateways.

Both kinds share the URL, so one route serves them: an agent-id gateway is a reverse proxy to
the service agent (:func:`gateway.proxy.forward`); a topics gateway writes the request and
waits for the correlated reply (:func:`gateway.service.call_service`).
"""

from __future__ import annotations

from typing import Final

from quart import Quart, Response, request

from gateway.proxy import forward
from gateway.routes.http import authenticated, json_response, read_body
from gateway.runtime import GatewayRuntime
from gateway.service import call_service, push_reply
from gateway.structured import structured_event
from sluice.media import CLOUDEVENTS_CONTENT_TYPE, JSON_CONTENT_TYPE
from sluice.protocol import http_route

__all__ = ["register"]

_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def register(app: Quart, runtime: GatewayRuntime) -> None:
    """Add the HTTP service routes to ``app``."""

    @app.route(
        http_route("service"),
        methods=_METHODS,
        defaults={"path": ""},
    )
    @app.route(
        f"{http_route('service')}/<path:path>",
        methods=_METHODS,
    )
    async def service_route(tenant: str, application: str, gateway: str, path: str) -> Response:
        async with runtime.until_drained():
            return await _service(runtime, tenant, application, gateway, path)


async def _service(
    runtime: GatewayRuntime, tenant: str, application: str, gateway: str, path: str
) -> Response:
    settings = runtime.settings
    call = await authenticated(runtime, "service", tenant, application, gateway)
    if call.spec.is_proxy:
        return await forward(
            runtime.http,
            runtime.service_urls,
            call,
            method=request.method,
            rest=path,
            headers=request.headers.items(),
            body=request.body,
            settings=settings,
        )
    runtime.check_pending()
    body = await read_body(settings)
    app = runtime.apps[(call.tenant, call.application)]
    reply = await call_service(
        runtime.producer,
        lambda topic: runtime.router(app.topic_spec(topic)),
        call,
        method=request.method,
        path=path,
        content_type=request.headers.get("Content-Type"),
        body=body,
        settings=settings,
        on_sent=runtime.metrics.count_produced,
    )
    wanted = request.accept_mimetypes.best_match(
        [JSON_CONTENT_TYPE, CLOUDEVENTS_CONTENT_TYPE], JSON_CONTENT_TYPE
    )
    if wanted == CLOUDEVENTS_CONTENT_TYPE:
        return Response(structured_event(reply), content_type=CLOUDEVENTS_CONTENT_TYPE)
    return json_response(push_reply(reply))
