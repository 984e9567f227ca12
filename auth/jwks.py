"""A cache of an issuer's signing keys (JWKS), safe to put in front of untrusted tokens.

- Keys are kept for the ``Cache-Control: max-age`` of the answer (minus ``Age``), clamped to
  ``[min_ttl, max_ttl]``; ``default_ttl`` when the header is absent.
- Concurrent misses share one fetch (single flight).
- A token with an unknown ``kid`` makes the cache refetch at most once per ``cooldown``: rotated
  keys are picked up, and a flood of random ``kid`` values costs a bounded number of fetches.
- When the endpoint fails, the keys already known keep being used (stale-if-error) and no new
  fetch is tried before ``failure_backoff`` has passed. With no keys at all the cache raises
  :class:`~auth.provider.ProviderUnavailable` (503 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key, OctKey
from joserfc.jws import JWSRegistry

from auth.clock import SYSTEM_CLOCK, Clock
from auth.provider import ProviderUnavailable

__all__ = ["JwksCache", "KeySnapshot", "parse_jwks", "ttl_from_headers"]

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES: Final = 512 * 1024
"""Largest JWKS document read; Google's is about 1.5 KB."""

_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_STORE: Final = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|=|$)", re.IGNORECASE)


class JwksError(Exception):
    """Why one fetch did not give usable keys (internal: it never leaves this module)."""


@dataclass(frozen=True)
class KeySnapshot:
    """The usable keys of one JWKS answer."""

    keys: tuple[Key, ...]

    def find(self, kid: str | None, alg: str) -> Key | None:
        """The key with ``kid`` that can verify ``alg``; without a ``kid``, the only such key.

        A set with several candidates and no ``kid`` gives ``None``: trying every key would let
        a token pick its key.
        """
        candidates = [key for key in self.keys if _fits(key, alg)]
        if kid is None:
            return candidates[0] if len(candidates) == 1 else None
        return next((key for key in candidates if key.kid == kid), None)


def _fits(key: Key, alg: str) -> bool:
    declared = key.get("alg")
    if declared is not None and declared != alg:
        return False
    model = JWSRegistry.algorithms.get(alg)
    if model is None:
        return False
    try:
        model.check_key(key)
    except JoseError:
        return False
    return True


def parse_jwks(body: bytes) -> KeySnapshot:
    """The signature keys of a JWKS document; keys of unknown types, encryption keys and
    symmetric keys (which a public document must not carry) are skipped.

    Raises :class:`JwksError` when the document is not a JWKS or has no usable key.
    """
    try:
        document = json.loads(body)
    except ValueError:
        raise JwksError("the answer is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError('the answer is not a JWKS (no "keys" list)')
    keys: list[Key] = []
    for data in document["keys"]:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        if not isinstance(data.get("kid", ""), str):
            continue
        try:
            key = JWKRegistry.import_key(data)
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, OctKey) or key.is_private:
            # A published private or symmetric key signs tokens for anyone who reads it.
            continue
        keys.append(key)
    if not keys:
        raise JwksError("the JWKS has no usable signature key")
    return KeySnapshot(tuple(keys))


def ttl_from_headers(
    headers: Mapping[str, str], *, default: float, minimum: float, maximum: float
) -> float:
    """How long an answer with ``headers`` may be kept: ``max-age`` minus ``Age``, clamped."""
    cache_control = headers.get("cache-control", "")
    if _NO_STORE.search(cache_control):
        return minimum
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return default
    ttl = float(match.group(1))
    age = headers.get("age", "").strip()
    if age.isdigit():
        ttl -= float(age)
    return min(max(ttl, minimum), maximum)


class JwksCache:
    """The keys published at ``url``; :meth:`find` is what verifiers call."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        timeout: float = 5.0,
        default_ttl: float = 3600.0,
        min_ttl: float = 60.0,
        max_ttl: float = 86400.0,
        cooldown: float = 60.0,
        failure_backoff: float = 5.0,
    ) -> None:
        self.url = url
        self._clock = clock
        self._default_ttl = default_ttl
        self._min_ttl = min_ttl
        self._max_ttl = max_ttl
        self._cooldown = cooldown
        self._failure_backoff = failure_backoff
        self._client = httpx.AsyncClient(
            timeout=timeout,
            trust_env=False,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "sluice-gateway"},
        )
        self._snapshot: KeySnapshot | None = None
        self._expires_at = -math.inf
        self._last_fetch_at = -math.inf
        self._retry_at = -math.inf
        self._last_error = "no fetch was tried yet"
        self._inflight: asyncio.Task[None] | None = None

    async def find(self, kid: str | None, alg: str) -> Key | None:
        """The key that verifies a token with ``kid`` and ``alg``, or ``None`` when the issuer
        publishes none (after the one refetch the cooldown allows).

        Raises :class:`ProviderUnavailable` when no keys could ever be fetched.
        """
        now = self._clock.monotonic()
        if (self._snapshot is None or now >= self._expires_at) and self._may_fetch(now):
            await self._refresh()
        snapshot = self._snapshot
        if snapshot is None:
            retry_after = max(1, math.ceil(self._retry_at - self._clock.monotonic()))
            raise ProviderUnavailable(
                f"the signing keys could not be fetched from {self.url}: {self._last_error}",
                retry_after=retry_after,
            )
        key = snapshot.find(kid, alg)
        if key is not None:
            return key
        now = self._clock.monotonic()
        if self._inflight is not None or (
            now - self._last_fetch_at >= self._cooldown and self._may_fetch(now)
        ):
            # The issuer may have rotated its keys since the last fetch.
            await self._refresh()
            if self._snapshot is not None:
                return self._snapshot.find(kid, alg)
        return None

    def _may_fetch(self, now: float) -> bool:
        return self._inflight is not None or now >= self._retry_at

    async def _refresh(self) -> None:
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch(), name=f"jwks {self.url}")
        # Shielded: a caller that gives up does not cancel the fetch the others wait for.
        await asyncio.shield(self._inflight)

    async def _fetch(self) -> None:
        self._last_fetch_at = self._clock.monotonic()
        try:
            snapshot, ttl = await self._download()
        except JwksError as error:
            self._last_error = str(error)
            self._retry_at = self._clock.monotonic() + self._failure_backoff
            if self._snapshot is None:
                logger.warning("JWKS %s: %s; tokens cannot be verified", self.url, error)
            else:
                logger.warning("JWKS %s: %s; keeping the keys fetched before", self.url, error)
        else:
            self._snapshot = snapshot
            self._expires_at = self._clock.monotonic() + ttl
            self._retry_at = -math.inf
        finally:
            self._inflight = None

    async def _download(self) -> tuple[KeySnapshot, float]:
        try:
            async with self._client.stream("GET", self.url) as response:
                if response.status_code != 200:
                    raise JwksError(f"the endpoint answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksError(f"the answer is larger than {MAX_JWKS_BYTES} bytes")
                headers = response.headers
        except httpx.HTTPError as error:
            raise JwksError(f"the endpoint could not be reached ({type(error).__name__})") from None
        ttl = ttl_from_headers(
            headers, default=self._default_ttl, minimum=self._min_ttl, maximum=self._max_ttl
        )
        return parse_jwks(bytes(body)), ttl

    async def aclose(self) -> None:
        """Stop a fetch in flight and close the HTTP client."""
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()
