"""The worker's health port: liveness, readiness and Prometheus metrics over HTTP.

- ``GET /healthz``: 200 while the process's event loop answers (a stalled loop times out).
- ``GET /readyz``: 200 with ``{"status": "ready"}`` when the readiness check has no objection,
  else 503 with ``{"status": "not ready", "reason": ...}``; both with the fields of the
  ``fields`` callable added (a python-service worker: ``"service_port"`` once ready, the port
  its service accepts connections on).
- ``GET /metrics``: the worker's metrics in the Prometheus text format.

::

    metrics = WorkerMetrics(executor="step1")
    async with HealthServer(port=0, readiness=host.unready_reason, metrics=metrics) as server:
        print(server.port)
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from types import TracebackType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from sluice.media import JSON_CONTENT_TYPE
from sluice.serving import BackgroundServer

log = logging.getLogger("sluice.health")

ReadinessCheck = Callable[[], str | None]
"""Returns None when the worker is ready, else a short reason why not."""

ReadinessFields = Callable[[], Mapping[str, object]]
"""More fields for the ``/readyz`` body (JSON values); ``status`` and ``reason`` stay ours."""

Observer = Callable[[str, float], None]
"""What an executor tells the metrics, as ``(kind, amount)``: ``in``, ``out``, ``error``,
``undecodable`` and ``dead_letter`` counts, and ``seconds`` a record took."""

_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def always_ready() -> str | None:
    return None


def no_fields() -> Mapping[str, object]:
    return {}


class WorkerMetrics:
    """Metrics of one executor, in a registry of their own rather than the process-global one.

    Every series carries the ``executor`` label. ``kind`` of an error is what the error policy
    did with it: ``retry``, ``skip``, ``dead-letter``, ``fail`` or ``undecodable``.
    """

    def __init__(self, executor: str) -> None:
        self.executor = executor
        self.registry = CollectorRegistry()
        registry = self.registry
        self._records_in = Counter(
            "sluice_worker_records_in", "Input records received", ["executor"], registry=registry
        ).labels(executor)
        self._records_out = Counter(
            "sluice_worker_records_out",
            "Output records acknowledged by Kafka",
            ["executor"],
            registry=registry,
        ).labels(executor)
        self._errors = Counter(
            "sluice_worker_errors",
            "Errors raised by agents, by agent and by what the error policy did",
            ["executor", "agent", "kind"],
            registry=registry,
        )
        self._dead_letters = Counter(
            "sluice_worker_dead_letters",
            "Records written to a dead-letter topic",
            ["executor"],
            registry=registry,
        ).labels(executor)
        self._processing = Histogram(
            "sluice_worker_processing_seconds",
            "Time from receiving an input record to having all its outputs acknowledged",
            ["executor"],
            buckets=_BUCKETS,
            registry=registry,
        ).labels(executor)
        self._lag = Gauge(
            "sluice_worker_consumer_lag",
            "Records in the partition after the consumer's position",
            ["executor", "topic", "partition"],
            registry=registry,
        )

    def received(self, count: int = 1) -> None:
        self._records_in.inc(count)

    def sent(self, count: int = 1) -> None:
        self._records_out.inc(count)

    def error(self, agent: str, kind: str) -> None:
        self._errors.labels(self.executor, agent, kind).inc()

    def dead_lettered(self, count: int = 1) -> None:
        self._dead_letters.inc(count)

    def processed(self, seconds: float) -> None:
        self._processing.observe(seconds)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self._lag.labels(self.executor, topic, str(partition)).set(lag)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the lag of a partition this worker no longer reads (after a rebalance)."""
        with contextlib.suppress(KeyError):
            self._lag.remove(self.executor, topic, str(partition))

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


class HealthServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` on ``host:port`` (0 = a free port).

    Use it as ``async with``; :attr:`port` is the bound port once started.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        readiness: ReadinessCheck = always_ready,
        metrics: WorkerMetrics | None = None,
        fields: ReadinessFields = no_fields,
    ) -> None:
        self._readiness = readiness
        self._fields = fields
        self._metrics = metrics
        self._server = BackgroundServer(self._app, name="health", logger=log, host=host, port=port)

    @property
    def port(self) -> int:
        """The port (the bound one once started)."""
        return self._server.port

    async def start(self) -> None:
        """Bind and listen: connections made after this are answered."""
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        status, content_type, body = self._answer(scope["path"])
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        head = scope["method"] == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else body})

    def _answer(self, path: str) -> tuple[int, bytes, bytes]:
        if path == "/healthz":
            return _json(200, {"status": "ok"})
        if path == "/readyz":
            try:
                reason = self._readiness()
            except Exception as error:
                log.exception("readiness check failed")
                reason = f"readiness check failed: {error!r}"
            try:
                fields = {k: v for k, v in self._fields().items() if k not in ("status", "reason")}
            except Exception:
                log.exception("readiness fields failed")
                fields = {}
            if reason is None:
                return _json(200, {"status": "ready", **fields})
            return _json(503, {"status": "not ready", "reason": reason, **fields})
        if path == "/metrics" and self._metrics is not None:
            return 200, CONTENT_TYPE_LATEST.encode("ascii"), self._metrics.exposition()
        return _json(404, {"status": "not found", "path": path})


def _json(status: int, body: Mapping[str, object]) -> tuple[int, bytes, bytes]:
    return status, JSON_CONTENT_TYPE.encode(), json.dumps(body).encode("utf-8")
