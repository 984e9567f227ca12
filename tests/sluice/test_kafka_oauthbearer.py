"""SASL OAUTHBEARER end to end: a real Kafka node validating tokens against a JWKS endpoint
(Kafka's OAuthBearerValidatorCallbackHandler), and Sluice's clients getting their tokens from an
OAuth token endpoint with the client-credentials grant, configured with Kafka's Java properties.
The identity provider is a fake on loopback (an internet service); the broker is real."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from joserfc.jwk import RSAKey
from quart import Quart, Response, request

from sluice.application.model import TopicSpec
from sluice.errors import KafkaError
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.kafka.admin import ensure_topics
from sluice.kafka.local import LocalKafkaSettings
from sluice.kafka.local.cluster import LocalClusterSettings, LocalKafkaCluster
from sluice.record import Record
from tests.auth.google_tokens import new_key, sign
from tests.loopback import serve_on_loopback

pytestmark = pytest.mark.kafka

CLIENT_ID, SECRET = "sluice-app", "s3cret/with:odd&chars"
AUDIENCE = "kafka"


@dataclass
class IdentityProvider:
    """A token endpoint (client credentials, Basic authentication) and its JWKS."""

    key: RSAKey = field(default_factory=lambda: new_key("k1"))
    base_url: str = ""
    issued: int = 0
    refused: int = 0

    def app(self) -> Quart:
        app = Quart(__name__)

        @app.post("/token")
        async def token() -> Response:
            # Kafka's Java client URL-encodes both parts before making the Basic credentials.
            pair = f"{quote(CLIENT_ID, safe='')}:{quote(SECRET, safe='')}"
            expected = base64.b64encode(pair.encode()).decode()
            form = await request.form
            if (
                request.headers.get("Authorization") != f"Basic {expected}"
                or form.get("grant_type") != "client_credentials"
            ):
                self.refused += 1
                return Response('{"error": "invalid_client"}', status=401)
            self.issued += 1
            now = int(time.time())
            claims = {"sub": CLIENT_ID, "aud": AUDIENCE, "iat": now, "exp": now + 300}
            claims["scope"] = form.get("scope", "")
            body = f'{{"access_token": "{sign(self.key, claims)}", "expires_in": 300}}'
            return Response(body, content_type="application/json")

        @app.get("/jwks")
        async def jwks() -> Response:
            document = {"keys": [self.key.as_dict(private=False)]}
            return Response(json.dumps(document), content_type="application/json")

        return app


@dataclass(frozen=True)
class OAuthCluster:
    provider: IdentityProvider
    bootstrap: str

    def properties(self, secret: str = SECRET) -> dict[str, str]:
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER",
            "sasl.jaas.config": "org.apache.kafka.common.security.oauthbearer."
            f'OAuthBearerLoginModule required clientId="{CLIENT_ID}" clientSecret="{secret}" '
            'scope="kafka";',
            "sasl.oauthbearer.token.endpoint.url": f"{self.provider.base_url}/token",
            "sasl.login.callback.handler.class": "org.apache.kafka.common.security."
            "oauthbearer.OAuthBearerLoginCallbackHandler",
        }


@pytest.fixture(scope="module")
async def oauth_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OAuthCluster]:
    provider = IdentityProvider()
    async with serve_on_loopback(provider.app()) as base_url:
        provider.base_url = base_url
        jwks = f"{base_url}/jwks"
        base = LocalKafkaSettings(start_timeout=180, stop_grace=5)
        settings = LocalClusterSettings(
            brokers=1,
            sasl="oauthbearer",
            data_dir=Path(tmp_path_factory.mktemp("oauth-kafka")),
            base=base,
            jvm_options=(
                *LocalClusterSettings().jvm_options,
                f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={jwks}",
            ),
            extra_properties={
                "sasl.oauthbearer.jwks.endpoint.url": jwks,
                "sasl.oauthbearer.expected.audience": AUDIENCE,
            },
        )
        # The cluster's own readiness probe has no token: it waits for the port instead.
        cluster = LocalKafkaCluster(settings)
        async with cluster:
            yield OAuthCluster(provider, cluster.bootstrap_servers)


async def test_clients_authenticate_with_tokens_from_the_token_endpoint(
    oauth_cluster: OAuthCluster,
) -> None:
    settings = KafkaSettings.from_properties(oauth_cluster.properties())
    issued = oauth_cluster.provider.issued
    topic = TopicSpec(f"oauth-{uuid.uuid4().hex[:8]}", creation_mode="create-if-not-exists")
    assert await ensure_topics(settings, [topic]) == (topic.name,)
    async with Producer(settings) as producer:
        await producer.send(topic.name, Record("hello over oauth"), source="/test")
    async with Consumer(settings, [topic], start_at="beginning") as consumer:
        items = await consumer.poll(timeout_ms=10_000)
    values = [i.record.value for i in items if isinstance(i, ConsumedRecord)]
    assert values == ["hello over oauth"]
    # One token for the admin client, the producer and the consumer: it is reused until it
    # nears its expiry.
    assert oauth_cluster.provider.issued - issued == 1


async def test_a_refused_client_secret_is_named_not_shown(oauth_cluster: OAuthCluster) -> None:
    settings = KafkaSettings.from_properties(oauth_cluster.properties("wrong-secret"))
    refused = oauth_cluster.provider.refused
    with pytest.raises(KafkaError) as caught:
        await Producer(settings).start()
    assert "the OAuth token endpoint" in str(caught.value)
    assert "answered 401" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)
    assert not caught.value.retriable
    assert oauth_cluster.provider.refused > refused
