"""A stand-in for Google's JWKS endpoint: a real HTTP server on loopback serving keys made in
the test, with a fetch counter and switches for failures and Cache-Control."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import RSAKey
from quart import Quart, Response

from tests.loopback import serve_on_loopback


@dataclass
class JwksServer:
    url: str
    keys: list[RSAKey] = field(default_factory=list)
    fetches: int = 0
    status: int = 200
    max_age: int | None = 600
    body: str | None = None
    """Served instead of the keys when set (invalid JSON, an empty key set...)."""

    def document(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.keys]}


def _app(server: JwksServer) -> Quart:
    app = Quart(__name__)

    @app.get("/certs")
    async def certs() -> Response:
        server.fetches += 1
        if server.status != 200:
            return Response("failing", status=server.status)
        headers = {}
        if server.max_age is not None:
            headers["Cache-Control"] = f"public, max-age={server.max_age}"
        body = server.body if server.body is not None else json.dumps(server.document())
        return Response(body, content_type="application/json", headers=headers)

    return app


@contextlib.asynccontextmanager
async def jwks_server() -> AsyncIterator[JwksServer]:
    server = JwksServer("")
    async with serve_on_loopback(_app(server)) as base_url:
        server.url = f"{base_url}/certs"
        yield server
