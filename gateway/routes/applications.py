"""The read-only part of LangStream's control-plane API, which LangStream's CLI uses.

``GET /api/applications/{tenant}`` (an array) and ``GET /api/applications/{tenant}/{application}``
(``?stats=`` accepted and ignored) answer the application served in LangStream's
``ApplicationDescription`` shape (:mod:`gateway.description`), so ``langstream apps get``,
``apps list`` and ``gateway produce|consume|chat`` work against a Sluice gateway. Deploying,
updating and deleting (POST, PUT, PATCH, DELETE) answer 405 saying to use ``sluice deploy`` or
``sluice delete``. Errors are problem+json, the body LangStream's control plane answers with.

With ``GatewaySettings.api_token`` set these routes want ``Authorization: Bearer <token>``, as
LangStream's control plane does when its security is on (a missing or wrong token is 401, and
counts against the client's failed-authentication budget); without it they are open, as
LangStream's are by default. ``worker_states`` tells the status of the workers (``sluice run``
knows them); without it the executors are listed without replicas.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

from quart import Quart, Response, request

from gateway.description import WorkerStates, describe
from gateway.errors import MethodNotAllowed, NotFound, TooManyRequests, Unauthorized
from gateway.routes.http import json_response
from gateway.runtime import GatewayRuntime
from sluice.application.plan import Plan, plan_application

__all__ = ["StatesOf", "register"]

StatesOf = Callable[[str, str], WorkerStates]
"""(tenant, application id) -> the states of its workers, asked at every request."""

_WRITES: Final = ["POST", "PUT", "PATCH", "DELETE"]
_READ_ONLY: Final = (
    "Sluice serves LangStream's control-plane API read-only: deploy, update and delete the "
    "application with `sluice deploy APP_DIR` and `sluice delete APP_DIR` (or restart `sluice run`)"
)


def register(app: Quart, runtime: GatewayRuntime, states: StatesOf | None = None) -> None:
    """Add the ``/api/applications`` routes to ``app``."""
    plans: dict[tuple[str, str], Plan] = {
        key: plan_application(application) for key, application in runtime.apps.items()
    }

    def described(tenant: str, application: str) -> dict[str, object]:
        app_spec = runtime.apps[(tenant, application)]
        workers = states(tenant, application) if states is not None else None
        return describe(tenant, app_spec, plans[(tenant, application)], workers)

    @app.get("/api/applications/<tenant>")
    async def list_applications(tenant: str) -> Response:
        _check_token(runtime)
        if not any(t == tenant for t, _ in runtime.apps):
            raise NotFound(f"tenant {tenant} not found")
        return json_response([described(t, a) for t, a in sorted(runtime.apps) if t == tenant])

    @app.get("/api/applications/<tenant>/<application>")
    async def get_application(tenant: str, application: str) -> Response:
        _check_token(runtime)
        if (tenant, application) not in runtime.apps:
            raise NotFound(f"application {application} of tenant {tenant} not found")
        return json_response(described(tenant, application))

    @app.route("/api/applications/<tenant>", methods=_WRITES)
    @app.route("/api/applications/<tenant>/<application>", methods=_WRITES)
    async def write(tenant: str, application: str = "") -> Response:
        del tenant, application
        _check_token(runtime)
        raise MethodNotAllowed(_READ_ONLY, allow=("GET",))


def _check_token(runtime: GatewayRuntime) -> None:
    """401 unless the request carries ``Authorization: Bearer <api_token>`` (when one is set)."""
    token = runtime.settings.api_token
    if token is None:
        return
    limiter = runtime.auth_failures
    client = runtime.client_of(request.remote_addr, request.headers)
    if limiter is not None and client is not None and not limiter.allows(client):
        raise TooManyRequests(
            "too many failed authentications from this client; retry later",
            retry_after=limiter.retry_after,
        )
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthorized(
            "this API needs the token of the Sluice instance: an Authorization: Bearer header "
            "(langstream profiles create|update ... --token TOKEN)",
            invalid_token=False,
        )
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8"), token.encode("utf-8")
    ):
        if limiter is not None and client is not None:
            limiter.failed(client)
        raise Unauthorized("invalid credentials: the token is not the Sluice instance's")
