"""Bodies declared larger than the limit: read, thrown away, then answered 413.

Most clients send a whole body without waiting for ``100 Continue``. If the gateway answered
413 and closed while such a body was still arriving, the kernel would answer the unread bytes
with a TCP reset, and the client would see "connection reset" instead of the 413; Hypercorn
closes an HTTP/1.1 connection as soon as a response ends before its request did. So a request
whose ``Content-Length`` is over the limit is handled here, before any route runs (nothing is
parsed, authenticated or written): its body is read and dropped, up to :data:`DRAIN_LIMIT`
bytes, and then answered, so the answer arrives and the connection stays usable. A body larger
than that is answered at once: a client that sends that much gets the reset. Bodies without a
``Content-Length`` (chunked) are limited where they are read (``gateway.routes.http.read_body``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gateway.problems import problem
from sluice.media import PROBLEM_CONTENT_TYPE

__all__ = ["DRAIN_LIMIT", "BodyLimit"]

DRAIN_LIMIT = 16 * 1024 * 1024
"""Largest refused body read (and dropped) before the 413, so that its client gets it."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]
"""Quart's asgi_app is typed with Hypercorn's TypedDict scopes; plain mappings here."""


class BodyLimit:
    """ASGI middleware answering 413 problem+json to a request whose declared body is over
    ``limit`` bytes, once that body is drained (see the module docstring)."""

    def __init__(self, app: ASGIApp, limit: int, drain_limit: int = DRAIN_LIMIT) -> None:
        self._app = app
        self._limit = limit
        self._drain_limit = drain_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _content_length(scope) if scope["type"] == "http" else None
        if length is None or length <= self._limit:
            await self._app(scope, receive, send)
            return
        if length <= self._drain_limit:
            await _drain(receive, self._drain_limit)
        detail = f"the request body is larger than {self._limit} bytes"
        body = json.dumps(problem(413, detail, scope.get("path", ""))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before the app sees it
    return None


async def _drain(receive: Receive, limit: int) -> None:
    received = 0
    while received <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
