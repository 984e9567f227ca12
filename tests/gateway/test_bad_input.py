"""Bad requests to the gateway get the exact status and message, and nothing reaches Kafka.

A real gateway under Hypercorn on loopback and the real broker. Every case is refused; after
each one every topic of the application is read from its beginning to its end offsets and must
still be empty (the topics of this module are only ever sent bad requests).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from gateway.settings import GatewaySettings
from sluice.kafka import KafkaSettings
from tests.gateway.support import (
    APP_ID,
    SESSION_HEADER,
    TENANT,
    Served,
    TopicProbe,
    app_topics,
    assert_problem,
    receive_json,
    refusal,
    serve_gateway,
    unique,
    write_app,
)

pytestmark = pytest.mark.kafka

MAX_BODY = 16 * 1024
MAX_MESSAGE = 8 * 1024
ALLOWED_ORIGIN = "https://app.example"
DOCUMENTED_BAD_BODY = b'{"value": {"question": "hello"}, "key": "k1", headers: {"h1": "v1"}}'
JSON_ERROR = "Error while parsing JSON payload: "
WHERE = f"(tenant: {TENANT}, appId: {APP_ID}): "
MISSING = (
    "Error for gateway {g} " + WHERE + "missing required parameter sessionId. "
    "Required parameters: [sessionId]"
)
UNKNOWN_PARAMS = "Error for gateway {g} " + WHERE + "unknown parameters: [{names}]"
INVALID_KEY = (
    "invalid query parameter {k}. To specify a gateway parameter, use the format "
    "param:<parameter_name>.To specify a option, use the format option:<option_name>."
)
CLASH = f"Header {SESSION_HEADER} is configured as parameter-level header."
NO_KEY_NO_VALUE = "Either key or value must be set."
BAD_TIMEOUT = "invalid timeout {v}: expected a number of seconds greater than 0 and at most 300"


def gateways_yaml(questions: str, answers: str, inputs: str, results: str, events: str) -> str:
    session = f"""
        - key: {SESSION_HEADER}
          value-from-parameters: sessionId"""
    return f"""
gateways:
  - id: user-input
    type: produce
    topic: {questions}
    parameters: [sessionId]
    produce-options:
      headers:{session}
  - id: bot-output
    type: consume
    topic: {answers}
    parameters: [sessionId]
    consume-options:
      filters:
        headers:{session}
  - id: chat
    type: chat
    parameters: [sessionId]
    chat-options:
      questions-topic: {questions}
      answers-topic: {answers}
      headers:{session}
  - id: user-input-await
    type: service
    parameters: [sessionId]
    service-options:
      input-topic: {inputs}
      output-topic: {results}
      headers:{session}
  - id: audited-input
    type: produce
    topic: {questions}
    events-topic: {events}
    parameters: [sessionId]
