"""HTTP produce gateways: ``POST /api/gateways/produce/<tenant>/<application>/<gateway>``.

The body becomes one record, or a batch of them (all or nothing: every message is validated and
encoded before the first is handed to Kafka), written to the gateway's topic with the configured
headers plus the message's own. The answer waits for Kafka's acknowledgement of every record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from auth.provider import Identity
from gateway.errors import BadRequest, PayloadTooLarge, Unavailable
from gateway.headers import gateway_headers_for, reserved_header_keys
from gateway.messages import (
    ProduceRequest,
    ProduceResponse,
    check_message_headers,
    parse_http_body,
    produce_response,
)
from gateway.query import GatewayQuery, parse_query
from gateway.settings import GatewaySettings
from sluice.application.model import GatewaySpec
from sluice.errors import KafkaError
from sluice.events import RECORD_TYPE, UnencodableRecord, WireMessage, to_kafka
from sluice.kafka.client import Producer, SendResult
from sluice.record import Record

__all__ = [
    "GatewayCall",
    "encode_requests",
    "produce",
    "send_all",
]


@dataclass(frozen=True)
class GatewayCall:
    """Which gateway a request addresses, its URL-decoded query pairs and, once authenticated,
    the caller's identity (None for an open gateway)."""

    tenant: str
    application: str
    spec: GatewaySpec
    pairs: tuple[tuple[str, str], ...] = ()
    identity: Identity | None = None

    @property
    def principal(self) -> Mapping[str, str] | None:
        """The fields ``value-from-authentication`` reads, or None when not authenticated."""
        return None if self.identity is None else self.identity.principal

    @property
    def source(self) -> str:
        """The CloudEvent ``source`` of the records this gateway writes."""
        return f"/{self.tenant}/{self.application}/gateways/{self.spec.id}"

    def query(self, settings: GatewaySettings) -> GatewayQuery:
        return parse_query(
            self.spec,
            self.pairs,
            tenant=self.tenant,
            application=self.application,
            max_timeout=settings.max_service_timeout,
            default_timeout=settings.default_service_timeout,
        )


def encode_requests(
    requests: Iterable[ProduceRequest],
    configured: Mapping[str, str],
    reserved: Iterable[str],
    *,
    source: str,
    extra: Mapping[str, str] | None = None,
) -> list[WireMessage]:
    """The Kafka messages of ``requests``: message headers (none of them ``reserved``), then
    the ``configured`` headers, then ``extra`` ones that overwrite both."""
    reserved_keys = frozenset(reserved)
    requests = list(requests)
    messages: list[WireMessage] = []
    for index, request in enumerate(requests):
        try:
            check_message_headers(request.headers, reserved_keys)
        except BadRequest as error:
            if len(requests) == 1:
                raise
            raise BadRequest(f"message [{index}]: {error.detail}") from error
        headers = {**request.headers, **configured, **(extra or {})}
        record = Record(request.value, request.key, headers)
        try:
            messages.append(
                to_kafka(
                    record,
                    source=source,
                    type=request.event_type or RECORD_TYPE,
                    id=request.event_id,
                )
            )
        except UnencodableRecord as error:
            raise BadRequest(str(error)) from error
    return messages


_RECORD_OVERHEAD = 512
"""Bytes of a produce request that are not the record's key, value and headers (batch and
record framing, with a margin)."""


def _size(message: WireMessage) -> int:
    headers = sum(len(key.encode("utf-8")) + len(value) for key, value in message.headers)
    return len(message.key or b"") + len(message.value or b"") + headers


async def send_all(
    producer: Producer,
    topic: str,
    messages: Iterable[WireMessage],
    settings: GatewaySettings,
) -> list[SendResult]:
    """Hand every message to the producer, then wait for all the acks (503 when Kafka fails or
    does not acknowledge within ``produce_timeout``).

    Every message is checked against the producer's ``max_request_size`` first, so a record
    Kafka would refuse is a 413 for the whole batch, before anything is written.
    """
    messages = list(messages)
    limit = producer.max_request_size - _RECORD_OVERHEAD
    for index, message in enumerate(messages):
        size = _size(message)
        if size > limit:
            where = "the record" if len(messages) == 1 else f"message [{index}]"
            raise PayloadTooLarge(
                f"{where} is {size} bytes once encoded; Kafka takes records up to {limit} bytes"
            )

    async def write() -> list[SendResult]:
        acks = [await producer.enqueue_message(topic, message) for message in messages]
        return list(await asyncio.gather(*acks))

    try:
        return await asyncio.wait_for(write(), settings.produce_timeout)
    except KafkaError as error:
        raise Unavailable(
            f"Kafka did not take the message: {error}", retry_after=settings.retry_after
        ) from error
    except TimeoutError as error:
        raise Unavailable(
            f"Kafka did not acknowledge the message within {settings.produce_timeout:g} s",
            retry_after=settings.retry_after,
        ) from error


async def produce(
    producer: Producer,
    call: GatewayCall,
    content_type: str | None,
    body: bytes,
    settings: GatewaySettings,
) -> tuple[ProduceResponse, int]:
    """Serve one HTTP produce request: the answer and the number of records written. Every
    failure is a :class:`~gateway.errors.GatewayError`."""
    spec = call.spec
    query = call.query(settings)
    if spec.topic is None:
        raise Unavailable(f"gateway {spec.id} has no topic")
    configured = gateway_headers_for(spec, query.parameters, call.principal)
    requests = parse_http_body(content_type, body)
    messages = encode_requests(requests, configured, reserved_header_keys(spec), source=call.source)
    await send_all(producer, spec.topic, messages, settings)
    return produce_response("OK"), len(messages)
