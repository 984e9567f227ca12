"""HTTP service gateways: ``/api/gateways/service/<tenant>/<application>/<gateway>``.

Topics mode (``service-options.input-topic`` / ``output-topic``): the request is produced to the
input topic with a fresh ``langstream-service-request-id`` (a client's own is overwritten), and
the answer is the first record on the output topic that carries it, as a push-message JSON. The
request is registered with the output topic's shared :class:`~gateway.replies.ReplyRouter`
before it is produced, so a fast reply cannot be missed.

Agent-id (proxy) mode is a reverse proxy to the agent's HTTP server: see :mod:`gateway.proxy`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping

from gateway.call import GatewayCall
from gateway.errors import (
    BadRequest,
    GatewayTimeout,
    MethodNotAllowed,
    NotFound,
    Unavailable,
)
from gateway.headers import (
    SERVICE_REQUEST_ID_HEADER,
    HeaderFilter,
    gateway_headers_for,
    header_filter,
    reserved_header_keys,
)
from gateway.messages import PushMessage, encode_offset, parse_http_body, push_message
from gateway.produce import encode_requests, send_all
from gateway.replies import ReplyRouter, ReplyRouterClosed, TooManyPending
from gateway.settings import GatewaySettings
from sluice.application.model import GatewaySpec
from sluice.events import ConsumedRecord
from sluice.kafka import Producer

__all__ = [
    "RouterFor",
    "call_service",
    "push_reply",
]

RouterFor = Callable[[str], Awaitable[ReplyRouter]]
"""The shared reply router of an output topic, started on first use."""


def _reply_filter(
    spec: GatewaySpec, parameters: dict[str, str], principal: Mapping[str, str] | None
) -> HeaderFilter | None:
    # Service parameters are optional: a service-options header whose parameter is absent is
    # not set on the request, so it is not expected on the reply either.
    expected = tuple(
        (key, value)
        for key, value in header_filter(spec, parameters, principal).expected
        if value is not None
    )
    return HeaderFilter(expected) if expected else None


async def call_service(
    producer: Producer,
    router_for: RouterFor,
    call: GatewayCall,
    *,
    method: str,
    path: str,
    content_type: str | None,
    body: bytes,
    settings: GatewaySettings,
    on_sent: Callable[[int], None] | None = None,
) -> ConsumedRecord:
    """Serve one HTTP request to a service gateway in topics mode: the reply record. ``path``
    is what follows the gateway id. Agent-id gateways are forwarded by
    :func:`gateway.proxy.forward` instead.

    ``on_sent`` is told how many records were written once Kafka acknowledged them (whatever
    happens to the reply). Every failure is a :class:`~gateway.errors.GatewayError`: 504 when no
    reply came within the timeout, 503 when too many requests already wait or Kafka did not take
    the request.
    """
    spec = call.spec
    service = spec.service
    if service is None or spec.is_proxy:
        raise ValueError(f"service gateway {spec.id} is not in topics mode")
    if path:
        raise NotFound(f"service gateway {spec.id} in topics mode has no path {path!r}")
    if method != "POST":
        raise MethodNotAllowed(
            f"service gateway {spec.id} in topics mode takes POST, not {method}", allow=("POST",)
        )
    if service.input_topic is None or service.output_topic is None:
        raise Unavailable(f"service gateway {spec.id} has no input-topic or output-topic")
    query = call.query(settings)
    requests = parse_http_body(content_type, body)
    if len(requests) != 1:
        raise BadRequest(f"a service gateway takes one message, not {len(requests)}")
    parameters = dict(query.parameters)
    configured = gateway_headers_for(spec, parameters, call.principal)
    request_id = str(uuid.uuid4())
    reserved = reserved_header_keys(spec) - {SERVICE_REQUEST_ID_HEADER}
    messages = encode_requests(
        requests,
        configured,
        reserved,
        source=call.source,
        extra={SERVICE_REQUEST_ID_HEADER: request_id},
    )
    router = await router_for(service.output_topic)
    expected = _reply_filter(spec, parameters, call.principal)
    matches = None if expected is None else _matcher(expected)
    try:
        pending = await router.expect(request_id, matches)
    except TooManyPending as error:
        raise Unavailable(str(error), retry_after=settings.retry_after) from error
    except ReplyRouterClosed as error:
        raise Unavailable(str(error), retry_after=settings.retry_after) from error
    try:
        await send_all(producer, service.input_topic, messages, settings)
    except BaseException:
        pending.cancel()
        raise
    if on_sent is not None:
        on_sent(len(messages))
    try:
        reply = await pending.wait(query.timeout)
    except TimeoutError as error:
        raise GatewayTimeout(
            f"no reply from service gateway {spec.id} within {query.timeout:g} s"
        ) from error
    except ReplyRouterClosed as error:
        raise Unavailable(str(error), retry_after=settings.retry_after) from error
    return reply


def push_reply(reply: ConsumedRecord) -> PushMessage:
    """The LangStream-compatible answer body of ``reply``."""
    return push_message(reply, encode_offset({reply.partition: reply.next_offset}))


def _matcher(expected: HeaderFilter) -> Callable[[ConsumedRecord], bool]:
    def matches(consumed: ConsumedRecord) -> bool:
        return expected.matches(consumed.record.headers)

    return matches
