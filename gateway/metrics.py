"""The gateway's Prometheus metrics (``GET /metrics``).

Counters are plain numbers kept by the runtime while it serves; gauges (open sockets, Kafka
consumers per topic, pending service requests) are read from the live objects at scrape time, so
they cannot drift. Each app has its own registry: two gateways in one process do not mix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.app import GatewayRuntime

__all__ = ["METRICS_CONTENT_TYPE", "GatewayMetrics", "metrics_registry", "render"]

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class GatewayMetrics:
    """What the gateway counts as it serves."""

    def __init__(self) -> None:
        self.http_requests: Counter[tuple[str, int]] = Counter()
        """By (endpoint, status)."""
        self.websockets_open: Counter[str] = Counter()
        """By gateway type (produce, consume, chat)."""
        self.websocket_closes: Counter[tuple[str, int]] = Counter()
        """By (gateway type, close code)."""
        self.records_produced = 0
        """Records acknowledged by Kafka for clients (HTTP and WebSocket)."""

    def count_produced(self, records: int) -> None:
        self.records_produced += records


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


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``."""
    return generate_latest(registry)
