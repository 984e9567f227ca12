"""Metrics and health: ``GET /metrics`` (Prometheus), ``GET /healthz`` and ``GET /readyz``.

Counters are plain numbers kept by the runtime while it serves (:mod:`gateway.metrics`); gauges
(open sockets, Kafka consumers per topic, pending service requests) are read from the live
objects at scrape time, so they cannot drift. Each app has its own registry: two gateways in one
process do not mix. ``/readyz`` is 503 before serving, during shutdown and while Kafka is
unreachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from quart import Quart, Response, request

from gateway.errors import Unavailable
from gateway.routes.http import json_response
from gateway.runtime import GatewayRuntime

__all__ = ["METRICS_CONTENT_TYPE", "metrics_registry", "register"]

METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class _Collector(Collector):
    def __init__(self, runtime: GatewayRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        runtime = self._runtime
        counts = runtime.metrics
        ready = GaugeMetricFamily("sluice_gateway_ready", "1 when the gateway serves requests")
        ready.add_metric([], 1.0 if runtime.ready else 0.0)
        yield ready
        requests = CounterMetricFamily(
            "sluice_gateway_http_requests",
            "HTTP requests answered, by endpoint and status",
            labels=["endpoint", "status"],
        )
        for (endpoint, status), count in sorted(counts.http_requests.items()):
            requests.add_metric([endpoint, str(status)], count)
        yield requests
        sockets = GaugeMetricFamily(
            "sluice_gateway_websockets_open", "Open WebSockets, by gateway type", labels=["type"]
        )
        for kind in ("produce", "consume", "chat"):
            sockets.add_metric([kind], counts.websockets_open[kind])
        yield sockets
        closes = CounterMetricFamily(
            "sluice_gateway_websocket_closes",
            "WebSockets closed by the gateway, by gateway type and close code",
            labels=["type", "code"],
        )
        for (kind, code), count in sorted(counts.websocket_closes.items()):
            closes.add_metric([kind, str(code)], count)
        yield closes
        produced = CounterMetricFamily(
            "sluice_gateway_records_produced", "Records written to Kafka for clients"
        )
        produced.add_metric([], counts.records_produced)
        yield produced
        producer = runtime.producer
        failures = CounterMetricFamily(
            "sluice_gateway_produce_failures",
            "Records Kafka did not take, by reason (the Kafka client's error)",
            labels=["reason"],
        )
        for reason, count in sorted(producer.failures.items()):
            failures.add_metric([reason], count)
        yield failures
        replaced = CounterMetricFamily(
            "sluice_gateway_producer_replacements",
            "Times a failed batch made the gateway start a fresh Kafka producer",
        )
        replaced.add_metric([], producer.replacements)
        yield replaced
        reachable = GaugeMetricFamily(
            "sluice_gateway_kafka_reachable", "1 while a Kafka broker accepts connections"
        )
        reachable.add_metric([], 1.0 if producer.reachable else 0.0)
        yield reachable
        yield from self._kafka()

    def _kafka(self) -> Iterator[Metric]:
        runtime = self._runtime
        consumers = GaugeMetricFamily(
            "sluice_gateway_kafka_consumers",
            "Kafka consumers of the gateway, by topic and role (fanout, catch-up, replies)",
            labels=["topic", "role"],
        )
        subscriptions = GaugeMetricFamily(
            "sluice_gateway_subscriptions",
            "Consume and chat subscriptions (sockets and streams), by topic",
            labels=["topic"],
        )
        for topic, fanout in sorted(runtime.fanouts.fanouts.items()):
            consumers.add_metric([topic, "fanout"], 0 if fanout.closed else 1)
            consumers.add_metric([topic, "catch-up"], fanout.catchup_count)
            subscriptions.add_metric([topic], fanout.subscriber_count)
        pending = GaugeMetricFamily(
            "sluice_gateway_service_pending",
            "Service requests waiting for their reply, by output topic",
            labels=["topic"],
        )
        late = CounterMetricFamily(
            "sluice_gateway_service_late_replies",
            "Replies that came after their request gave up, by output topic",
            labels=["topic"],
        )
        for topic, router in sorted(runtime.routers.items()):
            consumers.add_metric([topic, "replies"], 1)
            pending.add_metric([topic], router.pending_count)
            late.add_metric([topic], router.late_replies)
        yield consumers
        yield subscriptions
        yield pending
        yield late


def metrics_registry(runtime: GatewayRuntime) -> CollectorRegistry:
    """A registry holding the metrics of ``runtime`` only."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(runtime))
    return registry


def register(app: Quart, runtime: GatewayRuntime) -> None:
    """Add ``/metrics``, ``/healthz`` and ``/readyz`` to ``app``, and count its answers."""
    registry = metrics_registry(runtime)

    @app.after_request
    async def count(response: Response) -> Response:
        endpoint = request.endpoint or "unknown"
        runtime.metrics.http_requests[(endpoint, response.status_code)] += 1
        return response

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), content_type=METRICS_CONTENT_TYPE)

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "OK"})

    @app.get("/readyz")
    async def readyz() -> Response:
        if not runtime.ready:
            raise Unavailable("the gateway is not ready", retry_after=runtime.settings.retry_after)
        if not runtime.producer.reachable:
            # Not ready, not dead: the producer reconnects by itself, so only traffic stops.
            raise Unavailable(
                f"Kafka at {runtime.kafka.bootstrap_servers} is unreachable",
                retry_after=runtime.settings.retry_after,
            )
        return json_response({"status": "OK"})
