"""OAUTHBEARER tokens for aiokafka: the OAuth 2 client-credentials grant, as Kafka's Java
``OAuthBearerLoginCallbackHandler`` does it.

``sasl.oauthbearer.token.endpoint.url`` is asked for a token with the client id and secret of
``sasl.jaas.config`` (HTTP Basic authentication, ``grant_type=client_credentials`` and the
``scope`` when given); the token is kept until shortly before ``expires_in`` runs out, and one
request serves every connection that asks meanwhile. A refused or failing request is a
:class:`~sluice.errors.KafkaError` naming the endpoint and its answer, never the secret.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final
from urllib.parse import quote

import httpx
from aiokafka.abc import AbstractTokenProvider

from sluice.errors import KafkaError

__all__ = ["ClientCredentialsTokens"]

_REFRESH_BEFORE: Final = 30.0
_TIMEOUT: Final = 10.0


class ClientCredentialsTokens(AbstractTokenProvider):  # type: ignore[misc]
    """An aiokafka token provider fetching tokens from an OAuth token endpoint."""

    def __init__(
        self, endpoint: str, client_id: str, client_secret: str, scope: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self._client_id, self._client_secret, self._scope = client_id, client_secret, scope
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Tokens fetched so far."""

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._token, lifetime = await self._fetch()
                self._expires = time.monotonic() + max(lifetime - _REFRESH_BEFORE, lifetime / 2)
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        # As Kafka's Java client: both parts URL-encoded before the Basic credentials are made.
        auth = (quote(self._client_id, safe=""), quote(self._client_secret, safe=""))
        what = f"the OAuth token endpoint {self.endpoint}"
        try:
            async with httpx.AsyncClient(timeout=_TIMEOUT, trust_env=False) as client:
                response = await client.post(self.endpoint, data=form, auth=auth)
        except httpx.HTTPError as error:
            raise KafkaError(f"{what} cannot be reached: {error}", retriable=True) from None
        self.fetches += 1
        if response.status_code != 200:
            detail = response.text[:200].replace(self._client_secret, "****")
            raise KafkaError(
                f"{what} answered {response.status_code}: {detail}",
                retriable=response.status_code >= 500,
            )
        try:
            body: Any = response.json()
            token = body["access_token"]
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise KafkaError(f"{what} answered without an access_token", retriable=False) from None
        if not isinstance(token, str) or not token:
            raise KafkaError(f"{what} answered without an access_token", retriable=False)
        return token, lifetime
