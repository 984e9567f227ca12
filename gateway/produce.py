"""HTTP produce gateways: ``POST /api/gateways/produce/<tenant>/<application>/<gateway>``.

The body becomes one record, or a batch of them (all or nothing: every message is validated and
encoded before the first is handed to Kafka), written to the gateway's topic with the configured
headers plus the message's own. The answer waits for Kafka's acknowledgement of every record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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
from sluice.kafka.client import Producer, RecordTooLarge, SendResult
from sluice.kafka.producer import RECORD_OVERHEAD, encoded_size
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
    _queries: dict[tuple[float, float], GatewayQuery] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Parsed queries by (max, default) timeout: a request's query is validated when it is
    authenticated and read again when it is served; ``dataclasses.replace`` (adding the
    identity) shares this memo, so the second read is a lookup."""

    @property
    def principal(self) -> Mapping[str, str] | None:
        """The fields ``value-from-authentication`` reads, or None when not authenticated."""
        return None if self.identity is None else self.identity.principal

    @property
    def source(self) -> str:
        """The CloudEvent ``source`` of the records this gateway writes."""
        return f"/{self.tenant}/{self.application}/gateways/{self.spec.id}"

    def query(self, settings: GatewaySettings) -> GatewayQuery:
        """The validated query (:func:`~gateway.query.parse_query`); BadRequest when invalid."""
        limits = (settings.max_service_timeout, settings.default_service_timeout)
        query = self._queries.get(limits)
        if query is None:
            query = parse_query(
                self.spec,
                self.pairs,
                tenant=self.tenant,
                application=self.application,
                max_timeout=limits[0],
                default_timeout=limits[1],
            )
            self._queries[limits] = query
        return query


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
    reserved_keys = reserved if isinstance(reserved, frozenset) else frozenset(reserved)
    requests = requests if isinstance(requests, list) else list(requests)
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


_RESERVED: dict[int, tuple[GatewaySpec, frozenset[str]]] = {}


def _reserved(spec: GatewaySpec) -> frozenset[str]:
    """:func:`reserved_header_keys` once per gateway spec (specs live as long as the app)."""
    entry = _RESERVED.get(id(spec))
    if entry is None or entry[0] is not spec:
        entry = (spec, reserved_header_keys(spec))
        _RESERVED[id(spec)] = entry
    return entry[1]


async def send_all(
    producer: Producer,
    topic: str,
    messages: Iterable[WireMessage],
    settings: GatewaySettings,
) -> list[SendResult]:
    """Hand every message to the producer, then wait for all the acks (503 when Kafka fails or
    does not acknowledge within ``produce_timeout``).

    Every message is checked against the topic's size limit first (the producer's
    ``max_request_size``, or the topic's ``max.message.bytes`` when smaller), so a record Kafka
    would refuse is a 413 for the whole batch, before anything is written. A record the broker
    refuses for its size all the same is a 413 too, unless it fits the topic's limit (then it
    was its batch: 503).
    """
    messages = list(messages)
    limit = producer.max_request_size - RECORD_OVERHEAD
    try:
        # asyncio.timeout, not wait_for: no task per request (it was ~5% of a produce's CPU).
        async with asyncio.timeout(settings.produce_timeout):
            limit = await producer.record_limit(topic) - RECORD_OVERHEAD
            for index, message in enumerate(messages):
                size = encoded_size(message)
                if size > limit:
                    where = "the record" if len(messages) == 1 else f"message [{index}]"
                    raise PayloadTooLarge(
                        f"{where} is {size} bytes once encoded; topic {topic} takes records "
                        f"up to {limit} bytes"
                    )
            acks = [await producer.enqueue_message(topic, message) for message in messages]
            if len(acks) == 1:
                return [await acks[0]]
            return list(await asyncio.gather(*acks))
    except RecordTooLarge as error:
        if limit < producer.max_request_size - RECORD_OVERHEAD:
            # The record fits the topic's known limit, so the batch it shared with other
            # records did not: worth a retry, in another batch.
            raise Unavailable(
                f"Kafka refused the batch holding the record for its size: {error}",
                retry_after=settings.retry_after,
            ) from error
        # The topic's limit is unknown and below the producer's: a retry would fail the same
        # way, so no Retry-After.
        raise PayloadTooLarge(f"Kafka refused the record for its size: {error}") from error
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
    messages = encode_requests(requests, configured, _reserved(spec), source=call.source)
    await send_all(producer, spec.topic, messages, settings)
    return produce_response("OK"), len(messages)
