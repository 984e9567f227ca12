"""HTTP consume gateways as Server-Sent Events: ``GET /api/gateways/consume/<t>/<a>/<gateway>``.

The same contract as the WebSocket consume gateway (parameters, filters, ``option:position``,
credentials) for clients that only speak HTTP: ``curl -N`` or a browser's ``EventSource``. Each
record is one event::

    id: <offset token>
    event: record
    data: {"record": {...}, "offset": "<offset token>"}

The subscription is made before the answer starts, so nothing written after the response
headers is missed. A reconnecting ``EventSource`` sends ``Last-Event-ID`` and resumes after the
last record it saw (an explicit ``option:position`` wins). A comment line keeps idle streams
alive every ``ping_interval``. A client too slow to read gets an ``error`` event and the stream
ends; so does every stream when the gateway shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Final

from quart import Quart, Response, request

from gateway.call import GatewayCall
from gateway.errors import Unavailable
from gateway.fanout import FanoutClosed, Position, SlowConsumer, Subscription
from gateway.headers import header_filter
from gateway.messages import decode_offset, encode_offset, push_message
from gateway.routes.http import authenticated
from gateway.runtime import GatewayRuntime
from sluice.errors import KafkaError
from sluice.events import ConsumedRecord
from sluice.protocol import http_route

__all__ = ["EVENT_STREAM", "event_stream", "register"]

EVENT_STREAM: Final = "text/event-stream"
_KEEPALIVE: Final = b": keep-alive\n\n"


def _position(option: str | None, last_event_id: str | None) -> Position:
    value = option if option is not None else (last_event_id or "latest")
    if value in ("latest", "earliest"):
        return value  # type: ignore[return-value]
    return decode_offset(value)


def _event(name: str, data: object, event_id: str | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines += [f"event: {name}", f"data: {json.dumps(data)}", "", ""]
    return "\n".join(lines).encode("utf-8")


async def event_stream(
    runtime: GatewayRuntime, call: GatewayCall, last_event_id: str | None
) -> Response:
    """The streaming answer of one consume request (already authenticated)."""
    spec = call.spec
    query = call.query(runtime.settings)
    if spec.topic is None:
        raise Unavailable(f"gateway {spec.id} has no topic")
    app = runtime.apps[(call.tenant, call.application)]
    wanted = header_filter(spec, query.parameters, call.principal)
    position = _position(query.options.get("position"), last_event_id)
    fanout = await runtime.fanout(app.topic_spec(spec.topic))
    try:
        subscription = await fanout.subscribe(
            lambda consumed: wanted.matches(consumed.record.headers), position=position
        )
    except FanoutClosed as error:
        raise Unavailable(
            f"cannot read topic {spec.topic}: {error}", retry_after=runtime.settings.retry_after
        ) from error
    body = _events(subscription, runtime.closing, runtime.settings.ping_interval)
    response = Response(
        body,
        status=200,
        content_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.timeout = None  # the stream lasts as long as the client stays
    return response


async def _events(
    subscription: Subscription, closing: asyncio.Event, ping_interval: float | None
) -> AsyncIterator[bytes]:
    closed = asyncio.ensure_future(closing.wait())
    upcoming: asyncio.Future[ConsumedRecord] | None = None
    try:
        yield _KEEPALIVE  # sends the headers now: the client knows it is subscribed
        while True:
            if upcoming is None:
                upcoming = asyncio.ensure_future(anext(subscription))
            waiting: set[asyncio.Future[Any]] = {upcoming, closed}
            done, _ = await asyncio.wait(
                waiting, timeout=ping_interval, return_when=asyncio.FIRST_COMPLETED
            )
            if upcoming in done:
                finished, upcoming = upcoming, None
                try:
                    consumed = finished.result()
                except StopAsyncIteration:
                    return
                except SlowConsumer as error:
                    yield _event("error", {"reason": str(error)})
                    return
                except KafkaError:
                    yield _event("error", {"reason": "the gateway failed to read the topic"})
                    return
                token = encode_offset(subscription.positions)
                yield _event("record", push_message(consumed, token), token)
            elif closed in done:
                return
            else:
                yield _KEEPALIVE
    finally:
        for task in (upcoming, closed):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await subscription.close()


def register(app: Quart, runtime: GatewayRuntime) -> None:
    """Add the HTTP consume route (server-sent events) to ``app``."""

    @app.get(http_route("consume"))
    async def consume_route(tenant: str, application: str, gateway: str) -> Response:
        call = await authenticated(runtime, "consume", tenant, application, gateway)
        return await event_stream(runtime, call, request.headers.get("Last-Event-ID"))