"""


@dataclass
class Env:
    served: Served
    probe: TopicProbe


@pytest.fixture(scope="module")
async def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    kafka = KafkaSettings(kafka_bootstrap)
    names = [
        unique(p)
        for p in ("bad-questions", "bad-answers", "bad-inputs", "bad-results", "bad-events")
    ]
    app_dir = write_app(
        tmp_path_factory.mktemp("bad-input") / APP_ID,
        dict.fromkeys(names, 2),
        gateways_yaml(*names),
    )
    settings = GatewaySettings(
        max_body_bytes=MAX_BODY,
        max_message_bytes=MAX_MESSAGE,
        # A token bucket that does not refill during the test: 3 frames, then 1008.
        messages_per_second=0.001,
        message_burst=3,
        allowed_origins=(ALLOWED_ORIGIN,),
    )
    async with (
        serve_gateway(kafka, app_dir, settings) as served,
        TopicProbe(kafka, app_topics(served.application)) as probe,
    ):
        yield Env(served, probe)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as shared:
        yield shared


@pytest.fixture(autouse=True)
async def nothing_written(env: Env) -> AsyncIterator[None]:
    await env.probe.assert_empty()
    yield
    await env.probe.assert_empty()


# --- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Http:
    """One bad HTTP request and the problem it must get."""

    status: int
    detail: str
    body: bytes = b"hello"
    params: dict[str, str] = field(default_factory=lambda: {"param:sessionId": "s1"})
    content_type: str | None = "text/plain"
    kind: str = "produce"
    gateway: str = "user-input"
    method: str = "POST"
    tenant: str = TENANT
    app: str = APP_ID
    suffix: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    allow: str | None = None


def as_json(data: Any) -> bytes:
    return json.dumps(data).encode()


def event(**attributes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"specversion": "1.0", "id": "e1", "source": "/test", "type": "t"}
    return {k: v for k, v in {**base, **attributes}.items() if v is not ...}


def missing_attr(name: str) -> dict[str, Any]:
    return event(**{name: ...})


JSON = "application/json"
CE = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"
S1 = {"param:sessionId": "s1"}

HTTP_CASES: dict[str, Http] = {
    # --- routing
    "unknown-gateway": Http(
        404,
        f"gateway nope of type produce not found in application {APP_ID} of tenant {TENANT}",
        gateway="nope",
    ),
    "unknown-tenant": Http(
        404, f"application {APP_ID} of tenant other-tenant not found", tenant="other-tenant"
    ),
    "unknown-app": Http(
        404, f"application other-app of tenant {TENANT} not found", app="other-app"
    ),
    "gateway-of-another-type": Http(
        404,
        f"gateway user-input-await of type produce not found in application {APP_ID} "
        f"of tenant {TENANT}",
        gateway="user-input-await",
    ),
    "unknown-service-gateway": Http(
        404,
        f"gateway user-input of type service not found in application {APP_ID} of tenant {TENANT}",
        kind="service",
        gateway="user-input",
    ),
    # --- query
    "missing-param": Http(400, MISSING.format(g="user-input"), params={}),
    "blank-param": Http(400, MISSING.format(g="user-input"), params={"param:sessionId": ""}),
    "whitespace-param": Http(400, MISSING.format(g="user-input"), params={"param:sessionId": "  "}),
    "unknown-param": Http(
        400,
        UNKNOWN_PARAMS.format(g="user-input", names="other"),
        params={"param:sessionId": "s1", "param:other": "x"},
    ),
    "unknown-params-sorted": Http(
        400,
        UNKNOWN_PARAMS.format(g="user-input", names="a, b"),
        params={"param:sessionId": "s1", "param:b": "x", "param:a": "y"},
    ),
    "service-unknown-param": Http(
        400,
        UNKNOWN_PARAMS.format(g="user-input-await", names="other"),
        params={"param:other": "x"},
        kind="service",
        gateway="user-input-await",
    ),
    "invalid-query-key": Http(400, INVALID_KEY.format(k="sessionId"), params={"sessionId": "s1"}),
    "produce-takes-no-position": Http(
        400, "Unknown option position", params={**S1, "option:position": "earliest"}
    ),
    "produce-takes-no-timeout": Http(
        400, "Unknown option timeout", params={**S1, "option:timeout": "5"}
    ),
    "service-takes-no-position": Http(
        400,
        "Unknown option position",
        params={"option:position": "latest"},
        kind="service",
        gateway="user-input-await",
    ),
    "service-unknown-option": Http(
        400,
        "Unknown option retries",
        params={"option:retries": "3"},
        kind="service",
        gateway="user-input-await",
    ),
    "both-credentials": Http(
        400,
        "credentials and test-credentials cannot be used together",
        params={**S1, "credentials": "a", "test-credentials": "b"},
    ),
    "credentials-and-bearer": Http(
        400,
        "credentials were given in more than one way (the credentials query parameter, "
        "the Authorization header); use only one",
        params={**S1, "credentials": "a"},
        headers={"Authorization": "Bearer b"},
    ),
    # --- bodies
    "documented-unquoted-headers-key": Http(
        400,
        f"{JSON_ERROR}Expecting property name enclosed in double quotes: "
        f"line 1 column {DOCUMENTED_BAD_BODY.index(b'headers') + 1} "
        f"(char {DOCUMENTED_BAD_BODY.index(b'headers')})",
        body=DOCUMENTED_BAD_BODY,
        content_type=JSON,
    ),
    "truncated-json": Http(
        400,
        f"{JSON_ERROR}Expecting value: line 1 column 11 (char 10)",
        body=b'{"value": ',
        content_type=JSON,
    ),
    "empty-json-body": Http(
        400,
        f"{JSON_ERROR}Expecting value: line 1 column 1 (char 0)",
        body=b"",
        content_type=JSON,
    ),
    "nan-is-not-json": Http(
        400, f"{JSON_ERROR}NaN is not valid JSON", body=b'{"value": NaN}', content_type=JSON
    ),
    "json-not-utf8": Http(
        400,
        f"{JSON_ERROR}'utf-8' codec can't decode byte 0xff in position 11: invalid start byte",
        body=b'{"value": "\xff"}',
        content_type=JSON,
    ),
    "text-not-utf8": Http(
        400,
        "the body is not UTF-8 text: 'utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte",
        body=b"\xff\xfe",
    ),
    "unknown-field": Http(
        400,
        f'{JSON_ERROR}unknown field "extra" (known fields: key, value, headers)',
        body=as_json({"value": "v", "extra": 1}),
        content_type=JSON,
    ),
    "unknown-fields": Http(
        400,
        f'{JSON_ERROR}unknown fields "Value", "properties" (known fields: key, value, headers)',
        body=as_json({"Value": "v", "properties": {}}),
        content_type=JSON,
    ),
    "no-key-no-value": Http(400, NO_KEY_NO_VALUE, body=b"{}", content_type=JSON),
    "null-key-null-value-with-headers": Http(
        400,
        NO_KEY_NO_VALUE,
        body=as_json({"key": None, "value": None, "headers": {"h1": "v1"}}),
        content_type=JSON,
    ),
    "headers-not-an-object": Http(
        400,
        f"{JSON_ERROR}headers must be an object, not an array",
        body=as_json({"value": "v", "headers": ["h1"]}),
        content_type=JSON,
    ),
    "header-value-not-a-string": Http(
        400,
        f"{JSON_ERROR}header h1 must be a string, not a number",
        body=as_json({"value": "v", "headers": {"h1": 1}}),
        content_type=JSON,
    ),
    "request-not-an-object": Http(
        400,
        f"{JSON_ERROR}expected a JSON object, not a string",
        body=b'"hello"',
        content_type=JSON,
    ),
    "service-header-clash": Http(
        400,
        CLASH,
        body=as_json({"value": "v", "headers": {SESSION_HEADER: "forged"}}),
        content_type=JSON,
        params={},
        kind="service",
        gateway="user-input-await",
    ),
    "unsupported-media-type": Http(
        415,
        "Unsupported content type: application/xml",
        body=b"<q/>",
        content_type="application/xml",
    ),
    "unsupported-media-type-with-parameters": Http(
        415,
        "Unsupported content type: multipart/form-data; boundary=x",
        body=b"--x--",
        content_type="multipart/form-data; boundary=x",
    ),
    "service-unsupported-media-type": Http(
        415,
        "Unsupported content type: application/octet-stream",
        body=b"\x00",
        content_type="application/octet-stream",
        params={},
        kind="service",
        gateway="user-input-await",
    ),
    "oversized-body": Http(
        413, f"the request body is larger than {MAX_BODY} bytes", body=b"x" * (MAX_BODY + 1)
    ),
    "service-oversized-body": Http(
        413,
        f"the request body is larger than {MAX_BODY} bytes",
        body=b"x" * (MAX_BODY + 1),
        params={},
        kind="service",
        gateway="user-input-await",
    ),
    # --- CloudEvents
    "cloudevent-without-specversion": Http(
        400,
        "unsupported CloudEvent specversion None (expected '1.0')",
        body=as_json(missing_attr("specversion") | {"data": "x"}),
        content_type=CE,
    ),
    "cloudevent-old-specversion": Http(
        400,
        "unsupported CloudEvent specversion '0.3' (expected '1.0')",
        body=as_json(event(specversion="0.3", data="x")),
        content_type=CE,
    ),
    "cloudevent-without-id": Http(
        400,
        "the CloudEvent attribute id must be a non-empty string",
        body=as_json(missing_attr("id") | {"data": "x"}),
        content_type=CE,
    ),
    "cloudevent-empty-source": Http(
        400,
        "the CloudEvent attribute source must be a non-empty string",
        body=as_json(event(source="", data="x")),
        content_type=CE,
    ),
    "cloudevent-data-and-data-base64": Http(
        400,
        "a CloudEvent cannot have both data and data_base64",
        body=as_json(event(data="x", data_base64="eA==")),
        content_type=CE,
    ),
    "cloudevent-bad-base64": Http(
        400,
        "the CloudEvent data_base64 is not base64 text",
        body=as_json(event(data_base64="not base64!")),
        content_type=CE,
    ),
    "cloudevent-numeric-partitionkey": Http(
        400,
        "the CloudEvent attribute partitionkey must be a string",
        body=as_json(event(data="x", partitionkey=7)),
        content_type=CE,
    ),
    "cloudevent-without-data-or-key": Http(
        400, NO_KEY_NO_VALUE, body=as_json(event()), content_type=CE
    ),
    "cloudevent-not-an-object": Http(
        400, "a CloudEvent is a JSON object, not an array", body=b"[]", content_type=CE
    ),
    # --- batches: all or nothing
    "batch-second-item-unknown-field": Http(
        400,
        f'message [1]: {JSON_ERROR}unknown field "extra" (known fields: key, value, headers)',
        body=as_json([{"value": "ok"}, {"value": "x", "extra": 1}]),
        content_type=JSON,
    ),
    "batch-last-item-not-an-object": Http(
        400,
        f"message [2]: {JSON_ERROR}expected a JSON object, not a string",
        body=as_json([{"value": "a"}, {"key": "b"}, "c"]),
        content_type=JSON,
    ),
    "cloudevents-batch-second-event-without-type": Http(
        400,
        "message [1]: the CloudEvent attribute type must be a non-empty string",
        body=as_json([event(data="ok"), event(type="", data="x")]),
        content_type=CE_BATCH,
    ),
    "cloudevents-batch-not-an-array": Http(
        400,
        f"{JSON_ERROR}a CloudEvents batch is a JSON array, not an object",
        body=as_json(event(data="x")),
        content_type=CE_BATCH,
    ),
    "service-takes-one-message": Http(
        400,
        "a service gateway takes one message, not 2",
        body=as_json([{"value": "a"}, {"value": "b"}]),
        content_type=JSON,
        params={},
        kind="service",
        gateway="user-input-await",
    ),
    "service-empty-batch": Http(
        400,
        "a service gateway takes one message, not 0",
        body=b"[]",
        content_type=JSON,
        params={},
        kind="service",
        gateway="user-input-await",
    ),
    # --- service gateway in topics mode: timeout, method, path
    **{
        f"service-timeout-{name}": Http(
            400,
            BAD_TIMEOUT.format(v=value),
            params={"option:timeout": value},
            kind="service",
            gateway="user-input-await",
        )
        for name, value in (
            ("not-a-number", "soon"),
            ("zero", "0"),
            ("negative", "-1"),
            ("above-max", "301"),
            ("nan", "nan"),
            ("infinite", "inf"),
        )
    },
    "service-timeout-blank": Http(
        400,
        "'timeout' cannot be blank",
        params={"option:timeout": ""},
        kind="service",
        gateway="user-input-await",
    ),
    "service-put": Http(
        405,
        "service gateway user-input-await in topics mode takes POST, not PUT",
        allow="POST",
        method="PUT",
        params={},
        kind="service",
        gateway="user-input-await",
    ),
    "service-delete": Http(
        405,
        "service gateway user-input-await in topics mode takes POST, not DELETE",
        allow="POST",
        method="DELETE",
        params={},
        kind="service",
        gateway="user-input-await",
    ),
    "service-path-after-the-gateway": Http(
        404,
        "service gateway user-input-await in topics mode has no path 'the/custom/path'",
        params={},
        kind="service",
        gateway="user-input-await",
        suffix="/the/custom/path",
    ),
    # --- consume over Server-Sent Events: refused before the stream starts
    **{
        f"event-stream-{name}": Http(
            status,
            detail,
            body=b"",
            content_type=None,
            method="GET",
            kind="consume",
            gateway=gateway,
            params=params,
            headers=headers,
        )
        for name, status, detail, gateway, params, headers in (
            ("missing-param", 400, MISSING.format(g="bot-output"), "bot-output", {}, {}),
            (
                "unknown-param",
                400,
                UNKNOWN_PARAMS.format(g="bot-output", names="other"),
                "bot-output",
                {**S1, "param:other": "x"},
                {},
            ),
            (
                "unknown-option",
                400,
                "Unknown option timeout",
                "bot-output",
                {**S1, "option:timeout": "5"},
                {},
            ),
            (
                "bad-position",
                400,
                "invalid position yesterday",
                "bot-output",
                {**S1, "option:position": "yesterday"},
                {},
            ),
            (
                "bad-last-event-id",
                400,
                "invalid position not-a-token",
                "bot-output",
                S1,
                {"Last-Event-ID": "not-a-token"},
            ),
            (
                "of-a-produce-gateway",
                404,
                f"gateway user-input of type consume not found in application {APP_ID} "
                f"of tenant {TENANT}",
                "user-input",
                S1,
                {},
            ),
        )
    },
}


@pytest.mark.parametrize("case", HTTP_CASES.values(), ids=HTTP_CASES.keys())
async def test_http_bad_request(env: Env, client: httpx.AsyncClient, case: Http) -> None:
    url = env.served.http(case.kind, case.gateway, case.tenant, case.app) + case.suffix
    headers = dict(case.headers)
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    response = await client.request(
        case.method, url, params=case.params, content=case.body, headers=headers
    )
    assert_problem(response, case.status, case.detail)
    if case.allow is not None:
        assert response.headers["allow"] == case.allow


async def test_a_chunked_body_above_the_limit_is_413(env: Env, client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 1):
            yield b"x" * 1024

    response = await client.post(
        env.served.http("produce", "user-input"), params=S1, content=chunks()
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, f"the request body is larger than {MAX_BODY} bytes")


# --- WebSocket handshakes --------------------------------------------------------------------

WS_REFUSALS: dict[str, tuple[str, str, str, int, str]] = {
    # id: (kind, gateway, query, status, detail)
    "unknown-gateway": (
        "produce",
        "nope",
        "?param:sessionId=s1",
        404,
        f"gateway nope of type produce not found in application {APP_ID} of tenant {TENANT}",
    ),
    "consume-path-to-a-chat-gateway": (
        "consume",
        "chat",
        "?param:sessionId=s1",
        404,
        f"gateway chat of type consume not found in application {APP_ID} of tenant {TENANT}",
    ),
    "consume-missing-param": ("consume", "bot-output", "", 400, MISSING.format(g="bot-output")),
    "chat-blank-param": ("chat", "chat", "?param:sessionId=%20", 400, MISSING.format(g="chat")),
    "chat-unknown-param": (
        "chat",
        "chat",
        "?param:sessionId=s1&param:user=u",
        400,
        UNKNOWN_PARAMS.format(g="chat", names="user"),
    ),
    "produce-invalid-query-key": (
        "produce",
        "user-input",
        "?param:sessionId=s1&position=earliest",
        400,
        INVALID_KEY.format(k="position"),
    ),
    "produce-takes-no-position": (
        "produce",
        "user-input",
        "?param:sessionId=s1&option:position=latest",
        400,
        "Unknown option position",
    ),
    "consume-unknown-option": (
        "consume",
        "bot-output",
        "?param:sessionId=s1&option:timeout=5",
        400,
        "Unknown option timeout",
    ),
    "consume-blank-position": (
        "consume",
        "bot-output",
        "?param:sessionId=s1&option:position=",
        400,
        "'position' cannot be blank",
    ),
    "consume-position-not-a-token": (
        "consume",
        "bot-output",
        "?param:sessionId=s1&option:position=yesterday",
        400,
        "invalid position yesterday",
    ),
    "chat-position-token-of-wrong-shape": (
        "chat",
        "chat",
        "?param:sessionId=s1&option:position="
        + base64.urlsafe_b64encode(b'{"offsets": 5}').decode(),
        400,
        "invalid position " + base64.urlsafe_b64encode(b'{"offsets": 5}').decode(),
    ),
    "consume-negative-offset-token": (
        "consume",
        "bot-output",
        "?param:sessionId=s1&option:position="
        + base64.urlsafe_b64encode(b'{"offsets": {"0": "-1"}}').decode(),
        400,
        "invalid position " + base64.urlsafe_b64encode(b'{"offsets": {"0": "-1"}}').decode(),
    ),
    # A gateway with an events-topic: a refused handshake writes no ClientConnected event.
    "audited-missing-param": (
        "produce",
        "audited-input",
        "",
        400,
        MISSING.format(g="audited-input"),
    ),
    "audited-unknown-option": (
        "produce",
        "audited-input",
        "?param:sessionId=s1&option:position=earliest",
        400,
        "Unknown option position",
    ),
    "produce-both-credentials": (
        "produce",
        "user-input",
        "?param:sessionId=s1&credentials=a&test-credentials=b",
        400,
        "credentials and test-credentials cannot be used together",
    ),
}


@pytest.mark.parametrize(
    ("kind", "gateway", "query", "status", "detail"), WS_REFUSALS.values(), ids=WS_REFUSALS.keys()
)
async def test_websocket_handshake_refused(
    env: Env, kind: str, gateway: str, query: str, status: int, detail: str
) -> None:
    url = env.served.ws(kind, gateway, query)
    got_status, body = await refusal(url)
    assert (got_status, body["status"], body["detail"]) == (status, status, detail)


async def test_websocket_credentials_two_ways_refused(env: Env) -> None:
    url = env.served.ws("chat", "chat", "?param:sessionId=s1&credentials=a")
    status, body = await refusal(url, subprotocols=["bearer", "b"])
    assert (status, body["detail"]) == (
        400,
        "credentials were given in more than one way (the credentials query parameter, "
        "the WebSocket subprotocol); use only one",
    )


async def test_websocket_bearer_subprotocol_without_token_refused(env: Env) -> None:
    url = env.served.ws("produce", "user-input", "?param:sessionId=s1")
    status, body = await refusal(url, subprotocols=["bearer"])
    assert (status, body["detail"]) == (
        400,
        "the WebSocket subprotocol bearer must be followed by the token",
    )


# --- WebSocket frames ------------------------------------------------------------------------

WS_FRAMES: dict[str, tuple[str, str, str]] = {
    # id: (kind/gateway, frame, reason)
    "produce-documented-unquoted-headers-key": (
        "produce",
        DOCUMENTED_BAD_BODY.decode(),
        f"{JSON_ERROR}Expecting property name enclosed in double quotes: line 1 column 47 "
        "(char 46)",
    ),
    "produce-not-json": (
        "produce",
        "hello",
        f"{JSON_ERROR}Expecting value: line 1 column 1 (char 0)",
    ),
    "produce-unknown-field": (
        "produce",
        json.dumps({"value": "v", "partition": 0}),
        f'{JSON_ERROR}unknown field "partition" (known fields: key, value, headers)',
    ),
    "produce-no-key-no-value": ("produce", "{}", NO_KEY_NO_VALUE),
    "produce-a-batch": (
        "produce",
        json.dumps([{"value": "a"}]),
        f"{JSON_ERROR}expected a JSON object, not an array",
    ),
    "chat-header-clash": (
        "chat",
        json.dumps({"value": "v", "headers": {SESSION_HEADER: "x"}}),
        CLASH,
    ),
    "chat-header-not-a-string": (
        "chat",
        json.dumps({"value": "v", "headers": {"h1": None}}),
        f"{JSON_ERROR}header h1 must be a string, not null",
    ),
}


@pytest.mark.parametrize(("kind", "frame", "reason"), WS_FRAMES.values(), ids=WS_FRAMES.keys())
async def test_websocket_bad_frame_is_answered_and_the_socket_stays_open(
    env: Env, kind: str, frame: str, reason: str
) -> None:
    gateway = "user-input" if kind == "produce" else "chat"
    async with connect(env.served.ws(kind, gateway, "?param:sessionId=s1")) as socket:
        for _ in range(2):  # the same frame twice: the first error did not close the socket
            await socket.send(frame)
            assert await receive_json(socket) == {"status": "BAD_REQUEST", "reason": reason}
        pong = await socket.ping()
        await pong


@pytest.mark.parametrize(
    ("kind", "gateway"), [("chat", "chat"), ("consume", "bot-output"), ("produce", "user-input")]
)
async def test_websocket_binary_frame_closes_with_1003(env: Env, kind: str, gateway: str) -> None:
    async with connect(env.served.ws(kind, gateway, "?param:sessionId=s1")) as socket:
        await socket.send(b'{"value": "binary"}')
        async with asyncio.timeout(20):
            await socket.wait_closed()
    assert socket.close_code == 1003
    assert socket.close_reason == "binary frames are not accepted: send JSON text"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "https://app.example.evil.com",
        "https://app.example/",
        "http://app.example",
        "https://app.example:8443",
    ],
)
async def test_websocket_from_a_foreign_origin_is_403(env: Env, origin: str) -> None:
    url = env.served.ws("produce", "audited-input", "?param:sessionId=s1")
    status, body = await refusal(url, origin=origin)
    assert (status, body["detail"]) == (
        403,
        f"origin {origin} is not allowed to open WebSockets",
    )


@pytest.mark.parametrize(("kind", "gateway"), [("produce", "user-input"), ("chat", "chat")])
async def test_websocket_message_above_the_limit_closes_with_1009(
    env: Env, kind: str, gateway: str
) -> None:
    frame = json.dumps({"value": "x" * MAX_MESSAGE})
    async with connect(env.served.ws(kind, gateway, "?param:sessionId=s1")) as socket:
        await socket.send(frame)
        async with asyncio.timeout(20):
            await socket.wait_closed()
    assert socket.close_code == 1009


@pytest.mark.parametrize(
    ("kind", "gateway"), [("produce", "user-input"), ("consume", "bot-output")]
)
async def test_websocket_flood_closes_with_1008(env: Env, kind: str, gateway: str) -> None:
    async with connect(env.served.ws(kind, gateway, "?param:sessionId=s1")) as socket:
        for _ in range(3):  # the burst: answered (produce) or ignored (consume)
            await socket.send("{}")
            if kind == "produce":
                assert await receive_json(socket) == {
                    "status": "BAD_REQUEST",
                    "reason": NO_KEY_NO_VALUE,
                }
        await socket.send("{}")
        async with asyncio.timeout(20):
            await socket.wait_closed()
    assert (socket.close_code, socket.close_reason) == (1008, "more than 0.001 messages per second")
