"""examples/google-service: a Quart python-service behind an agent-id service gateway with
Google sign-in. ID tokens are minted here and checked against a local stand-in for Google's
JWKS endpoint (the example's secrets.yaml reads its address from GOOGLE_JWKS_URI). The service
sees who the user is as a header, never the token; users see only their own notes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.auth.google_tokens import CLIENT_ID, FakeClock, claims, new_key, sign
from tests.auth.jwks_server import JwksServer
from tests.examples.support import EXAMPLES, Example, sluice_run

pytestmark = pytest.mark.kafka

APP = EXAMPLES / "google-service" / "notes-app"
SECRETS = EXAMPLES / "google-service" / "secrets.yaml"


@pytest.fixture
async def notes(jwks: JwksServer, kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Example]:
    environ = {"GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_JWKS_URI": jwks.url}
    extra = ["-s", str(SECRETS)]
    # No topics to delete afterwards: the application has none.
    async with sluice_run(
        APP, kafka_bootstrap, tmp_path, extra, environ=environ, delete_topics_after=False
    ) as running:
        yield running


async def test_each_user_sees_their_own_notes(notes: Example, jwks: JwksServer) -> None:
    alice = sign(jwks.keys[0], claims(FakeClock(), sub="alice-id", email="alice@example.com"))
    bob = sign(jwks.keys[0], claims(FakeClock(), sub="bob-id", email="bob@example.com"))
    base = notes.http_url("service", "notes")
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        # curl -H "Authorization: Bearer $TOKEN" .../notes/me?param:sessionId=s1
        me = await http.get(
            f"{base}/me",
            params={"param:sessionId": "s1"},
            headers={"Authorization": f"Bearer {alice}"},
        )
        assert me.status_code == 200, me.text
        assert me.json() == {"user": "alice-id", "session": "s1"}

        added = await http.post(
            f"{base}/notes",
            json={"text": "buy milk"},
            headers={"Authorization": f"Bearer {alice}", "langstream-client-user-id": "bob-id"},
        )
        assert added.status_code == 201, added.text
        assert added.json() == {"user": "alice-id", "notes": ["buy milk"]}

        # Bob, with his token in the credentials query parameter, has no notes.
        listed = await http.get(f"{base}/notes", params={"credentials": bob})
        assert listed.json() == {"user": "bob-id", "notes": []}

        # No token, or one Google did not sign: 401 from the gateway, the service never asked.
        assert (await http.get(f"{base}/notes")).status_code == 401
        forged = sign(new_key(jwks.keys[0].kid or ""), claims(FakeClock(), sub="alice-id"))
        response = await http.get(f"{base}/notes", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
    assert all(alice not in line and bob not in line for line in notes.lines)
