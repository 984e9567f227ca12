"""The jwt provider with a shared secret, a PEM public key and a JWKS endpoint."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from auth.jwt import JwtProvider
from auth.provider import AuthenticationFailed
from auth.provider_config import InvalidProviderConfiguration
from auth.providers import build_provider
from tests.auth.jwks_server import JwksServer, jwks_server

SECRET = "a-test-secret-of-at-least-32-bytes!!"
ISSUER = "https://issuer.example"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "api",
        "sub": "user-7",
        "email": "u7@example.com",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 600,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode({"alg": "HS256"}, payload, OctKey.import_key(secret))


@pytest.fixture
async def secret_provider() -> AsyncIterator[JwtProvider]:
    provider = JwtProvider({"secretKey": SECRET, "issuer": ISSUER, "audience": "api"})
    yield provider
    await provider.aclose()


async def test_a_valid_token_gives_subject_and_string_claims(
    secret_provider: JwtProvider,
) -> None:
    identity = await secret_provider.authenticate(hs256(claims()))
    assert identity.principal["subject"] == "user-7"
    assert identity.principal["email"] == "u7@example.com"
    assert "roles" not in identity.principal  # not a string claim
    assert identity.expires_at == claims()["exp"]


@pytest.mark.parametrize(
    "token",
    [
        hs256(claims(iss="https://other")),
        hs256(claims(aud="other-api")),
        hs256(claims(exp=None)),
        hs256(claims(exp=int(time.time()) - 3600)),
        hs256(claims(), secret="another-secret-of-at-least-32-bytes"),
        hs256(claims(sub=None)),
    ],
    ids=["issuer", "audience", "no-exp", "expired", "other-secret", "no-subject"],
)
async def test_bad_tokens_are_rejected(secret_provider: JwtProvider, token: str) -> None:
    with pytest.raises(AuthenticationFailed):
        await secret_provider.authenticate(token)


async def test_an_rs256_token_is_refused_by_an_hmac_configuration(
    secret_provider: JwtProvider,
) -> None:
    key = RSAKey.generate_key(2048)
    with pytest.raises(AuthenticationFailed):
        await secret_provider.authenticate(jwt.encode({"alg": "RS256"}, claims(), key))


async def test_a_pem_public_key_verifies_rs256() -> None:
    key = RSAKey.generate_key(2048)
    provider = JwtProvider({"publicKey": key.as_pem(private=False).decode(), "authClaim": "email"})
    try:
        identity = await provider.authenticate(jwt.encode({"alg": "RS256"}, claims(), key))
        assert identity.principal["subject"] == "u7@example.com"
    finally:
        await provider.aclose()


async def test_a_jwks_uri_verifies_tokens_by_kid() -> None:
    server: JwksServer
    async with jwks_server() as server:
        key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        server.keys.append(key)
        provider = build_provider("jwt", {"jwksUri": server.url}, tenant="t")
        try:
            token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims(), key)
            assert (await provider.authenticate(token)).principal["subject"] == "user-7"
        finally:
            await provider.aclose()


@pytest.mark.parametrize(
    "configuration",
    [
        {},
        {"secretKey": "short"},
        {"secretKey": SECRET, "publicKey": "x"},
        {"secretKey": SECRET, "algorithms": ["RS256"]},
        {"jwksUri": "ftp://keys"},
    ],
    ids=["no-key", "short-secret", "two-keys", "mixed-algorithms", "bad-url"],
)
def test_a_wrong_configuration_names_the_key(configuration: dict[str, Any]) -> None:
    with pytest.raises(InvalidProviderConfiguration) as wrong:
        build_provider("jwt", configuration, tenant="t")
    assert "configuration." in str(wrong.value)
