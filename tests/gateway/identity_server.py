"""A stand-in for an identity service on the internet: a real HTTP server on loopback.

``GET /auth/<tenant>`` answers by bearer token: ``alice-token`` and ``bob-token`` are valid
(principal ``subject`` alice / bob), ``nosubject-token`` is valid with no fields, ``down-token``
makes the service answer 503, anything else is 401. Every call is recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from quart import Quart, Response, jsonify, request

from tests.loopback import serve_on_loopback

PRINCIPALS = {
    "alice-token": {"subject": "alice", "email": "alice@example.com"},
    "bob-token": {"subject": "bob", "email": "bob@example.com"},
    "nosubject-token": {},
}


@dataclass
class IdentityServer:
    url: str
    calls: list[tuple[str, str]] = field(default_factory=list)
    """(tenant, Authorization header) of every call."""


def _app(server: IdentityServer) -> Quart:
    app = Quart(__name__)

    @app.get("/auth/<tenant>")
    async def check(tenant: str) -> Response | tuple[str, int]:
        authorization = request.headers.get("Authorization", "")
        server.calls.append((tenant, authorization))
        token = authorization.removeprefix("Bearer ")
        if token == "down-token":
            return "unavailable", 503
        principal = PRINCIPALS.get(token)
        if principal is None:
            return "unknown token", 401
        return jsonify(principal)

    return app


@contextlib.asynccontextmanager
async def identity_server() -> AsyncIterator[IdentityServer]:
    server = IdentityServer("")
    async with serve_on_loopback(_app(server)) as base_url:
        server.url = base_url
        yield server
