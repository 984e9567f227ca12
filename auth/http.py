"""The ``http`` provider: a token is valid when an HTTP endpoint of yours says so.

``GET {base-url}{path-template}`` with ``Authorization: Bearer <token>`` (``{tenant}`` in the
template is the gateway's tenant) and the configured ``headers``. An answer in
``accepted-statuses`` (default 200, 201) is valid; its JSON object body, if any, gives the
principal's string fields. Any other 4xx is invalid; 5xx, timeouts and connection errors mean the
endpoint is unavailable (503), never that the token is invalid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import httpx

from auth.provider import AuthenticationFailed, Identity, ProviderUnavailable
from auth.provider_config import ProviderConfig
from auth.tokens import check_token

__all__ = ["HttpProvider"]

_TIMEOUT: Final = 10.0


def _principal(response: httpx.Response) -> dict[str, str]:
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    fields: dict[str, str] = {}
    for key, value in body.items():
        if isinstance(value, str):
            fields[key] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            fields[key] = str(value)
    return fields


class HttpProvider:
    """Validate tokens against an HTTP endpoint (LangStream's ``http`` provider)."""

    def __init__(self, configuration: Mapping[str, Any], *, tenant: str) -> None:
        config = ProviderConfig(configuration, "the http authentication provider")
        base_url = config.string("base-url", "baseUrl", required=True) or ""
        template = config.string("path-template", "pathTemplate", default="") or ""
        self.url = base_url.rstrip("/") + template.replace("{tenant}", tenant)
        parsed = httpx.URL(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise config.error("base-url", f"must be an http(s) URL, not {base_url!r}")
        self.headers = config.mapping("headers")
        self.accepted = frozenset(
            config.integers("accepted-statuses", "acceptedStatuses", default=(200, 201))
        )
        self._client = httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=True, trust_env=False)

    async def authenticate(self, token: str) -> Identity:
        check_token(token)
        headers = {**self.headers, "Authorization": f"Bearer {token}"}
        try:
            response = await self._client.get(self.url, headers=headers)
        except httpx.HTTPError as error:
            raise ProviderUnavailable(
                f"the authentication endpoint could not be reached ({type(error).__name__})"
            ) from None
        if response.status_code in self.accepted:
            return Identity(_principal(response))
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(
                f"the authentication endpoint answered {response.status_code}"
            )
        raise AuthenticationFailed(f"the authentication endpoint answered {response.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()
