"""The gateway's Quart application: the composition root.

:func:`create_app` makes the :class:`~gateway.runtime.GatewayRuntime` (the process-wide Kafka
clients, started before serving and stopped after), registers each route family of
:mod:`gateway.routes`, and answers every error as an RFC 9457 problem
(``application/problem+json``), never HTML and never a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

from quart import Quart, Response, has_request_context, request, websocket
from werkzeug.exceptions import HTTPException

from auth.clock import SYSTEM_CLOCK, Clock
from gateway.body_limit import BodyLimit
from gateway.errors import GatewayError, MethodNotAllowed
from gateway.problems import problem, problem_for
from gateway.proxy import ServiceKey
from gateway.routes import applications, metrics, produce, service, sse, ui, websockets
from gateway.routes.applications import StatesOf
from gateway.runtime import GatewayRuntime, attach
from gateway.settings import GatewaySettings
from sluice.application.model import Application
from sluice.kafka import KafkaSettings
from sluice.media import PROBLEM_CONTENT_TYPE

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_INTERNAL_ERROR: Final = "the gateway failed to serve the request; the error is logged"


def _path() -> str:
    """The path of the HTTP request or WebSocket being answered (errors happen in both)."""
    return request.path if has_request_context() else websocket.path


def _problem_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    others = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return Response(
        json.dumps(body), status=status, headers=others, content_type=PROBLEM_CONTENT_TYPE
    )


def _answer_errors(app: Quart) -> None:
    @app.errorhandler(GatewayError)
    async def gateway_error(error: GatewayError) -> Response:
        status, body, headers = problem_for(error, _path())
        if isinstance(error, MethodNotAllowed):
            headers["Allow"] = ", ".join(error.allow)
        return _problem_response(status, body, headers)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        detail = error.description or "the request cannot be served"
        headers: dict[str, str] = {}
        allowed = error.get_headers()
        for key, value in allowed:
            if key.lower() == "allow":
                headers["Allow"] = value
        return _problem_response(status, problem(status, detail, _path()), headers)

    @app.errorhandler(Exception)
    async def internal_error(error: Exception) -> Response:
        method = request.method if has_request_context() else "WEBSOCKET"
        logger.error("%s %s failed", method, _path(), exc_info=error)
        return _problem_response(500, problem(500, _INTERNAL_ERROR, _path()), {})


def _manage_lifecycle(app: Quart, runtime: GatewayRuntime) -> None:
    @app.before_serving
    async def start() -> None:
        await runtime.start()

    @app.after_serving
    async def stop() -> None:
        await runtime.stop()

    # Counted for the drain at shutdown (gateway.serving).
    @app.before_request
    async def enter() -> None:
        runtime.in_flight += 1

    @app.teardown_request
    async def leave(_: BaseException | None) -> None:
        runtime.in_flight -= 1


def create_app(
    apps: Mapping[tuple[str, str], Application],
    kafka: KafkaSettings,
    settings: GatewaySettings,
    *,
    service_urls: Mapping[ServiceKey, str] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    worker_states: StatesOf | None = None,
) -> Quart:
    """The gateway for ``apps``, keyed by (tenant, application id).

    ``service_urls`` maps (tenant, application, agent id) to the base URL of a running service
    agent, where its agent-id service gateways forward; a :class:`~gateway.proxy.ServiceRoutes`
    is used as it is, so its owner can change the routes while the gateway serves. ``clock``
    is the time the authentication providers check token expiry and cache lifetimes against.
    ``worker_states`` tells the control-plane routes (:mod:`gateway.routes.applications`) how the
    workers of an application are doing; without it they list executors without replicas.
    """
    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    runtime = GatewayRuntime(apps, kafka, settings, service_urls, clock=clock)
    attach(app, runtime)
    _manage_lifecycle(app, runtime)
    _answer_errors(app)
    for routes in (metrics, sse, produce, service, websockets, ui):
        routes.register(app, runtime)
    applications.register(app, runtime, worker_states)
    # Quart documents wrapping asgi_app (not the app) as the way to add ASGI middleware.
    app.asgi_app = BodyLimit(app.asgi_app, settings.max_body_bytes)  # type: ignore[method-assign,assignment]
    return app
