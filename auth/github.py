"""The ``github`` provider: GitHub (or GitHub Enterprise) access tokens.

``GET {apiUrl}/user`` with the token; only a 200 whose JSON object has ``login`` and ``id`` is a
user. With ``clientId``, the answer's ``X-OAuth-Client-Id`` must name it (the token was issued
to this OAuth app); with ``clientSecret`` as well, ``POST {apiUrl}/applications/{clientId}/token``
must confirm the token (404 / 422: not ours). 401 is an invalid token; rate limits (403 with
``x-ratelimit-remaining: 0``, 429), 5xx, timeouts and unexpected bodies mean GitHub cannot answer
now (503), never that the token is invalid.

Answers are cached by the token's sha256 (never the token): users for ``cacheSeconds``
(default 60), invalid tokens for ``negativeCacheSeconds`` (default 10); a revoked token is
accepted until its entry expires.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import httpx

from auth.clock import SYSTEM_CLOCK, Clock
from auth.provider import AuthenticationFailed, Identity, ProviderUnavailable
from auth.provider_config import ProviderConfig
from auth.tokens import check_token, fingerprint

__all__ = ["GITHUB_API_URL", "GithubProvider"]

GITHUB_API_URL: Final = "https://api.github.com"
_MAX_ENTRIES: Final = 10_000
_DEFAULT_RETRY: Final = 60
MAX_GITHUB_TOKEN_LENGTH: Final = 255
"""GitHub's documented upper bound for its token formats."""


def _retry_after(response: httpx.Response) -> int:
    value = response.headers.get("retry-after", "")
    if value.isdigit():
        return max(1, int(value))
    return _DEFAULT_RETRY


def _rate_limited(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    return response.status_code == 403 and response.headers.get("x-ratelimit-remaining") == "0"


def github_principal(user: Mapping[str, Any]) -> dict[str, str]:
    """login, id (as a string), name, email and subject (= id) of a ``/user`` answer."""
    principal = {"login": str(user["login"]), "id": str(user["id"]), "subject": str(user["id"])}
    for field in ("name", "email"):
        value = user.get(field)
        if isinstance(value, str) and value:
            principal[field] = value
    return principal


class GithubProvider:
    """Check GitHub tokens (see the module documentation)."""

    def __init__(
        self, configuration: Mapping[str, Any], *, clock: Clock = SYSTEM_CLOCK, timeout: float = 5.0
    ) -> None:
        config = ProviderConfig(configuration, "the github authentication provider")
        self.api_url = (config.url("apiUrl", "api-url", default=GITHUB_API_URL) or "").rstrip("/")
        self.client_id = config.string("clientId", "client-id")
        self.client_secret = config.string("clientSecret", "client-secret")
        if self.client_secret is not None and self.client_id is None:
            raise config.error("clientSecret", "needs clientId")
        self.positive_ttl = config.number("cacheSeconds", "cache-seconds", default=60.0)
        self.negative_ttl = config.number(
            "negativeCacheSeconds", "negative-cache-seconds", default=10.0
        )
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Identity | str]] = OrderedDict()
        self._client = httpx.AsyncClient(
            timeout=timeout,
            trust_env=False,
            follow_redirects=False,
            headers={"Accept": "application/vnd.github+json", "User-Agent": "sluice-gateway"},
        )

    async def authenticate(self, token: str) -> Identity:
        check_token(token)
        if len(token) > MAX_GITHUB_TOKEN_LENGTH:
            raise AuthenticationFailed(
                f"the credentials are longer than a GitHub token ({MAX_GITHUB_TOKEN_LENGTH})"
            )
        key = fingerprint(token)
        now = self._clock.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            if isinstance(cached[1], str):
                raise AuthenticationFailed(cached[1])
            return cached[1]
        try:
            identity = await self._ask(token)
        except AuthenticationFailed as failed:
            self._remember(key, failed.reason, self.negative_ttl)
            raise
        self._remember(key, identity, self.positive_ttl)
        return identity

    def _remember(self, key: str, answer: Identity | str, ttl: float) -> None:
        if ttl <= 0:
            return
        self._cache[key] = (self._clock.monotonic() + ttl, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > _MAX_ENTRIES:
            self._cache.popitem(last=False)

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, f"{self.api_url}{path}", **kwargs)
        except httpx.HTTPError as error:
            raise ProviderUnavailable(
                f"GitHub could not be reached ({type(error).__name__})"
            ) from None
        if _rate_limited(response):
            raise ProviderUnavailable(
                "GitHub's rate limit is exhausted", retry_after=_retry_after(response)
            )
        if response.status_code >= 500:
            raise ProviderUnavailable(f"GitHub answered {response.status_code}")
        return response

    async def _ask(self, token: str) -> Identity:
        response = await self._call("GET", "/user", headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 401:
            raise AuthenticationFailed("GitHub does not know the token")
        if response.status_code != 200:
            raise ProviderUnavailable(f"GitHub answered {response.status_code} for /user")
        try:
            user = response.json()
        except ValueError:
            user = None
        if not isinstance(user, dict) or not user.get("login") or user.get("id") is None:
            raise ProviderUnavailable("GitHub's /user answer is not a user")
        if self.client_id is not None:
            if response.headers.get("x-oauth-client-id") != self.client_id:
                raise AuthenticationFailed("the token was not issued to this application")
            if self.client_secret is not None:
                await self._check_token(token)
        return Identity(github_principal(user))

    async def _check_token(self, token: str) -> None:
        assert self.client_id is not None and self.client_secret is not None
        response = await self._call(
            "POST",
            f"/applications/{self.client_id}/token",
            json={"access_token": token},
            auth=(self.client_id, self.client_secret),
        )
        if response.status_code in (404, 422):
            raise AuthenticationFailed("GitHub says the token was not issued to this application")
        if response.status_code != 200:
            raise ProviderUnavailable(f"GitHub answered {response.status_code} checking the token")

    async def aclose(self) -> None:
        await self._client.aclose()
