"""The gateway's limits and timeouts, read once at the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GatewaySettings"]


@dataclass(frozen=True)
class GatewaySettings:
    """Limits of one gateway process (spec/gateway.md, "Errors and limits")."""

    max_body_bytes: int = 1024 * 1024
    """Largest HTTP request body accepted; above it the answer is 413."""
    default_service_timeout: float = 30.0
    """Seconds a service gateway waits for a reply without ``option:timeout``."""
    max_service_timeout: float = 300.0
    """Largest ``option:timeout`` a client may ask for."""
    max_pending: int = 10_000
    """Service requests waiting for a reply per output topic; above it the answer is 503."""
    produce_timeout: float = 30.0
    """Seconds to wait for Kafka's acknowledgement before answering 503."""
    retry_after: int = 1
    """The ``Retry-After`` seconds of a 503."""

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        if not 0 < self.default_service_timeout <= self.max_service_timeout:
            raise ValueError(
                "default_service_timeout must be greater than 0 and at most max_service_timeout"
            )
        if self.max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if self.produce_timeout <= 0:
            raise ValueError("produce_timeout must be greater than 0")
