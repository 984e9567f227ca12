"""A google-protected service gateway (an agent-id proxy to a
python-service, ``langstream-client-user-id`` from the token's ``subject``) under ``sluice run``,
with ID tokens minted in the test and checked against a local JWKS server."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.auth.google_tokens import CLIENT_ID, FakeClock, claims, new_key, sign
from tests.auth.jwks_server import JwksServer
from tests.gateway.support import assert_problem
from tests.gateway.test_run_http_gateways import Running, sluice_run

pytestmark = pytest.mark.kafka

APP = Path(__file__).parent / "apps" / "google-service"
SERVICE = "/api/gateways/service/my-tenant/my-app/my-service"


@pytest.fixture
async def running(jwks: JwksServer, kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Running]:
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text(
        "secrets:\n"
        "  - id: google\n"
        "    data:\n"
        f"      client-id: {CLIENT_ID}\n"
        f"      jwks-uri: {jwks.url}\n"
    )
    extra = ["-s", str(secrets_file), "--test-auth", "google"]
    extra += ["--test-auth-config", f"clientId={CLIENT_ID}"]
    extra += ["--test-auth-config", f"jwksUri={jwks.url}"]
    async with sluice_run(APP, kafka_bootstrap, tmp_path, extra) as run:
        yield run


async def test_the_service_gets_the_subject_and_never_the_token(
    running: Running, jwks: JwksServer
) -> None:
    subject = f"user-{secrets.token_hex(4)}"
    token = sign(jwks.keys[0], claims(FakeClock(), sub=subject))
    async with httpx.AsyncClient(base_url=running.gateway, timeout=30, trust_env=False) as client:
        response = await client.post(
            f"{SERVICE}/ask",
            params={"param:sessionId": "s1", "q": "hello"},
            headers={
                "Authorization": f"Bearer {token}",
                "langstream-client-user-id": "mallory",  # a client cannot pose as someone
            },
            content=b'{"question": "who am i"}',
        )
        assert response.status_code == 200, response.text
        seen = response.json()
        assert seen["path"] == "/ask"
        assert seen["body"] == '{"question": "who am i"}'
        assert seen["headers"]["langstream-client-user-id"] == subject
        assert seen["headers"]["langstream-client-session-id"] == "s1"
        assert "authorization" not in seen["headers"]
        assert token not in response.text
        assert "q=hello" in seen["query"]

        # The same through the credentials query parameter: it is not forwarded either.
        response = await client.get(
            f"{SERVICE}/ask", params={"param:sessionId": "s2", "credentials": token}
        )
        assert response.status_code == 200, response.text
        assert token not in response.text
        assert response.json()["headers"]["langstream-client-user-id"] == subject

        # Test mode (allowed by the gateway, provider given with --test-auth): the
        # subject is the sha256 of the token.
        response = await client.get(
            f"{SERVICE}/ask", params={"param:sessionId": "s3", "test-credentials": token}
        )
        assert response.status_code == 200, response.text
        digest = hashlib.sha256(token.encode()).hexdigest()
        assert response.json()["headers"]["langstream-client-user-id"] == digest

        # No token, a forged one: 401 before anything reaches the service.
        response = await client.get(f"{SERVICE}/ask", params={"param:sessionId": "s1"})
        assert_problem(response, 401)
        forged = sign(new_key(jwks.keys[0].kid or ""), claims(FakeClock(), sub=subject))
        response = await client.get(
            f"{SERVICE}/ask",
            params={"param:sessionId": "s1"},
            headers={"Authorization": f"Bearer {forged}"},
        )
        assert_problem(response, 401)
    assert all(token not in line for line in running.lines)
