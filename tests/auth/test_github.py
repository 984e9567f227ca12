"""The github provider against a local fake of GitHub's API (reference/security.md §4.2, H)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from quart import Quart, Response, jsonify, request

from auth.config import InvalidProviderConfiguration
from auth.github import GithubProvider
from auth.provider import AuthenticationFailed, ProviderUnavailable
from auth.providers import build_provider
from tests.loopback import serve_on_loopback

CLIENT_ID = "Iv1.client"
USERS = {"good-token": {"login": "octocat", "id": 583231, "name": "The Octocat", "email": None}}


@dataclass
class FakeGithub:
    url: str = ""
    calls: list[str] = field(default_factory=list)
    mode: str = "normal"
    issued_to: str = CLIENT_ID
    checked: list[str] = field(default_factory=list)


def _app(fake: FakeGithub) -> Quart:
    app = Quart(__name__)

    @app.get("/user")
    async def user() -> Any:
        fake.calls.append("/user")
        if fake.mode == "ratelimit":
            return Response("{}", status=403, headers={"x-ratelimit-remaining": "0"})
        if fake.mode == "429":
            return Response("{}", status=429, headers={"retry-after": "7"})
        if fake.mode == "500":
            return Response("oops", status=500)
        if fake.mode == "garbage":
            return Response("<html>hi</html>", status=200, content_type="text/html")
        if fake.mode == "message":
            return jsonify({"message": "hello"})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        found = USERS.get(token)
        if found is None:
            return Response('{"message": "Bad credentials"}', status=401)
        response = jsonify(found)
        response.headers["X-OAuth-Client-Id"] = fake.issued_to
        return response

    @app.post("/applications/<client_id>/token")
    async def check(client_id: str) -> Any:
        body = await request.get_json()
        fake.checked.append(client_id)
        if request.authorization is None or request.authorization.username != client_id:
            return Response("{}", status=401)
        if body.get("access_token") in USERS and fake.mode != "revoked":
            return jsonify({"id": 1})
        return Response("{}", status=404)

    return app


class FakeClock:
    def __init__(self) -> None:
        self.mono = 100.0

    def time(self) -> float:
        return 1e9 + self.mono

    def monotonic(self) -> float:
        return self.mono


@pytest.fixture
async def github() -> AsyncIterator[FakeGithub]:
    fake = FakeGithub()
    async with serve_on_loopback(_app(fake)) as url:
        fake.url = url
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


@pytest.mark.parametrize("token", ["with space", "new\nline", "x" * 9000, "ünï"])
async def test_h12_malformed_tokens_fail_without_a_call(
    provider: GithubProvider, github: FakeGithub, token: str
) -> None:
    with pytest.raises(AuthenticationFailed):
        await provider.authenticate(token)
    assert github.calls == []


def test_a_client_secret_needs_a_client_id() -> None:
    with pytest.raises(InvalidProviderConfiguration):
        build_provider("github", {"clientSecret": "s"}, tenant="t")
