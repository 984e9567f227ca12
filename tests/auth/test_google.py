"""The google provider against a local JWKS endpoint (docs/auth.md, "Tests")."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import pytest

from auth.google import GoogleProvider
from auth.provider import AuthenticationFailed, ProviderUnavailable
from tests.auth.google_tokens import CLIENT_ID, FakeClock, b64, claims, new_key, sign
from tests.auth.jwks_server import JwksServer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def provider(jwks: JwksServer, clock: FakeClock) -> AsyncIterator[GoogleProvider]:
    google = GoogleProvider(
        {"clientId": CLIENT_ID, "jwksUri": jwks.url, "hostedDomain": "example.com"},
        clock=clock,
    )
    yield google
    await google.aclose()


async def test_g00_a_valid_token_gives_the_principal(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    identity = await provider.authenticate(sign(jwks.keys[0], claims(clock)))
    assert identity.principal["subject"] == "1234567890"
    assert identity.principal["email"] == "alice@example.com"
    assert identity.principal["email_verified"] == "true"
    assert identity.expires_at == claims(clock)["exp"]


@pytest.mark.parametrize("token", ["abc", "a.b", "a.b.c.d", "!!.??.##", f"{b64({})}.x.y"])
async def test_g05_malformed_tokens_fail_without_a_jwks_fetch(
    provider: GoogleProvider, jwks: JwksServer, token: str
) -> None:
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate(token)
    assert jwks.fetches == 0


async def test_g06_alg_none_is_rejected(provider: GoogleProvider, clock: FakeClock) -> None:
    unsigned = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims(clock))}."
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate(unsigned)
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate(unsigned + "c2ln")


async def test_g07_hs256_signed_with_the_public_key_is_rejected(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    public_pem = jwks.keys[0].as_pem(private=False)
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'k1'})}.{b64(claims(clock))}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate(forged)


async def test_g09_a_signature_by_another_key_with_the_same_kid_fails(
    provider: GoogleProvider, clock: FakeClock
) -> None:
    impostor = new_key("k1")
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate(sign(impostor, claims(clock)))


async def test_g10_unknown_kids_refetch_at_most_once_per_cooldown(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    await provider.authenticate(sign(jwks.keys[0], claims(clock)))
    assert jwks.fetches == 1
    strangers = [new_key(f"nope-{index}") for index in range(10)]
    for stranger in strangers:  # within the cooldown of the first fetch: no refetch
        with pytest.raises(AuthenticationFailed):
            await provider.authenticate(sign(stranger, claims(clock)))
    assert jwks.fetches == 1
    clock.advance(61)
    for stranger in strangers:  # one refetch for the first unknown kid, then the cooldown
        with pytest.raises(AuthenticationFailed):
            await provider.authenticate(sign(stranger, claims(clock)))
    assert jwks.fetches == 2


async def test_g11_a_rotated_key_is_found_after_one_refetch(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    await provider.authenticate(sign(jwks.keys[0], claims(clock)))
    clock.advance(61)  # past the unknown-kid cooldown
    rotated = new_key("k2")
    jwks.keys.append(rotated)
    identity = await provider.authenticate(sign(rotated, claims(clock)))
    assert identity.principal["subject"] == "1234567890"
    assert jwks.fetches == 2


async def test_g14_jku_and_jwk_headers_are_rejected(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    key = jwks.keys[0]
    for header in ({"jku": "http://evil/keys"}, {"x5u": "http://evil/cert"}):
        with pytest.raises(AuthenticationFailed):
            await provider.authenticate(sign(key, claims(clock), **header))


@pytest.mark.parametrize(
    ("changes", "advance"),
    [
        ({"exp": None}, 0),  # G19 exp missing
        ({}, 3600 + 61),  # G16/G17 expired beyond the 60 s leeway
        ({"nbf": "future"}, 0),  # G18 not yet valid
        ({"iss": "https://evil"}, 0),  # G21
        ({"iss": "accounts.google.com.evil"}, 0),
        ({"aud": "someone-else"}, 0),  # G23
        ({"aud": [CLIENT_ID, "other"], "azp": "other"}, 0),  # G24
        ({"sub": None}, 0),  # G25
        ({"hd": "evil.com"}, 0),  # G26
        ({"exp": "soon"}, 0),  # G20
    ],
)
async def test_g16_to_g26_claims_are_checked(
    provider: GoogleProvider,
    jwks: JwksServer,
    clock: FakeClock,
    changes: dict[str, Any],
    advance: float,
) -> None:
    if changes.get("nbf") == "future":
        changes = {"nbf": int(clock.now) + 3600}
    token = sign(jwks.keys[0], claims(clock, **changes))
    clock.advance(advance)
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate(token)


async def test_g17_an_expiry_within_the_leeway_is_accepted(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    token = sign(jwks.keys[0], claims(clock))
    clock.advance(3600 + 30)
    await provider.authenticate(token)


async def test_g22_both_google_issuer_spellings_are_accepted(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    for issuer in ("accounts.google.com", "https://accounts.google.com"):
        await provider.authenticate(sign(jwks.keys[0], claims(clock, iss=issuer)))


async def test_g30_no_keys_at_all_is_unavailable_not_invalid(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    jwks.status = 500
    with pytest.raises(ProviderUnavailable) as unavailable:
        await provider.authenticate(sign(jwks.keys[0], claims(clock)))
    assert unavailable.value.retry_after >= 1


async def test_g31_stale_keys_serve_while_the_endpoint_fails(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    await provider.authenticate(sign(jwks.keys[0], claims(clock)))
    jwks.status = 503
    clock.advance(601)  # past max-age: a refetch is due, and fails
    identity = await provider.authenticate(sign(jwks.keys[0], claims(clock)))
    assert identity.principal["subject"] == "1234567890"
    assert jwks.fetches == 2


async def test_g32_cache_control_max_age_is_honoured(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    token = sign(jwks.keys[0], claims(clock))
    await provider.authenticate(token)
    clock.advance(599)
    await provider.authenticate(token)
    assert jwks.fetches == 1
    clock.advance(2)
    await provider.authenticate(token)
    assert jwks.fetches == 2


async def test_g33_concurrent_cold_requests_share_one_fetch(
    provider: GoogleProvider, jwks: JwksServer, clock: FakeClock
) -> None:
    token = sign(jwks.keys[0], claims(clock))
    await asyncio.gather(*(provider.authenticate(token) for _ in range(50)))
    assert jwks.fetches == 1
