"""WebSocket gateways: ``/v1/produce``, ``/v1/consume`` and ``/v1/chat`` (docs/gateway.md).

Everything that can fail is checked before the upgrade is accepted, so a bad request is an HTTP
answer (problem+json) with its status, not a closed socket. Consume and chat sockets subscribe
to the shared topic fanout before accepting: nothing written after the handshake is missed.

The checks before accept: the gateway exists, the query, the browser Origin (403 when not
allowed), the credentials (query, ``Authorization`` header or the ``bearer, <token>`` subprotocol
pair; 401 when rejected). A client that offered the ``bearer`` subprotocol gets ``bearer`` back
(browsers require an offered protocol to be chosen); the token itself is never echoed. With an
``events-topic``, ``ClientConnected`` is written before accept and ``ClientDisconnected`` after
the socket ends.

After accept, one task reads client frames (produce and chat: one record and one response frame
each; consume: frames are ignored) and one pushes the subscription's records. The first to end
closes the socket: 1003 for a binary frame, 1009 for a message above ``max_message_bytes``, 1008
for a client over the message rate, one that reads too slowly or whose credentials expired, 1011
when reading Kafka failed, 1001 when the gateway shuts down. Hypercorn sends the pings
(``gateway.serving.hypercorn_config``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from quart import Quart, Response, websocket

from gateway.call import GatewayCall
from gateway.client_events import ClientEventType, client_event, send_client_event
from gateway.errors import BadRequest, GatewayError, PayloadTooLarge, Unavailable
from gateway.fanout import FanoutClosed, Position, SlowConsumer, Subscription
from gateway.headers import gateway_headers_for, header_filter, reserved_header_keys
from gateway.limits import TokenBucket
from gateway.messages import (
    ProduceResponse,
    decode_offset,
    parse_produce_request,
    produce_response,
    push_frame,
)
from gateway.origins import check_origin
from gateway.problems import problem_for
from gateway.produce import encode_requests, send_all
from gateway.runtime import GatewayRuntime
from sluice.errors import KafkaError
from sluice.media import PROBLEM_CONTENT_TYPE
from sluice.protocol import BEARER_SUBPROTOCOL, GatewayKind, websocket_route

__all__ = [
    "CLOSE_BINARY",
    "CLOSE_INTERNAL",
    "CLOSE_POLICY",
    "CLOSE_SHUTDOWN",
    "CLOSE_TOO_BIG",
    "register",
]

logger = logging.getLogger(__name__)

CLOSE_SHUTDOWN: Final = 1001
CLOSE_BINARY: Final = 1003
CLOSE_POLICY: Final = 1008
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL: Final = 1011

_KINDS: Final[tuple[GatewayKind, ...]] = ("produce", "consume", "chat")


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


@dataclass
class _Socket:
    """A validated WebSocket request: where its frames go and what it is pushed."""

    call: GatewayCall
    produce_topic: str | None
    configured: dict[str, str]
    subscription: Subscription | None
    parameters: dict[str, str]
    options: dict[str, str]
    subprotocol: str | None


def _position(value: str) -> Position:
    if value == "latest":
        return "latest"
    if value == "earliest":
        return "earliest"
    return decode_offset(value)


async def _open(
    runtime: GatewayRuntime, kind: str, tenant: str, application: str, gateway: str
) -> _Socket:
    """Validate the upgrade request and, for consume and chat, subscribe; GatewayError when the
    request is refused."""
    call = runtime.call(kind, tenant, application, gateway, list(websocket.args.items(multi=True)))
    call.query(runtime.settings)  # a bad query is 400 before the Origin is judged
    check_origin(websocket.headers.get("Origin"), runtime.settings.allowed_origins)
    call = await runtime.authenticate(
        call,
        client=runtime.client_of(websocket.remote_addr, websocket.headers),
        authorization=websocket.headers.get("Authorization"),
        subprotocols=websocket.requested_subprotocols,
    )
    spec = call.spec
    query = call.query(runtime.settings)
    produce_topic: str | None = None
    consume_topic: str | None = None
    if kind == "produce":
        produce_topic = spec.topic
    elif kind == "consume":
        consume_topic = spec.topic
    elif spec.chat is not None:
        produce_topic, consume_topic = spec.chat.questions_topic, spec.chat.answers_topic
    if (kind != "consume" and produce_topic is None) or (kind != "produce" and not consume_topic):
        raise Unavailable(f"gateway {spec.id} has no topic")
    configured = {}
    if produce_topic is not None:
        configured = gateway_headers_for(spec, query.parameters, call.principal)
    subscription = None
    if consume_topic is not None:
        wanted = header_filter(spec, query.parameters, call.principal)
        fanout = await runtime.fanout(
            runtime.apps[(call.tenant, call.application)].topic_spec(consume_topic)
        )
        try:
            subscription = await fanout.subscribe(
                # No filter: the fan-out skips the per-record call for this socket.
                (lambda consumed: wanted.matches(consumed.record.headers))
                if wanted.expected
                else None,
                position=_position(query.position),
            )
        except FanoutClosed as error:
            raise Unavailable(
                f"cannot read topic {consume_topic}: {error}",
                retry_after=runtime.settings.retry_after,
            ) from error
    requested = [p.strip() for p in websocket.requested_subprotocols]
    return _Socket(
        call,
        produce_topic,
        configured,
        subscription,
        dict(query.parameters),
        dict(query.options),
        BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in requested else None,
    )


def _refusal(error: GatewayError) -> Response:
    status, body, headers = problem_for(error, websocket.path)
    others = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return Response(
        json.dumps(body), status=status, headers=others, content_type=PROBLEM_CONTENT_TYPE
    )


async def _produce_one(runtime: GatewayRuntime, socket: _Socket, frame: str) -> ProduceResponse:
    assert socket.produce_topic is not None
    spec = socket.call.spec
    try:
        request = parse_produce_request(frame)
        messages = encode_requests(
            [request], socket.configured, reserved_header_keys(spec), source=socket.call.source
        )
        await send_all(runtime.producer, socket.produce_topic, messages, runtime.settings)
        runtime.metrics.records_produced += len(messages)
    except (BadRequest, PayloadTooLarge) as error:
        return produce_response("BAD_REQUEST", error.detail)
    except GatewayError as error:
        return produce_response("PRODUCER_ERROR", error.detail)
    return produce_response("OK")


async def _read(runtime: GatewayRuntime, socket: _Socket) -> _Close:
    settings = runtime.settings
    bucket = TokenBucket(settings.messages_per_second, settings.message_burst)
    while True:
        frame = await websocket.receive()
        if not isinstance(frame, str):
            return _Close(CLOSE_BINARY, "binary frames are not accepted: send JSON text")
        if len(frame) > settings.max_message_bytes or (
            4 * len(frame) > settings.max_message_bytes
            and len(frame.encode("utf-8")) > settings.max_message_bytes
        ):
            return _Close(
                CLOSE_TOO_BIG, f"messages are limited to {settings.max_message_bytes} bytes"
            )
        if not bucket.take():
            return _Close(
                CLOSE_POLICY,
                f"more than {settings.messages_per_second:g} messages per second",
            )
        if socket.produce_topic is None:
            continue  # consume sockets ignore what the client sends
        await websocket.send(json.dumps(await _produce_one(runtime, socket, frame)))


async def _expiry(expires_at: float) -> _Close:
    await asyncio.sleep(max(0.0, expires_at - time.time()))
    return _Close(CLOSE_POLICY, "the credentials expired")


async def _closing(closing: asyncio.Event) -> _Close:
    await closing.wait()
    return _Close(CLOSE_SHUTDOWN, "the gateway is shutting down")


async def _push(subscription: Subscription) -> _Close:
    try:
        async for consumed in subscription:
            await websocket.send(push_frame(consumed, subscription.positions))
    except SlowConsumer as error:
        return _Close(CLOSE_POLICY, str(error))
    except KafkaError as error:
        logger.error("reading topic %s for a socket failed", subscription.topic, exc_info=error)
        return _Close(CLOSE_INTERNAL, "the gateway failed to read the topic")
    return _Close(CLOSE_SHUTDOWN, "the gateway is shutting down")


async def _run(runtime: GatewayRuntime, socket: _Socket, closing: asyncio.Event) -> None:
    jobs: list[Awaitable[_Close]] = [_read(runtime, socket), _closing(closing)]
    if socket.subscription is not None:
        jobs.append(_push(socket.subscription))
    identity = socket.call.identity
    if identity is not None and identity.expires_at is not None:
        jobs.append(_expiry(identity.expires_at))
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        close = next(iter(done)).result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    runtime.metrics.websocket_closes[(socket.call.spec.type, close.code)] += 1
    await websocket.close(close.code, close.reason)


async def _serve(
    runtime: GatewayRuntime,
    closing: asyncio.Event,
    kind: str,
    tenant: str,
    application: str,
    gateway: str,
) -> Response | None:
    try:
        if closing.is_set():
            raise Unavailable("the gateway is shutting down")
        socket = await _open(runtime, kind, tenant, application, gateway)
    except GatewayError as error:
        return _refusal(error)
    events_topic = socket.call.spec.events_topic
    try:
        if events_topic is not None:
            await _event(runtime, socket, events_topic, "ClientConnected")
        await websocket.accept(subprotocol=socket.subprotocol)
        runtime.metrics.websockets_open[kind] += 1
        try:
            await _run(runtime, socket, closing)
        finally:
            runtime.metrics.websockets_open[kind] -= 1
    finally:
        if socket.subscription is not None:
            await socket.subscription.close()
        if events_topic is not None:
            # In the background: a client that went away cancels this handler.
            runtime.spawn(_event(runtime, socket, events_topic, "ClientDisconnected"))
    return None


def _event(
    runtime: GatewayRuntime, socket: _Socket, topic: str, kind: ClientEventType
) -> Coroutine[Any, Any, None]:
    event = client_event(
        kind,
        socket.call,
        parameters=socket.parameters,
        options=socket.options,
        request_headers=websocket.headers.items(),
    )
    return send_client_event(runtime.producer, topic, event, socket.call, runtime.settings)


def register(app: Quart, runtime: GatewayRuntime) -> None:
    """Add the ``/v1/produce``, ``/v1/consume`` and ``/v1/chat`` WebSocket routes to ``app``.

    Sockets close with 1001, and new ones are refused with 503, once ``runtime.closing`` is set
    (when shutdown begins: Hypercorn would let open WebSockets run until its graceful timeout,
    after which they end with 1011)."""
    for kind in _KINDS:

        async def route(
            tenant: str, application: str, gateway: str, kind: str = kind
        ) -> Response | None:
            return await _serve(runtime, runtime.closing, kind, tenant, application, gateway)

        app.websocket(websocket_route(kind), endpoint=f"ws_{kind}")(route)
