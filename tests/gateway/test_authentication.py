"""Gateway authentication plumbing: credentials in, principal out, through the real gateway.

The provider is the ``http`` one, pointed at a local identity server standing in for the
identity service on the internet (tests/gateway/identity_server.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from auth.tokens import fingerprint
from gateway.app import create_app
from gateway.serving import serving
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.application.model import Application, AuthenticationSpec
from sluice.events import ConsumedRecord
from sluice.kafka import KafkaSettings, Producer
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port
from sluice.record import Record
from tests.gateway.identity_server import IdentityServer, identity_server
from tests.gateway.test_http_app import assert_problem, read_until

pytestmark = pytest.mark.kafka

TENANT = "my-tenant"
APP_ID = "my-app"
ORIGIN = "https://app.example"


@dataclass(frozen=True)
class Secured:
    url: str
    inputs: str
    outputs: str
    events: str
    kafka: KafkaSettings
    application: Application
    identity: IdentityServer

    def http(self, kind: str, gateway: str) -> str:
        return f"{self.url}/api/gateways/{kind}/{TENANT}/{APP_ID}/{gateway}"

    def ws(self, kind: str, gateway: str, query: str = "") -> str:
        ws_url = self.url.replace("http://", "ws://")
        return f"{ws_url}/v1/{kind}/{TENANT}/{APP_ID}/{gateway}{query}"


def _authentication(identity_url: str, test_mode: bool) -> str:
    return f"""
    authentication:
      provider: http
      allow-test-mode: {"true" if test_mode else "false"}
      configuration:
        base-url: {identity_url}
        path-template: /auth/{{tenant}}"""


def write_app(directory: Path, identity_url: str, inputs: str, outputs: str, events: str) -> Path:
    directory.mkdir()
    (directory / "pipeline.yaml").write_text(
        "topics:\n"
        + "".join(
            f"  - name: {name}\n    creation-mode: create-if-not-exists\n"
            for name in (inputs, outputs, events)
        )
    )
    user = """
        - key: user
          value-from-authentication: subject"""
    (directory / "gateways.yaml").write_text(
        f"""
gateways:
  - id: secure-in
    type: produce
    topic: {inputs}{_authentication(identity_url, True)}
    produce-options:
      headers:{user}
  - id: no-test-mode
    type: produce
    topic: {inputs}{_authentication(identity_url, False)}
    produce-options:
      headers:{user}
  - id: secure-out
    type: consume
    topic: {outputs}
    events-topic: {events}{_authentication(identity_url, True)}
    consume-options:
      filters:
        headers:{user}
  - id: no-client-id
    type: produce
    topic: {inputs}
    authentication:
      provider: google
      allow-test-mode: true
      configuration:
        clientId: ""
    produce-options:
      headers:{user}
  - id: secure-service
    type: service{_authentication(identity_url, True)}
    service-options:
      input-topic: {inputs}
      output-topic: {outputs}
      headers:{user}
