"""The push-mode HTTP server: where KafkaSource delivers an executor's input events.

One port (Knative gives a container one) with:

- ``POST /``: one CloudEvent, binary (``ce-*`` headers) or structured
  (``application/cloudevents+json``), answered as :mod:`workers.push` says: 204 when done
  (header ``Sluice-Outcome``: ``done``, ``skipped`` or ``dead-lettered``), else a short
  ``application/problem+json`` with the status. A body over ``max_body`` bytes is 413.
- ``GET /healthz``: 200 while the event loop answers.
- ``GET /readyz``: 200 once the agents are initialised (:meth:`PushServer.attach`), 503 before
  and from the moment the server drains.
- ``GET /metrics``: the worker's metrics in the Prometheus text format.

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
import json
import logging
from types import TracebackType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from sluice.application.model import TopicSpec
from workers.health import WorkerMetrics
from workers.push import Answer, PushExecutor
from workers.push_events import from_http
from workers.service import BackgroundServer

__all__ = ["PROBLEM_CONTENT_TYPE", "PushServer"]

log = logging.getLogger("sluice.push")

PROBLEM_CONTENT_TYPE = "application/problem+json"
_OUTCOME_HEADER = "Sluice-Outcome"


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
    ) -> None:
        self._topic = topic
        self._metrics = metrics
        self._max_body = max_body
        self._drain_timeout = drain_timeout
        self._executor: PushExecutor | None = None
        self._draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.app = self._make_app()
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

    def _make_app(self) -> Quart:
        app = Quart("sluice.push")
        app.config["MAX_CONTENT_LENGTH"] = self._max_body
        app.add_url_rule("/", "event", self._event, methods=["POST"])
        app.add_url_rule("/healthz", "healthz", self._healthz, methods=["GET"])
        app.add_url_rule("/readyz", "readyz", self._readyz, methods=["GET"])
        app.add_url_rule("/metrics", "metrics", self._metrics_page, methods=["GET"])
        app.register_error_handler(HTTPException, self._http_error)
        app.register_error_handler(Exception, self._unexpected)
        return app

    async def _event(self) -> Response:
        executor = self._executor
        reason = self.unready_reason()
        if executor is None or reason is not None:
            return _problem(503, "Service Unavailable", reason or "not ready")
        self._in_flight += 1
        self._idle.clear()
        try:
            body = await request.get_data(cache=False, as_text=False)
            assert isinstance(body, bytes)  # as_text=False
            item = from_http(request.scope["headers"], body, topic=self._topic)
            answer = await executor.handle(item)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
        return _answer(answer)

    async def _healthz(self) -> Response:
        return _json(200, {"status": "ok"})

    async def _readyz(self) -> Response:
        reason = self.unready_reason()
        if reason is None:
            return _json(200, {"status": "ready"})
        return _json(503, {"status": "not ready", "reason": reason})

    async def _metrics_page(self) -> Response:
        if self._metrics is None:
            return _problem(404, "Not Found", "no metrics")
        return Response(self._metrics.exposition(), 200, content_type=CONTENT_TYPE_LATEST)

    async def _http_error(self, error: HTTPException) -> Response:
        status = error.code or 500
        return _problem(status, error.name, error.description or "")

    async def _unexpected(self, error: Exception) -> Response:
        log.exception("the push endpoint failed", exc_info=error)
        return _problem(500, "Internal Server Error", f"{type(error).__name__}: {error}")


def _answer(answer: Answer) -> Response:
    if answer.ok:
        response = Response(b"", answer.status)
        del response.headers["content-type"]  # no body, and no reply event for Knative
        response.headers[_OUTCOME_HEADER] = answer.outcome
        return response
    titles = {400: "Malformed CloudEvent", 500: "Processing Failed", 503: "Service Unavailable"}
    response = _problem(answer.status, titles.get(answer.status, "Error"), answer.detail)
    response.headers[_OUTCOME_HEADER] = answer.outcome
    return response


_MAX_DETAIL = 800


def _problem(status: int, title: str, detail: str) -> Response:
    """An RFC 9457 problem, short: KafkaSource keeps at most 1024 bytes of it for the DLS."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail[:_MAX_DETAIL]}
    return Response(json.dumps(body), status, content_type=PROBLEM_CONTENT_TYPE)


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")
