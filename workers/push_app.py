"""The push-mode HTTP server: where KafkaSource delivers an executor's input events.

One port (Knative gives a container one) with:

- ``POST /``: one CloudEvent, binary (``ce-*`` headers) or structured
  (``application/cloudevents+json``), answered as :mod:`workers.push` says: 204 when done
  (header ``Sluice-Outcome``: ``done``, ``skipped`` or ``dead-lettered``), else a short
  ``application/problem+json`` with the status. A body over ``max_body`` bytes is 413 (from its
  Content-Length before it is read, or once that many bytes of a chunked body arrived); a body
  not complete within ``body_timeout`` seconds is 408. A client that disconnects before the
  answer cancels the event's processing: KafkaSource sends it again.
- ``GET /healthz``: 200 while the event loop answers.
- ``GET /readyz``: 200 once the agents are initialised (:meth:`PushServer.attach`), 503 before
  and from the moment the server drains.
- ``GET /metrics``: the worker's metrics in the Prometheus text format.

``HEAD`` and ``OPTIONS`` work on the ``GET`` routes, ``OPTIONS`` on ``/``; another method on a
known path is 405, an unknown path 404, both as problem+json. Runs of slashes in a path count
as one (``//healthz`` is ``/healthz``), a trailing slash does not match.

It is a plain ASGI application rather than one of a web framework: push mode runs in the
application's own Python environment on Knative (:mod:`sluice.environments`), where a
framework's dependencies would refuse the application's pins (Quart needs click 8; LangStream
examples pin ``uvicorn==0.12.2``, which needs click 7).

The server listens before the agents are loaded, so liveness holds while an agent initialises or
waits for its state directory; events are refused with 503 until then. :meth:`PushServer.stop`
drains: readiness and new events get 503, the events in flight finish (their outputs
acknowledged), then the listener closes.

::

    async with PushServer(topic, port=8080) as server:
        server.attach(PushExecutor(settings, producer, chain))
        await stop.wait()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from sluice.application.model import TopicSpec
from sluice.media import JSON_CONTENT_TYPE, PROBLEM_CONTENT_TYPE
from sluice.serving import BackgroundServer
from workers.health import WorkerMetrics
from workers.push import Answer, PushExecutor
from workers.push_events import from_http

__all__ = ["PushServer"]

log = logging.getLogger("sluice.push")

_OUTCOME_HEADER: Final = b"sluice-outcome"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_EVENT_PATH: Final = "/"
_GET_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
_ALLOW: Final = {_EVENT_PATH: b"POST, OPTIONS", **dict.fromkeys(_GET_PATHS, b"GET, HEAD, OPTIONS")}
_SLASHES: Final = re.compile("/{2,}")

# The wording of the problems a client gets for its own mistakes: kept from the first version of
# this endpoint (a Quart app), as clients and logs may match them.
_NOT_FOUND: Final = (
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again."
)
_NOT_ALLOWED: Final = "The method is not allowed for the requested URL."
_TOO_LARGE: Final = "The data value transmitted exceeds the capacity limit."
_TIMEOUT: Final = (
    "The server closed the network connection because the browser didn't finish the request "
    "within the specified time."
)
_BAD_REQUEST: Final = "The browser (or proxy) sent a request that this server could not understand."
_MAX_DETAIL: Final = 800
_TITLES: Final = {400: "Malformed CloudEvent", 500: "Processing Failed", 503: "Service Unavailable"}


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Headers
    body: bytes = b""


class _Refused(Exception):
    """The request is answered with ``response`` before it is processed."""

    def __init__(self, response: _Response) -> None:
        super().__init__(response.status)
        self.response = response


class _Disconnected(Exception):
    """The client went away: nothing is answered."""


class PushServer:
    """Serves the push endpoint and the health endpoints on ``host:port`` (0 = a free port).

    Use it as ``async with``; :attr:`port` is the bound port once started.
    """

    def __init__(
        self,
        topic: TopicSpec,
        *,
        port: int = 8080,
        host: str = "0.0.0.0",
        metrics: WorkerMetrics | None = None,
        max_body: int = 1_048_576,
        drain_timeout: float = 30.0,
        body_timeout: float = 60.0,
    ) -> None:
        self._topic = topic
        self._metrics = metrics
        self._max_body = max_body
        self._drain_timeout = drain_timeout
        self._body_timeout = body_timeout
        self._executor: PushExecutor | None = None
        self._draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._server = BackgroundServer(
            self.app,
            name="push",
            logger=log,
            host=host,
            port=port,
            graceful_timeout=drain_timeout,
        )

    @property
    def port(self) -> int:
        """The port (the bound one once started)."""
        return self._server.port

    # -- lifecycle -------------------------------------------------------------------------------

    def attach(self, executor: PushExecutor) -> None:
        """The agents are initialised: accept events from now on."""
        self._executor = executor

    def unready_reason(self) -> str | None:
        """None while events are accepted, else why not."""
        if self._draining:
            return "the worker is draining"
        if self._executor is None:
            return "the agents are starting"
        if self._executor.failure is not None:
            return f"the executor stopped: {self._executor.failure}"
        return None

    async def start(self) -> None:
        """Bind and listen: connections made after this are answered."""
        await self._server.start()

    async def stop(self) -> None:
        """Drain (refuse new events, finish those in flight), then close. Idempotent."""
        self._draining = True
        if self._in_flight:
            log.info("draining %d event(s) in flight", self._in_flight)
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=self._drain_timeout)
            except TimeoutError:
                log.warning(
                    "%d event(s) still in flight after %.0fs: KafkaSource sends them again",
                    self._in_flight,
                    self._drain_timeout,
                )
        await self._server.stop()

    async def __aenter__(self) -> PushServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- HTTP ------------------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application."""
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = _route(scope["path"])
        if scope["type"] == "websocket":
            # Refused before the handshake, with the answer a GET of that path would have had.
            if path is None:
                response = _problem(404, "Not Found", _NOT_FOUND)
            elif path == _EVENT_PATH:
                response = _problem(405, "Method Not Allowed", _NOT_ALLOWED)
            else:
                response = _problem(400, "Bad Request", _BAD_REQUEST)
            await _send(send, response, prefix="websocket.http.response")
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        try:
            response = await self._dispatch(path, method, scope, receive)
        except _Disconnected:
            return
        except Exception as error:
            log.exception("the push endpoint failed")
            response = _problem(500, "Internal Server Error", f"{type(error).__name__}: {error}")
        await _send(send, response, head=method == "HEAD")

    async def _dispatch(
        self, path: str | None, method: str, scope: Scope, receive: Receive
    ) -> _Response:
        if path is None:
            return _problem(404, "Not Found", _NOT_FOUND)
        if method == "OPTIONS":
            return _Response(
                200,
                [
                    (b"allow", _ALLOW[path]),
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", b"0"),
                ],
            )
        if path == _EVENT_PATH:
            if method != "POST":
                return _problem(405, "Method Not Allowed", _NOT_ALLOWED)
            return await self._event(scope, receive)
        if method not in ("GET", "HEAD"):
            return _problem(405, "Method Not Allowed", _NOT_ALLOWED)
        if path == "/healthz":
            return _json(200, {"status": "ok"})
        if path == "/readyz":
            reason = self.unready_reason()
            if reason is None:
                return _json(200, {"status": "ready"})
            return _json(503, {"status": "not ready", "reason": reason})
        if self._metrics is None:
            return _problem(404, "Not Found", "no metrics")
        return _Response(200, *_content(CONTENT_TYPE_LATEST.encode(), self._metrics.exposition()))

    async def _event(self, scope: Scope, receive: Receive) -> _Response:
        executor = self._executor
        reason = self.unready_reason()
        if executor is None or reason is not None:
            return _problem(503, "Service Unavailable", reason or "not ready")
        self._in_flight += 1
        self._idle.clear()
        try:
            body = await self._body(scope["headers"], receive)
            item = from_http(scope["headers"], body, topic=self._topic)
            answer = await _unless_disconnected(executor.handle(item), receive)
        except _Refused as refused:
            return refused.response
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
        return _answer(answer)

    async def _body(self, headers: Sequence[tuple[bytes, bytes]], receive: Receive) -> bytes:
        """The request body, refused (413) from its Content-Length or as soon as it grows over
        ``max_body``, and (408) when not complete within ``body_timeout``."""
        declared = _content_length(headers)
        if declared is not None and declared > self._max_body:
            raise _Refused(_problem(413, "Request Entity Too Large", _TOO_LARGE))
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Disconnected
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self._max_body:
                        raise _Refused(_problem(413, "Request Entity Too Large", _TOO_LARGE))
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(_problem(408, "Request Timeout", _TIMEOUT)) from None