"""
    )
    return directory


@pytest.fixture(scope="module")
async def identity() -> AsyncIterator[IdentityServer]:
    async with identity_server() as server:
        yield server


@pytest.fixture(scope="module")
async def secured(
    kafka_bootstrap: str, identity: IdentityServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Secured]:
    kafka = KafkaSettings(kafka_bootstrap)
    suffix = uuid.uuid4().hex[:10]
    inputs, outputs, events = f"auth-in-{suffix}", f"auth-out-{suffix}", f"auth-events-{suffix}"
    directory = tmp_path_factory.mktemp("auth") / "app"
    application = load_application(write_app(directory, identity.url, inputs, outputs, events))
    await ensure_topics(kafka, list(application.topics.values()))
    test_provider = AuthenticationSpec(
        "http", configuration={"base-url": identity.url, "path-template": "/auth/{tenant}"}
    )
    settings = GatewaySettings(test_provider=test_provider, allowed_origins=(ORIGIN,))
    served = create_app({(TENANT, APP_ID): application}, kafka, settings)
    try:
        async with serving(served, LOOPBACK, free_port()) as url:
            yield Secured(url, inputs, outputs, events, kafka, application, identity)
    finally:
        await delete_topics(kafka, [inputs, outputs, events])


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_not_written(secured: Secured, marker: str) -> None:
    """No record carrying ``marker`` precedes a sentinel written now to the input topic."""
    sentinel = uuid.uuid4().hex
    async with Producer(secured.kafka) as producer:
        await producer.send(secured.inputs, Record(sentinel), source="/test")
    seen: list[ConsumedRecord] = []

    def until_sentinel(item: ConsumedRecord) -> bool:
        seen.append(item)
        return bool(item.record.value == sentinel)

    await read_until(secured.kafka, secured.inputs, until_sentinel)
    assert not [item for item in seen if marker in json.dumps(item.record.value)]


async def test_no_credentials_is_401_with_a_bare_challenge_and_writes_nothing(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(secured.http("produce", "secure-in"), json={"value": marker})
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "needs credentials" in str(body["detail"])
    await assert_not_written(secured, marker)


@pytest.mark.parametrize("token", ["wrong-token", "spaced secret-7", "ünïcode-secret-8"])
async def test_a_rejected_token_is_401_invalid_token(
    secured: Secured, client: httpx.AsyncClient, token: str
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        secured.http("produce", "secure-in"), params={"credentials": token}, json={"value": marker}
    )
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert str(body["detail"]).startswith("invalid credentials: ")
    assert token not in response.text
    await assert_not_written(secured, marker)


async def test_the_bearer_header_authenticates_and_the_principal_becomes_a_header(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        secured.http("produce", "secure-in"), headers=bearer("alice-token"), json={"value": marker}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "OK", "reason": None}
    record = await read_until(secured.kafka, secured.inputs, lambda i: i.record.value == marker)
    assert record.record.headers["user"] == "alice"
    assert "alice-token" not in json.dumps(dict(record.record.headers))
    assert (TENANT, "Bearer alice-token") in secured.identity.calls


async def test_the_credentials_query_parameter_authenticates_too(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        secured.http("produce", "secure-in"),
        params={"credentials": "bob-token"},
        json={"value": marker},
    )
    assert response.status_code == 200, response.text
    record = await read_until(secured.kafka, secured.inputs, lambda i: i.record.value == marker)
    assert record.record.headers["user"] == "bob"


async def test_credentials_given_two_ways_are_400(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        secured.http("produce", "secure-in"),
        params={"credentials": "alice-token"},
        headers=bearer("alice-token"),
        json={"value": "x"},
    )
    body = assert_problem(response, 400)
    assert "more than one way" in str(body["detail"])


async def test_a_client_cannot_set_the_principal_header_itself(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        secured.http("produce", "secure-in"),
        headers=bearer("bob-token"),
        json={"value": marker, "headers": {"user": "alice"}},
    )
    body = assert_problem(response, 400)
    assert body["detail"] == "Header user is configured as parameter-level header."
    await assert_not_written(secured, marker)


async def test_a_principal_without_the_field_is_401(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        secured.http("produce", "secure-in"),
        headers=bearer("nosubject-token"),
        json={"value": marker},
    )
    body = assert_problem(response, 401)
    assert body["detail"] == "header user cannot be empty: the principal has no subject"
    await assert_not_written(secured, marker)


async def test_an_identity_service_that_fails_is_503_with_retry_after(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        secured.http("produce", "secure-in"), headers=bearer("down-token"), json={"value": "x"}
    )
    body = assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert "cannot be reached" in str(body["detail"])


@pytest.mark.parametrize("credentials", [None, "alice-token"])
async def test_a_misconfigured_provider_fails_only_its_gateway_with_500(
    secured: Secured, client: httpx.AsyncClient, credentials: str | None
) -> None:
    # LangStream loads the application and fails this gateway's requests alone; Sluice too,
    # with 500 (the server's configuration, not the client's request, is wrong).
    marker = uuid.uuid4().hex
    response = await client.post(
        secured.http("produce", "no-client-id"),
        headers=bearer(credentials) if credentials else {},
        json={"value": marker},
    )
    body = assert_problem(response, 500)
    detail = str(body["detail"])
    assert detail.startswith("the gateway is misconfigured: gateway no-client-id of application")
    assert "configuration.clientId" in detail
    ok = await client.post(
        secured.http("produce", "secure-in"), headers=bearer("alice-token"), json={"value": "y"}
    )
    assert ok.status_code == 200, ok.text
    await assert_not_written(secured, marker)


async def test_test_credentials_work_on_a_gateway_with_a_misconfigured_provider(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        secured.http("produce", "no-client-id"),
        params={"test-credentials": "alice-token"},
        json={"value": marker},
    )
    assert response.status_code == 200, response.text
    record = await read_until(secured.kafka, secured.inputs, lambda i: i.record.value == marker)
    assert record.record.headers["user"] == fingerprint("alice-token")


async def test_test_credentials_need_a_gateway_that_allows_test_mode(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        secured.http("produce", "no-test-mode"),
        params={"test-credentials": "alice-token"},
        json={"value": "x"},
    )
    body = assert_problem(response, 401)
    assert body["detail"] == f"Gateway no-test-mode of tenant {TENANT} does not allow test mode."


async def test_test_credentials_give_a_principal_derived_from_the_token(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    marker = uuid.uuid4().hex
    response = await client.post(
        secured.http("produce", "secure-in"),
        params={"test-credentials": "alice-token"},
        json={"value": marker},
    )
    assert response.status_code == 200, response.text
    record = await read_until(secured.kafka, secured.inputs, lambda i: i.record.value == marker)
    assert record.record.headers["user"] == fingerprint("alice-token")


async def test_test_credentials_the_test_provider_rejects_are_401(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        secured.http("produce", "secure-in"),
        params={"test-credentials": "wrong-token"},
        json={"value": "x"},
    )
    assert_problem(response, 401)


async def test_without_a_test_provider_test_credentials_are_401(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    served = create_app({(TENANT, APP_ID): secured.application}, secured.kafka, GatewaySettings())
    async with serving(served, LOOPBACK, free_port()) as url:
        response = await client.post(
            f"{url}/api/gateways/produce/{TENANT}/{APP_ID}/secure-in",
            params={"test-credentials": "alice-token"},
            json={"value": "x"},
        )
    body = assert_problem(response, 401)
    assert body["detail"] == "No test auth provider specified"


async def reply_as_user(secured: Secured, count: int, ready: asyncio.Event) -> None:
    """A service: answers ``count`` requests of the input topic, copying the request id and
    the user header."""
    from sluice.application.model import TopicSpec
    from sluice.kafka import Consumer

    answered = 0
    async with Producer(secured.kafka) as producer:
        consumer = Consumer(secured.kafka, [TopicSpec(secured.inputs)], start_at="end")
        await consumer.start()
        ready.set()
        try:
            while answered < count:
                for item in await consumer.poll(timeout_ms=200):
                    if not isinstance(item, ConsumedRecord):
                        continue
                    request_id = item.record.headers.get("langstream-service-request-id")
                    if request_id is None:
                        continue
                    headers = {
                        "langstream-service-request-id": request_id,
                        "user": item.record.headers["user"],
                    }
                    value = {"echo": item.record.value, "user": item.record.headers["user"]}
                    await producer.send(
                        secured.outputs, Record(value, headers=headers), source="/test"
                    )
                    answered += 1
        finally:
            await consumer.stop()


async def test_a_service_call_carries_the_principal_and_gets_its_reply(
    secured: Secured, client: httpx.AsyncClient
) -> None:
    ready = asyncio.Event()
    service = asyncio.create_task(reply_as_user(secured, 1, ready))
    await asyncio.wait_for(ready.wait(), 30)
    response = await client.post(
        secured.http("service", "secure-service"),
        headers=bearer("alice-token"),
        json={"value": "hello"},
    )
    await asyncio.wait_for(service, 30)
    assert response.status_code == 200, response.text
    assert response.json()["record"]["value"] == {"echo": "hello", "user": "alice"}


async def produce_answers(secured: Secured, *pairs: tuple[str, str]) -> None:
    async with Producer(secured.kafka) as producer:
        for user, text in pairs:
            await producer.send(
                secured.outputs, Record({"text": text}, headers={"user": user}), source="/test"
            )


async def receive(socket: Any) -> Any:
    async with asyncio.timeout(20):
        return json.loads(await socket.recv())


async def test_a_websocket_authenticates_with_the_bearer_subprotocol_and_sees_only_its_records(
    secured: Secured,
) -> None:
    async with connect(
        secured.ws("consume", "secure-out"),
        subprotocols=[Subprotocol("bearer"), Subprotocol("alice-token")],
    ) as socket:
        assert socket.subprotocol == "bearer"
        await produce_answers(secured, ("bob", "for bob"), ("alice", "for alice"))
        pushed = await receive(socket)
        assert pushed["record"]["value"] == {"text": "for alice"}
        assert pushed["record"]["headers"]["user"] == "alice"


async def test_a_websocket_with_the_authorization_header_works_too(secured: Secured) -> None:
    async with connect(
        secured.ws("consume", "secure-out"), additional_headers=bearer("bob-token")
    ) as socket:
        await produce_answers(secured, ("alice", "for alice"), ("bob", "for bob"))
        assert (await receive(socket))["record"]["value"] == {"text": "for bob"}


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ("", {}, 401),
        ("?credentials=wrong-token", {}, 401),
        ("?credentials=down-token", {}, 503),
        ("?credentials=alice-token", bearer("alice-token"), 400),
        ("?credentials=alice-token", {"Origin": "https://evil.example"}, 403),
        ("?credentials=alice-token", {"Origin": "null"}, 403),
        ("?credentials=alice-token", {"Origin": f"{ORIGIN}:8443"}, 403),
        ("?credentials=alice-token", {"Origin": f"{ORIGIN}.evil.com"}, 403),
        ("?credentials=alice-token", {"Origin": f"{ORIGIN}/"}, 403),
        ("?credentials=alice-token", {"Origin": ORIGIN.replace("https", "http")}, 403),
    ],
)
async def test_a_refused_websocket_is_an_http_answer_before_accept(
    secured: Secured, query: str, headers: dict[str, str], status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(secured.ws("consume", "secure-out", query), additional_headers=headers):
            pass
    response = refused.value.response
    assert response.status_code == status
    assert json.loads(response.body or b"{}")["status"] == status
    assert b"alice-token" not in (response.body or b"")


async def test_an_allowed_origin_and_no_origin_are_accepted(secured: Secured) -> None:
    for headers in ({"Origin": ORIGIN}, {}):
        async with connect(
            secured.ws("consume", "secure-out", "?credentials=alice-token"),
            additional_headers=headers,
        ) as socket:
            await socket.ping()


async def test_the_events_topic_gets_connected_and_disconnected_without_credentials(
    secured: Secured,
) -> None:
    marker = uuid.uuid4().hex
    async with connect(
        secured.ws("consume", "secure-out"),
        additional_headers={**bearer("alice-token"), "X-Marker": marker},
    ) as socket:
        await socket.ping()

    def is_mine(kind: str) -> Any:
        def wanted(item: ConsumedRecord) -> bool:
            value = item.record.value
            return (
                isinstance(value, dict)
                and value["type"] == kind
                and value["data"]["httpRequestHeaders"].get("X-Marker") == marker
            )

        return wanted

    connected = await read_until(secured.kafka, secured.events, is_mine("ClientConnected"))
    disconnected = await read_until(secured.kafka, secured.events, is_mine("ClientDisconnected"))
    event = connected.record.value
    assert event["category"] == "Gateway"
    assert event["source"]["tenant"] == TENANT
    assert event["source"]["applicationId"] == APP_ID
    assert event["source"]["gateway"]["id"] == "secure-out"
    assert "configuration" not in event["source"]["gateway"]["authentication"]
    headers = {key.lower() for key in event["data"]["httpRequestHeaders"]}
    assert "authorization" not in headers
    assert "alice-token" not in json.dumps(event)
    assert disconnected.record.value["timestamp"] >= event["timestamp"]


async def test_no_token_appears_in_any_log_line_or_error_body(
    secured: Secured, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = ["alice-token", "wrong-token-5f2e", "down-token", "nosubject-token"]
    bodies: list[str] = []
    caplog.set_level("DEBUG")
    for token in tokens:
        for how in ("query", "header", "test"):
            params = {"credentials": token} if how == "query" else {}
            if how == "test":
                params = {"test-credentials": token}
            headers = bearer(token) if how == "header" else {}
            for kind, gateway in (("produce", "secure-in"), ("service", "secure-service")):
                response = await client.post(
                    secured.http(kind, gateway),
                    params={**params, "option:timeout": "0.2"} if kind == "service" else params,
                    headers=headers,
                    json={"value": "v"},
                )
                bodies.append(response.text)
        try:
            async with connect(
                secured.ws("consume", "secure-out"),
                subprotocols=[Subprotocol("bearer"), Subprotocol(token)],
            ) as socket:
                await socket.ping()
        except InvalidStatus as refused:
            bodies.append((refused.response.body or b"").decode())
    # This test's own clients log the URLs they call (with the query credentials): those lines
    # are the client's, not the gateway's.
    logged = "\n".join(
        record.getMessage() + (record.exc_text or "")
        for record in caplog.records
        if not record.name.startswith("websockets.client")
        and secured.url not in record.getMessage()
    )
    assert caplog.records  # the gateway did log (httpx calls, warnings): the check means something
    for token in tokens:
        assert token not in logged
        assert not [body for body in bodies if token in body]
