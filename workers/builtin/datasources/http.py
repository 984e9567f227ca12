"""JSON over HTTP for the vector databases reached by their REST APIs (Pinecone, OpenSearch, Solr,
Astra's Data API).

One :class:`JsonHttp` per agent keeps an ``httpx`` connection pool to the service. A request
that gets 429 or a 5xx, or no answer (connection refused, reset, timed out), is tried again
``retries`` times with a growing pause (the service's ``Retry-After`` when it gives one, up to
:data:`MAX_PAUSE` seconds); each try waits ``timeout`` seconds at most. 401 and 403 are not
retried: they raise :class:`DataSourceError` saying the credentials were refused, naming the
datasource and the service's address. No message carries a credential: the headers are never
shown, and every secret of the resource is replaced by ``****`` in texts the service returns.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.jdbc import redact

__all__ = ["MAX_PAUSE", "HttpSettings", "JsonHttp", "RefusedCredentials", "number_key"]

MAX_PAUSE = 10.0
"""The longest pause between two tries, whatever ``Retry-After`` asks."""

_RETRIED = frozenset({429, 500, 502, 503, 504})


class RefusedCredentials(DataSourceError):
    """The service answered 401 or 403: the credentials of the resource are wrong or lack a
    right. Not retried."""


@dataclass(frozen=True)
class HttpSettings:
    """How one datasource reaches its service."""

    resource: str
    """The resource's name, in every message."""
    service: str
    """What the messages call it: ``pinecone index "docs"``..."""
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | httpx.Auth | None = field(default=None, repr=False)
    """Basic credentials, or an ``httpx.Auth`` that signs each request (AWS SigV4)."""
    timeout: float = 30.0
    retries: int = 3
    pause: float = 0.5
    """The first pause between tries (doubled each time)."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    verify: bool = True

    @property
    def where(self) -> str:
        return f'datasource "{self.resource}" ({self.service} at {self.base_url})'


class JsonHttp:
    """Requests with JSON bodies to one service (see the module's documentation)."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    @property
    def where(self) -> str:
        return self.settings.where

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.settings.base_url,
                headers=dict(self.settings.headers),
                auth=self.settings.auth,
                timeout=self.settings.timeout,
                verify=self.settings.verify,
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        allowed: tuple[int, ...] = (),
        ndjson: Sequence[Any] | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON body or None) of a request; statuses in ``allowed`` (404...)
        are answers too, other errors raise :class:`DataSourceError`. ``ndjson``: instead of
        ``body``, JSON values sent one per line (``application/x-ndjson``, OpenSearch's
        ``_bulk``), the last line ending with a newline too."""
        await self.start()
        assert self._client is not None
        if ndjson is not None:
            content: bytes | None = "".join(json.dumps(line) + "\n" for line in ndjson).encode()
            headers = {"Content-Type": "application/x-ndjson"}
        else:
            content = None if body is None else json.dumps(body).encode("utf-8")
            headers = {} if content is None else {"Content-Type": "application/json"}
        what = f"{method} {path}"
        for attempt in range(self.settings.retries + 1):
            last = attempt == self.settings.retries
            try:
                response = await self._client.request(
                    method, path, content=content, headers=headers, params=params
                )
            except httpx.TimeoutException:
                if last:
                    raise DataSourceError(
                        f"{self.where}: {what} got no answer within {self.settings.timeout:g} s "
                        f"({attempt + 1} tries)"
                    ) from None
                await asyncio.sleep(self._pause(attempt, None))
                continue
            except httpx.TransportError as error:
                if last:
                    reason = self._redact(str(error) or type(error).__name__)
                    raise DataSourceError(
                        f"{self.where}: {what} failed: {reason} ({attempt + 1} tries; is the "
                        "service up?)"
                    ) from None
                await asyncio.sleep(self._pause(attempt, None))
                continue
            status = response.status_code
            if status < 300 or status in allowed:
                return status, _decoded(response)
            if status in (401, 403):
                raise RefusedCredentials(
                    f"{self.where}: the service refused the credentials of the resource "
                    f"(HTTP {status} for {what}): {self._detail(response)}"
                )
            if status in _RETRIED and not last:
                await asyncio.sleep(self._pause(attempt, response.headers.get("Retry-After")))
                continue
            tries = f" ({attempt + 1} tries)" if status in _RETRIED else ""
            raise DataSourceError(
                f"{self.where}: {what} answered HTTP {status}{tries}: {self._detail(response)}"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(MAX_PAUSE, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(MAX_PAUSE, self.settings.pause * 2.0**attempt)

    def _detail(self, response: httpx.Response) -> str:
        text = response.text.strip().replace("\n", " ")
        if len(text) > 500:
            text = text[:500] + "..."
        return self._redact(text) or "(no body)"

    def _redact(self, text: str) -> str:
        return redact(text, self.settings.secrets)


def number_key(where: str, config: Mapping[str, Any], key: str, default: float) -> float:
    """The number >= 0 under ``key`` of a resource (Sluice's ``request-timeout-seconds`` and
    ``max-retries``...), ``default`` when absent."""
    value = config.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or number < 0:
        raise DataSourceResourceError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return number


def _decoded(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text