async def _unless_disconnected(work: Awaitable[Answer], receive: Receive) -> Answer:
    """``work``'s result, or :class:`_Disconnected` (``work`` cancelled) if the client goes away
    first: a KafkaSource that gave up on the request sends the event again, and the agents had
    better take that one than go on with this."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (watch, task):
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
    if watch.done() and not watch.cancelled():
        raise _Disconnected
    return task.result()


async def _disconnect(receive: Receive) -> None:
    """Returns when the client disconnects (the body was read: nothing else comes)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _route(path: str) -> str | None:
    """The route ``path`` is, or None."""
    if not path.startswith("/"):
        path = urlsplit(path).path  # an absolute-form request target
    path = _SLASHES.sub("/", path)
    return path if path == _EVENT_PATH or path in _GET_PATHS else None


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The declared body size; None when chunked or not declared (HTTP/2 may not)."""
    length: int | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return None
        if lowered == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return length


def _answer(answer: Answer) -> _Response:
    outcome = (_OUTCOME_HEADER, answer.outcome.encode("ascii"))
    if answer.ok:
        # No content type: no body, and no reply event for Knative.
        return _Response(answer.status, [(b"content-length", b"0"), outcome])
    problem = _problem(answer.status, _TITLES.get(answer.status, "Error"), answer.detail)
    return _Response(problem.status, [*problem.headers, outcome], problem.body)


def _problem(status: int, title: str, detail: str) -> _Response:
    """An RFC 9457 problem, short: KafkaSource keeps at most 1024 bytes of it for the DLS."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail[:_MAX_DETAIL]}
    return _Response(status, *_content(PROBLEM_CONTENT_TYPE.encode(), json.dumps(body).encode()))


def _json(status: int, body: dict[str, Any]) -> _Response:
    return _Response(status, *_content(JSON_CONTENT_TYPE.encode(), json.dumps(body).encode()))


def _content(content_type: bytes, body: bytes) -> tuple[Headers, bytes]:
    return [(b"content-type", content_type), (b"content-length", b"%d" % len(body))], body


async def _send(
    send: Send, response: _Response, *, head: bool = False, prefix: str = "http.response"
) -> None:
    """``response`` as ASGI messages; a HEAD response has the headers of the GET, no body."""
    start = {"type": f"{prefix}.start", "status": response.status, "headers": response.headers}
    await send(start)
    await send({"type": f"{prefix}.body", "body": b"" if head else response.body})
