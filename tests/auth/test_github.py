"""The github provider against a local fake of GitHub's API (docs/auth.md, "Tests")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from auth.github import GithubProvider
from auth.provider import AuthenticationFailed, ProviderUnavailable
from auth.provider_config import InvalidProviderConfiguration
from auth.providers import build_provider
from tests.auth.github_server import CLIENT_ID, FakeGithub, github_server


class FakeClock:
    def __init__(self) -> None:
        self.mono = 100.0

    def time(self) -> float:
        return 1e9 + self.mono

    def monotonic(self) -> float:
        return self.mono


@pytest.fixture
async def github() -> AsyncIterator[FakeGithub]:
    async with github_server() as fake:
        yield fake


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def provider(github: FakeGithub, clock: FakeClock) -> AsyncIterator[GithubProvider]:
    made = GithubProvider({"apiUrl": github.url}, clock=clock)
    yield made
    await made.aclose()


async def test_h1_a_user_gives_login_and_a_string_id(provider: GithubProvider) -> None:
    identity = await provider.authenticate("good-token")
    assert identity.principal == {
        "login": "octocat",
        "id": "583231",
        "subject": "583231",
        "name": "The Octocat",
    }


async def test_h2_bad_credentials_are_invalid(provider: GithubProvider) -> None:
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate("bad-token")


@pytest.mark.parametrize(("mode", "retry_after"), [("ratelimit", 60), ("429", 7)])
async def test_h3_rate_limits_are_unavailable_and_not_cached(
    provider: GithubProvider, github: FakeGithub, mode: str, retry_after: int
) -> None:
    github.mode = mode
    with pytest.raises(ProviderUnavailable) as unavailable:
        await provider.authenticate("good-token")
    assert unavailable.value.retry_after == retry_after
    github.mode = "normal"
    assert (await provider.authenticate("good-token")).principal["login"] == "octocat"


@pytest.mark.parametrize("mode", ["500", "garbage", "message"])
async def test_h4_h5_failures_and_odd_bodies_are_unavailable(
    provider: GithubProvider, github: FakeGithub, mode: str
) -> None:
    github.mode = mode
    with pytest.raises(ProviderUnavailable):
        await provider.authenticate("good-token")


async def test_h4_an_unreachable_github_is_unavailable(clock: FakeClock) -> None:
    provider = GithubProvider({"apiUrl": "http://127.0.0.1:9"}, clock=clock)
    try:
        with pytest.raises(ProviderUnavailable):
            await provider.authenticate("good-token")
    finally:
        await provider.aclose()


async def test_h6_a_valid_token_is_asked_once_within_the_ttl(
    provider: GithubProvider, github: FakeGithub
) -> None:
    await provider.authenticate("good-token")
    await provider.authenticate("good-token")
    assert github.calls == ["/user"]


async def test_h7_an_invalid_token_is_asked_once_per_negative_ttl(
    provider: GithubProvider, github: FakeGithub, clock: FakeClock
) -> None:
    for _ in range(100):
        with pytest.raises(AuthenticationFailed):
            await provider.authenticate("bad-token")
    assert len(github.calls) == 1
    clock.mono += 11
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate("bad-token")
    assert len(github.calls) == 2


async def test_h8_a_revoked_token_works_until_its_entry_expires(
    github: FakeGithub, clock: FakeClock
) -> None:
    provider = GithubProvider(
        {"apiUrl": github.url, "clientId": CLIENT_ID, "clientSecret": "s3cret"}, clock=clock
    )
    try:
        await provider.authenticate("good-token")
        github.mode = "revoked"
        await provider.authenticate("good-token")  # cached
        clock.mono += 61
        with pytest.raises(AuthenticationFailed):
            await provider.authenticate("good-token")
    finally:
        await provider.aclose()


async def test_h9_check_token_and_client_id(github: FakeGithub, clock: FakeClock) -> None:
    provider = GithubProvider(
        {"apiUrl": github.url, "clientId": CLIENT_ID, "clientSecret": "s3cret"}, clock=clock
    )
    try:
        assert (await provider.authenticate("good-token")).principal["login"] == "octocat"
        assert github.checked == [CLIENT_ID]
    finally:
        await provider.aclose()
    github.issued_to = "another-app"
    other = GithubProvider({"apiUrl": github.url, "clientId": CLIENT_ID}, clock=clock)
    try:
        with pytest.raises(AuthenticationFailed):
            await other.authenticate("good-token")
    finally:
        await other.aclose()


async def test_h10_an_enterprise_api_url_is_used(github: FakeGithub, clock: FakeClock) -> None:
    provider = build_provider("github", {"apiUrl": f"{github.url}/"}, tenant="t")
    try:
        await provider.authenticate("good-token")
    finally:
        await provider.aclose()
    assert github.calls == ["/user"]


async def test_h11_a_missing_email_is_absent_from_the_principal(
    provider: GithubProvider,
) -> None:
    assert "email" not in (await provider.authenticate("good-token")).principal


@pytest.mark.parametrize("token", ["with space", "new\nline", "x" * 256, "x" * 9000, "ünï"])
async def test_h12_malformed_tokens_fail_without_a_call(
    provider: GithubProvider, github: FakeGithub, token: str
) -> None:
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate(token)
    assert github.calls == []


def test_a_client_secret_needs_a_client_id() -> None:
    with pytest.raises(InvalidProviderConfiguration):
        build_provider("github", {"clientSecret": "s"}, tenant="t")
