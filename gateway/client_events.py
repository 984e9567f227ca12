"""The ``events-topic`` of WebSocket gateways: ``ClientConnected`` / ``ClientDisconnected``.

LangStream's shape (its ``EventRecord``): the record value is a JSON object with ``category``
``Gateway``, ``type``, ``timestamp`` (milliseconds), ``source`` (tenant, application id and the
gateway definition) and ``data`` (the user parameters, options and HTTP request headers of the
handshake). Credentials never appear: ``Authorization``, ``Cookie`` and
``Sec-WebSocket-Protocol`` (the bearer subprotocol) headers are left out, the
gateway definition carries no provider configuration, and the query's ``credentials`` are not
options.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from gateway.call import GatewayCall
from gateway.produce import send_all
from gateway.settings import GatewaySettings
from sluice.application.model import GatewaySpec, HeaderSpec
from sluice.errors import SluiceError
from sluice.events import to_kafka
from sluice.kafka import Producer
from sluice.record import Record

__all__ = ["EVENT_TYPE", "client_event", "send_client_event"]

logger = logging.getLogger(__name__)

EVENT_TYPE: Final = "ai.langstream.gateway.event"
# Sec-WebSocket-Protocol carries the token when a browser uses the bearer subprotocol.
_SECRET_HEADERS: Final = frozenset(
    {"authorization", "cookie", "proxy-authorization", "sec-websocket-protocol"}
)

ClientEventType = Literal["ClientConnected", "ClientDisconnected"]


def _header(spec: HeaderSpec) -> dict[str, str]:
    fields = {
        "key": spec.key,
        "value": spec.value,
        "value-from-parameters": spec.value_from_parameters,
        "value-from-authentication": spec.value_from_authentication,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _definition(spec: GatewaySpec) -> dict[str, Any]:
    definition: dict[str, Any] = {"id": spec.id, "type": spec.type}
    if spec.topic is not None:
        definition["topic"] = spec.topic
    if spec.parameters:
        definition["parameters"] = list(spec.parameters)
    if spec.authentication is not None:
        definition["authentication"] = {
            "provider": spec.authentication.provider,
            "allow-test-mode": spec.authentication.allow_test_mode,
        }
    if spec.produce_headers:
        definition["produce-options"] = {"headers": [_header(h) for h in spec.produce_headers]}
    if spec.consume_filters:
        filters = {"headers": [_header(h) for h in spec.consume_filters]}
        definition["consume-options"] = {"filters": filters}
    if spec.chat is not None:
        definition["chat-options"] = {
            "questions-topic": spec.chat.questions_topic,
            "answers-topic": spec.chat.answers_topic,
            "headers": [_header(h) for h in spec.chat.headers],
        }
    if spec.events_topic is not None:
        definition["events-topic"] = spec.events_topic
    return definition


def client_event(
    kind: ClientEventType,
    call: GatewayCall,
    *,
    parameters: Mapping[str, str],
    options: Mapping[str, str],
    request_headers: Iterable[tuple[str, str]],
    now: float | None = None,
) -> dict[str, Any]:
    """The value of one event record.

    >>> from sluice.application.model import GatewaySpec
    >>> call = GatewayCall("t", "a", GatewaySpec("g", "consume", topic="out"))
    >>> event = client_event("ClientConnected", call, parameters={}, options={},
    ...                      request_headers=[("Authorization", "Bearer x"), ("X-A", "1")], now=1.5)
    >>> event["timestamp"], event["data"]["httpRequestHeaders"]
    (1500, {'X-A': '1'})
    """
    headers = {key: value for key, value in request_headers if key.lower() not in _SECRET_HEADERS}
    return {
        "category": "Gateway",
        "type": kind,
        "timestamp": int((time.time() if now is None else now) * 1000),
        "source": {
            "tenant": call.tenant,
            "applicationId": call.application,
            "gateway": _definition(call.spec),
        },
        "data": {
            "userParameters": dict(parameters),
            "options": dict(options),
            "httpRequestHeaders": headers,
        },
    }


async def send_client_event(
    producer: Producer,
    topic: str,
    event: Mapping[str, Any],
    call: GatewayCall,
    settings: GatewaySettings,
) -> None:
    """Write ``event`` to ``topic`` and wait for the ack. A failure is logged, never raised: an
    events topic that cannot be written does not stop clients from connecting."""
    message = to_kafka(Record(dict(event)), source=call.source, type=EVENT_TYPE)
    try:
        await send_all(producer, topic, [message], settings)
    except SluiceError as error:
        logger.warning("writing %s to events topic %s failed: %s", event["type"], topic, error)
