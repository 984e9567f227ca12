"""One gateway under Hypercorn guarding its gateways with the google and github providers,
pointed at local stand-ins for Google's JWKS endpoint and GitHub's API (docs/auth.md,
"Tests"). The providers' clock is a :class:`FakeClock` the tests move, so key lifetimes and
cooldowns are exercised without waiting."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.serving import serving
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port
from tests.auth.github_server import CLIENT_ID as GITHUB_CLIENT_ID
from tests.auth.github_server import FakeGithub, github_server
from tests.auth.google_tokens import CLIENT_ID, FakeClock, new_key
from tests.auth.jwks_server import JwksServer, jwks_server
from tests.gateway.support import APP_ID, TENANT, TopicProbe, unique, write_app

pytestmark = pytest.mark.kafka

ORIGIN = "https://app.example"
USER_HEADER = "langstream-client-user-id"


@dataclass
class Guarded:
    """The running gateway and everything it talks to."""

    url: str
    topic: str
    out_topic: str
    clock: FakeClock
    jwks: JwksServer
    cold: JwksServer
    fresh: JwksServer
    github: FakeGithub
    probe: TopicProbe

    def http(self, gateway: str) -> str:
        return f"{self.url}/api/gateways/produce/{TENANT}/{APP_ID}/{gateway}"

    def ws(self, kind: str, gateway: str, query: str = "") -> str:
        base = self.url.replace("http://", "ws://", 1)
        return f"{base}/v1/{kind}/{TENANT}/{APP_ID}/{gateway}{query}"

    async def written(self, topic: str | None = None) -> int:
        """Records ever written to ``topic`` (default: the produce gateways' topic)."""
        bounds = await self.probe.bounds(topic or self.topic)
        return sum(last for _, last in bounds.values())

    async def records(self, topic: str | None = None) -> list[Any]:
        return await self.probe.records(topic or self.topic)


def _google(jwks_url: str, *, test_mode: bool = False) -> str:
    return f"""
    authentication:
      provider: google
      allow-test-mode: {str(test_mode).lower()}
      configuration:
        clientId: {CLIENT_ID}
        jwksUri: {jwks_url}
        hostedDomain: example.com"""


def _github(api_url: str, extra: str = "") -> str:
    return f"""
    authentication:
      provider: github
      configuration:
        apiUrl: {api_url}{extra}"""


def _produce(gateway: str, topic: str, authentication: str, field: str = "subject") -> str:
    return f"""
  - id: {gateway}
    type: produce
    topic: {topic}{authentication}
    produce-options:
      headers:
        - key: {USER_HEADER}
          value-from-authentication: {field}"""


def gateways_yaml(topic: str, out_topic: str, jwks: str, cold: str, fresh: str, github: str) -> str:
    check = f"\n        clientId: {GITHUB_CLIENT_ID}\n        clientSecret: s3cret"
    return "gateways:" + "".join(
        [
            _produce("google-in", topic, _google(jwks)),
            _produce("google-verified", topic, _google(jwks), "email_verified"),
            _produce("google-cold", topic, _google(cold)),
            _produce("google-fresh", topic, _google(fresh)),
            _produce("google-test-mode", topic, _google(jwks, test_mode=True)),
            _produce("github-in", topic, _github(github), "login"),
            _produce("github-check", topic, _github(github, check)),
            _produce("github-ghes", topic, _github(f"{github}/api/v3"), "login"),
            _produce("github-email", topic, _github(github), "email"),
            _produce("github-down", topic, _github("http://127.0.0.1:9"), "login"),
            f"""
  - id: google-session
    type: produce
    topic: {topic}
    parameters: [sessionId]{_google(jwks)}""",
            f"""
  - id: google-out
    type: consume
    topic: {out_topic}{_google(jwks)}
    consume-options:
      filters:
        headers:
          - key: {USER_HEADER}
            value-from-authentication: subject
""",
        ]
    )


@contextlib.asynccontextmanager
async def guarded_gateway(
    kafka: KafkaSettings, directory: Path, settings: GatewaySettings
) -> AsyncIterator[Guarded]:
    """A fresh guarded gateway, stand-ins and topics; all gone after the block."""
    clock = FakeClock()
    topic, out_topic = unique("security-in"), unique("security-out")
    async with (
        jwks_server() as jwks,
        jwks_server() as cold,
        jwks_server() as fresh,
        github_server() as github,
    ):
        jwks.keys += [new_key("k1"), new_key("k-extra")]
        fresh.keys.append(jwks.keys[0])
        cold.status = 500
        yaml = gateways_yaml(topic, out_topic, jwks.url, cold.url, fresh.url, github.url)
        application = load_application(
            write_app(directory, {topic: 1, out_topic: 1}, yaml), name=APP_ID
        )
        topics = list(application.topics.values())
        await ensure_topics(kafka, topics)
        app = create_app({(TENANT, APP_ID): application}, kafka, settings, clock=clock)
        try:
            async with (
                TopicProbe(kafka, topics) as probe,
                serving(app, LOOPBACK, free_port()) as url,
            ):
                yield Guarded(url, topic, out_topic, clock, jwks, cold, fresh, github, probe)
        finally:
            await delete_topics(kafka, [t.name for t in topics])


@pytest.fixture(scope="module")
async def guarded(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Guarded]:
    """The module's guarded gateway: origins limited to ``ORIGIN``, no failure limiter (the
    flood cases count JWKS fetches, not 429s; H7 has its own gateway)."""
    settings = GatewaySettings(allowed_origins=(ORIGIN,), auth_failure_burst=None)
    directory = tmp_path_factory.mktemp("security") / "app"
    async with guarded_gateway(KafkaSettings(kafka_bootstrap), directory, settings) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        yield http


@pytest.fixture
def restore(guarded: Guarded) -> Iterator[Guarded]:
    """``guarded``, with the stand-ins put back to normal after the test."""
    yield guarded
    guarded.jwks.status, guarded.jwks.body = 200, None
    guarded.github.mode, guarded.github.issued_to = "normal", GITHUB_CLIENT_ID


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def gateway_log(caplog: pytest.LogCaptureFixture, guarded: Guarded) -> str:
    """Every captured log message but the test client's own request lines (httpx logs the URLs
    it calls at INFO, the websockets client its request at DEBUG): what the gateway logged."""
    return "\n".join(
        record.getMessage()
        for record in caplog.records
        if not (record.name == "httpx" and guarded.url in record.getMessage())
        and not record.name.startswith("websockets.client")
    )
