"""A stand-in for GitHub's REST API: a real HTTP server on loopback.

It serves ``GET /user`` and ``POST /applications/<client_id>/token`` at the root (apiUrl
``http://host:port``) and under ``/api/v3`` (a GitHub Enterprise apiUrl). ``users`` maps tokens
to ``/user`` bodies; ``mode`` makes it misbehave (rate limits, 500, odd bodies, a revoked token);
every call's path is recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from quart import Quart, Response, jsonify, request

from tests.loopback import serve_on_loopback

CLIENT_ID = "Iv1.client"
OCTOCAT = {"login": "octocat", "id": 583231, "name": "The Octocat", "email": None}


@dataclass
class FakeGithub:
    url: str = ""
    users: dict[str, dict[str, Any]] = field(default_factory=lambda: {"good-token": OCTOCAT})
    calls: list[str] = field(default_factory=list)
    mode: str = "normal"
    issued_to: str = CLIENT_ID
    checked: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)


def _user(fake: FakeGithub) -> Any:
    fake.calls.append(request.path)
    if fake.mode == "ratelimit":
        return Response("{}", status=403, headers={"x-ratelimit-remaining": "0"})
    if fake.mode == "429":
        return Response("{}", status=429, headers={"retry-after": "7"})
    if fake.mode == "500":
        return Response("oops", status=500)
    if fake.mode == "garbage":
        return Response("<html>hi</html>", status=200, content_type="text/html")
    if fake.mode == "message":
        return jsonify({"message": "hello"})
    if fake.mode == "no-id":
        return jsonify({"login": "someone"})
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    found = fake.users.get(token)
    if found is None or token in fake.revoked:
        return Response('{"message": "Bad credentials"}', status=401)
    response = jsonify(found)
    response.headers["X-OAuth-Client-Id"] = fake.issued_to
    return response


async def _check(fake: FakeGithub, client_id: str) -> Any:
    body = await request.get_json()
    fake.calls.append(request.path)
    fake.checked.append(client_id)
    if request.authorization is None or request.authorization.username != client_id:
        return Response("{}", status=401)
    token = body.get("access_token")
    if fake.mode == "unprocessable":
        return Response("{}", status=422)
    if token in fake.users and token not in fake.revoked and fake.mode != "revoked":
        return jsonify({"id": 1})
    return Response("{}", status=404)


def _app(fake: FakeGithub) -> Quart:
    app = Quart(__name__)

    async def user() -> Any:
        return _user(fake)

    async def check(client_id: str) -> Any:
        return await _check(fake, client_id)

    for prefix in ("", "/api/v3"):
        app.add_url_rule(f"{prefix}/user", f"user{prefix}", user, methods=["GET"])
        app.add_url_rule(
            f"{prefix}/applications/<client_id>/token", f"check{prefix}", check, methods=["POST"]
        )
    return app


@contextlib.asynccontextmanager
async def github_server() -> AsyncIterator[FakeGithub]:
    fake = FakeGithub()
    async with serve_on_loopback(_app(fake)) as url:
        fake.url = url
        yield fake
