"""The gateway's counters: plain numbers the runtime keeps while it serves.

``GET /metrics`` (:mod:`gateway.routes.metrics`) exposes them with gauges read from the live
objects at scrape time.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["GatewayMetrics"]


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
