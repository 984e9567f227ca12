"""HTTP produce gateways: ``POST /api/gateways/produce/<tenant>/<application>/<gateway>``.

The body becomes one record, or a batch of them (all or nothing: every message is validated and
encoded before the first is handed to Kafka), written to the gateway's topic with the configured
headers plus the message's own. The answer waits for Kafka's acknowledgement of every record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from gateway.call import GatewayCall
from gateway.errors import BadRequest, GatewayError, PayloadTooLarge, Unavailable
from gateway.headers import gateway_headers_for, reserved_header_keys
from gateway.idempotency import (
    IDEMPOTENCY_HEADER,
    MAX_KEY_LENGTH,
    IdempotencyKeys,
    fingerprint,
)
from gateway.messages import (
    ProduceRequest,
    ProduceResponse,
    check_message_headers,
    media_type,
    parse_http_body,
    produce_response,
)
from gateway.settings import GatewaySettings
from sluice.application.model import GatewaySpec
from sluice.errors import KafkaError
from sluice.events import RECORD_TYPE, UnencodableRecord, WireMessage, to_kafka
from sluice.kafka import Producer, RecordTooLarge, SendResult
from sluice.kafka.producer import RECORD_OVERHEAD, encoded_size
from sluice.media import CLOUDEVENTS_CONTENT_TYPE
from sluice.record import Record

__all__ = [
    "encode_requests",
    "produce",
    "send_all",
]


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
    deadline = asyncio.get_running_loop().time() + settings.produce_timeout
    acks, limit = await _hand_over(producer, topic, list(messages), settings, deadline)
    return await _acknowledged(acks, producer, limit, settings, deadline)


async def _hand_over(
    producer: Producer,
    topic: str,
    messages: list[WireMessage],
    settings: GatewaySettings,
    deadline: float,
) -> tuple[asyncio.Future[list[SendResult]], int]:
    """Check the sizes and enqueue ``messages``: the future of their acknowledgements, and the
    topic's record limit as known then."""
    limit = producer.max_request_size - RECORD_OVERHEAD
    try:
        # asyncio.timeout, not wait_for: no task per request (it was ~5% of a produce's CPU).
        async with asyncio.timeout_at(deadline):
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
    except (KafkaError, TimeoutError) as error:
        raise _gateway_error(error, producer, limit, settings) from error
    if len(acks) == 1:
        one: asyncio.Future[list[SendResult]] = asyncio.get_running_loop().create_future()
        acks[0].add_done_callback(lambda done: _as_list(done, one))
        together = one
    else:
        together = asyncio.gather(*acks)
    # Failing after the request's deadline, nobody may await it: not an unretrieved exception.
    together.add_done_callback(_retrieve)
    return together, limit


def _retrieve(done: asyncio.Future[list[SendResult]]) -> None:
    if not done.cancelled():
        done.exception()


def _as_list(done: asyncio.Future[SendResult], target: asyncio.Future[list[SendResult]]) -> None:
    if target.done():
        return
    if done.cancelled():
        target.cancel()
    elif (error := done.exception()) is not None:
        target.set_exception(error)
    else:
        target.set_result([done.result()])


async def _acknowledged(
    acks: asyncio.Future[list[SendResult]],
    producer: Producer,
    limit: int,
    settings: GatewaySettings,
    deadline: float,
) -> list[SendResult]:
    """The acknowledgements by ``deadline``; a gateway error otherwise. ``acks`` is shielded:
    the records may still be acknowledged after this request's deadline."""
    try:
        async with asyncio.timeout_at(deadline):
            return await asyncio.shield(acks)
    except GatewayError:
        raise
    except (KafkaError, TimeoutError) as error:
        raise _gateway_error(error, producer, limit, settings) from error


def _gateway_error(
    error: KafkaError | TimeoutError,
    producer: Producer,
    limit: int,
    settings: GatewaySettings,
) -> GatewayError:
    if isinstance(error, RecordTooLarge):
        if limit < producer.max_request_size - RECORD_OVERHEAD:
            # The record fits the topic's known limit, so the batch it shared with other
            # records did not: worth a retry, in another batch.
            return Unavailable(
                f"Kafka refused the batch holding the record for its size: {error}",
                retry_after=settings.retry_after,
            )
        # The topic's limit is unknown and below the producer's: a retry would fail the same
        # way, so no Retry-After.
        return PayloadTooLarge(f"Kafka refused the record for its size: {error}")
    if isinstance(error, KafkaError):
        return Unavailable(
            f"Kafka did not take the message: {error}", retry_after=settings.retry_after
        )
    return Unavailable(
        f"Kafka did not acknowledge the message within {settings.produce_timeout:g} s",
        retry_after=settings.retry_after,
    )


async def produce(
    producer: Producer,
    call: GatewayCall,
    content_type: str | None,
    body: bytes,
    settings: GatewaySettings,
    *,
    idempotency_key: str | None = None,
    keys: IdempotencyKeys[list[SendResult]] | None = None,
) -> tuple[ProduceResponse, int]:
    """Serve one HTTP produce request: the answer and the number of records written. Every
    failure is a :class:`~gateway.errors.GatewayError`.

    With ``keys``, a request with an idempotency key (the ``idempotency_key`` header's value, or
    the source and id of a structured CloudEvent) is written once: a retry of it answers with
    the first one's outcome and writes nothing (see :mod:`gateway.idempotency`).
    """
    spec = call.spec
    query = call.query(settings)
    if spec.topic is None:
        raise Unavailable(f"gateway {spec.id} has no topic")
    configured = gateway_headers_for(spec, query.parameters, call.principal)
    requests = parse_http_body(content_type, body)
    key = _idempotency_key(idempotency_key, content_type, requests)
    messages = encode_requests(requests, configured, _reserved(spec), source=call.source)
    if keys is None or key is None:
        await send_all(producer, spec.topic, messages, settings)
        return produce_response("OK"), len(messages)
    topic = spec.topic
    deadline = asyncio.get_running_loop().time() + settings.produce_timeout
    limit = producer.max_request_size - RECORD_OVERHEAD

    async def write() -> asyncio.Future[list[SendResult]]:
        nonlocal limit
        acks, limit = await _hand_over(producer, topic, messages, settings, deadline)
        return acks

    async def wait(acks: asyncio.Future[list[SendResult]]) -> list[SendResult]:
        return await _acknowledged(acks, producer, limit, settings, deadline)

    caller = () if call.principal is None else tuple(sorted(call.principal.items()))
    scoped = (call.tenant, call.application, spec.id, caller, key)
    digest = fingerprint(media_type(content_type), body)
    wrote = await keys.once(scoped, digest, write, wait)
    return produce_response("OK"), len(messages) if wrote else 0


def _idempotency_key(
    header: str | None, content_type: str | None, requests: list[ProduceRequest]
) -> tuple[str, ...] | None:
    """The request's idempotency key: the header, else a structured CloudEvent's source and id
    (which identify an event, by the CloudEvents spec)."""
    if header is not None:
        key = header.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            raise BadRequest(
                f"the {IDEMPOTENCY_HEADER} header must be 1 to {MAX_KEY_LENGTH} printable "
                "ASCII characters"
            )
        return ("header", key)
    if media_type(content_type) == CLOUDEVENTS_CONTENT_TYPE and len(requests) == 1:
        request = requests[0]
        if request.event_id is not None and request.event_source is not None:
            return ("cloudevent", request.event_source, request.event_id)
    return None
