"""The gateway: HTTP and WebSocket requests to records on Kafka and back (docs/gateway.md)."""
