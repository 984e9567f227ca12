"""H1-H13, the GitHub cases of docs/auth.md: GitHub tokens through the real gateway, against a
local stand-in for GitHub's API. Each case uses tokens of its own, so the provider's cache of
one case does not answer another's."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.settings import GatewaySettings
from sluice.kafka import KafkaSettings
from tests.auth.github_server import CLIENT_ID, OCTOCAT
from tests.gateway.support import assert_problem
from tests.security.conftest import USER_HEADER, Guarded, bearer, gateway_log, guarded_gateway

pytestmark = pytest.mark.kafka


def new_user(guarded: Guarded, **fields: object) -> str:
    """A token of a new GitHub user (octocat's fields, changed by ``fields``)."""
    token = f"gho_{secrets.token_hex(16)}"
    guarded.github.users[token] = {**OCTOCAT, **fields}
    return token


async def post(
    guarded: Guarded, client: httpx.AsyncClient, token: str, gateway: str = "github-in"
) -> httpx.Response:
    return await client.post(guarded.http(gateway), headers=bearer(token), json={"value": "x"})


async def produced_header(
    guarded: Guarded, client: httpx.AsyncClient, token: str, gateway: str = "github-in"
) -> str:
    before = await guarded.written()
    response = await post(guarded, client, token, gateway)
    assert response.status_code == 200, response.text
    return str((await guarded.records())[before].headers[USER_HEADER])


async def refused(
    guarded: Guarded,
    client: httpx.AsyncClient,
    token: str,
    status: int = 401,
    gateway: str = "github-in",
) -> httpx.Response:
    before = await guarded.written()
    response = await post(guarded, client, token, gateway)
    assert_problem(response, status)
    assert await guarded.written() == before
    return response


async def test_H1_a_user_is_accepted_with_its_id_as_a_string(
    guarded: Guarded, client: httpx.AsyncClient
) -> None:
    token = new_user(guarded)
    assert await produced_header(guarded, client, token) == "octocat"
    # github-check's header is the subject, which is the numeric id as a string.
    assert await produced_header(guarded, client, token, "github-check") == "583231"


async def test_H2_bad_credentials_are_refused(guarded: Guarded, client: httpx.AsyncClient) -> None:
    response = await refused(guarded, client, f"gho_{secrets.token_hex(16)}")
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(("mode", "retry_after"), [("ratelimit", 60), ("429", 7)])
async def test_H3_rate_limits_are_503_and_not_remembered(
    restore: Guarded, client: httpx.AsyncClient, mode: str, retry_after: int
) -> None:
    guarded = restore
    token = new_user(guarded)
    guarded.github.mode = mode
    response = await refused(guarded, client, token, status=503)
    assert response.headers["retry-after"] == str(retry_after)
    guarded.github.mode = "normal"
    assert await produced_header(guarded, client, token) == "octocat"


async def test_H4_failures_of_github_are_503(restore: Guarded, client: httpx.AsyncClient) -> None:
    guarded = restore
    token = new_user(guarded)
    guarded.github.mode = "500"
    await refused(guarded, client, token, status=503)
    await refused(guarded, client, token, status=503, gateway="github-down")  # refused connection


@pytest.mark.parametrize("mode", ["garbage", "message", "no-id"])
async def test_H5_odd_answers_never_give_a_principal(
    restore: Guarded, client: httpx.AsyncClient, mode: str
) -> None:
    guarded = restore
    guarded.github.mode = mode
    await refused(guarded, client, new_user(guarded), status=503)


async def test_H6_a_valid_token_is_asked_once_within_the_ttl(
    guarded: Guarded, client: httpx.AsyncClient
) -> None:
    token = new_user(guarded)
    calls = len(guarded.github.calls)
    await produced_header(guarded, client, token)
    await produced_header(guarded, client, token)
    assert len(guarded.github.calls) == calls + 1


async def test_H7_an_invalid_token_is_asked_once_per_negative_ttl(
    guarded: Guarded, client: httpx.AsyncClient
) -> None:
    token = f"gho_{secrets.token_hex(16)}"
    calls = len(guarded.github.calls)
    for _ in range(100):
        await refused(guarded, client, token)
    assert len(guarded.github.calls) == calls + 1
    guarded.clock.advance(11)  # the negative entry (10 s) expired
    await refused(guarded, client, token)
    assert len(guarded.github.calls) == calls + 2


@pytest.fixture(scope="module")
async def limited(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Guarded]:
    """A guarded gateway whose clients may fail 5 times, then once a second."""
    settings = GatewaySettings(auth_failure_burst=5, auth_failures_per_second=1.0)
    directory = tmp_path_factory.mktemp("limited") / "app"
    async with guarded_gateway(KafkaSettings(kafka_bootstrap), directory, settings) as running:
        yield running


async def test_H7_a_client_that_keeps_failing_gets_429(
    limited: Guarded, client: httpx.AsyncClient
) -> None:
    guarded = limited
    good = new_user(guarded)
    for _ in range(5):
        await refused(guarded, client, f"gho_{secrets.token_hex(16)}")
    calls = len(guarded.github.calls)
    response = await refused(guarded, client, f"gho_{secrets.token_hex(16)}", status=429)
    assert response.headers["retry-after"] == "1"
    # While refused, the client's tokens are not checked at all, valid ones included.
    await refused(guarded, client, good, status=429)
    assert len(guarded.github.calls) == calls
    await asyncio.sleep(1.2)  # a second later, one failure is regained: tokens are checked again
    assert await produced_header(guarded, client, good) == "octocat"


async def test_H8_a_revoked_token_works_until_its_entry_expires(
    guarded: Guarded, client: httpx.AsyncClient
) -> None:
    token = new_user(guarded)
    await produced_header(guarded, client, token)
    guarded.github.revoked.add(token)
    await produced_header(guarded, client, token)  # cached for 60 s: the revocation window
    guarded.clock.advance(61)
    await refused(guarded, client, token)


async def test_H9_the_check_token_endpoint(restore: Guarded, client: httpx.AsyncClient) -> None:
    guarded = restore
    checked = len(guarded.github.checked)
    await produced_header(guarded, client, new_user(guarded), "github-check")
    assert guarded.github.checked[checked:] == [CLIENT_ID]
    revoked = new_user(guarded)
    guarded.github.mode = "revoked"  # /user still answers, check-token says 404
    await refused(guarded, client, revoked, gateway="github-check")
    guarded.github.mode = "unprocessable"
    await refused(guarded, client, new_user(guarded), gateway="github-check")
    guarded.github.mode = "normal"
    guarded.github.issued_to = "another-app"  # X-OAuth-Client-Id names another app
    await refused(guarded, client, new_user(guarded), gateway="github-check")


async def test_H10_an_enterprise_api_url(guarded: Guarded, client: httpx.AsyncClient) -> None:
    calls = len(guarded.github.calls)
    assert await produced_header(guarded, client, new_user(guarded), "github-ghes") == "octocat"
    assert guarded.github.calls[calls:] == ["/api/v3/user"]


async def test_H11_a_null_email(guarded: Guarded, client: httpx.AsyncClient) -> None:
    response = await refused(guarded, client, new_user(guarded), gateway="github-email")
    assert "email" in response.json()["detail"]
    public = new_user(guarded, email="octo@example.com")
    assert await produced_header(guarded, client, public, "github-email") == "octo@example.com"


@pytest.mark.parametrize(
    "token", ["with space", "tab\tin", "x" * 256, "ünïcödé", "semi;colon", 'quote"d']
)
async def test_H12_malformed_tokens_fail_without_a_call(
    guarded: Guarded, client: httpx.AsyncClient, token: str
) -> None:
    calls = len(guarded.github.calls)
    before = await guarded.written()
    response = await client.post(
        guarded.http("github-in"), params={"credentials": token}, json={"value": "x"}
    )
    assert_problem(response, 401)
    assert len(guarded.github.calls) == calls
    assert await guarded.written() == before


async def test_H13_no_token_or_user_body_in_the_logs(
    restore: Guarded, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    guarded = restore
    caplog.set_level(logging.INFO)
    good, bad = new_user(guarded, name="Mona Secretname"), f"gho_{secrets.token_hex(16)}"
    for mode in ("normal", "garbage", "500", "ratelimit"):
        guarded.github.mode = mode
        for token in (good, bad):
            await post(guarded, client, token)
            await post(guarded, client, token, "github-check")
    logged = gateway_log(caplog, guarded)
    for secret in (good, bad, good.removeprefix("gho_"), "Mona Secretname", "583231"):
        assert secret not in logged


@pytest.fixture(scope="module")
async def proxied(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Guarded]:
    """A limited gateway behind a proxy that appends the client's address to X-Forwarded-For."""
    settings = GatewaySettings(
        auth_failure_burst=3, auth_failures_per_second=0.01, client_ip_header="X-Forwarded-For"
    )
    directory = tmp_path_factory.mktemp("proxied") / "app"
    async with guarded_gateway(KafkaSettings(kafka_bootstrap), directory, settings) as running:
        yield running


async def test_H7_behind_a_proxy_each_client_has_its_own_limit_and_cannot_spoof_another(
    proxied: Guarded, client: httpx.AsyncClient
) -> None:
    async def attempt(forwarded: str) -> int:
        response = await client.post(
            proxied.http("github-in"),
            headers={**bearer(f"gho_{secrets.token_hex(16)}"), "X-Forwarded-For": forwarded},
            json={"value": "x"},
        )
        return response.status_code

    for _ in range(3):
        assert await attempt("93.184.216.34") == 401
    assert await attempt("93.184.216.34") == 429
    # What a client writes itself stands left of what the edge proxy appended: no way out.
    assert await attempt("151.101.1.69, 93.184.216.34") == 429
    assert await attempt("93.184.216.34, 10.0.0.5") == 429  # an internal hop after the edge
    assert await attempt("151.101.1.69") == 401  # another client keeps its own budget
