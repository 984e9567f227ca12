"""HTTP calls to a provider: a bounded timeout, retries, errors that name the resource.

One :class:`ProviderClient` per agent wraps an ``httpx.AsyncClient``. A call that is answered
429 or 5xx, or whose connection fails or times out, is tried again up to ``max_retries`` times
(tenacity), waiting what ``Retry-After`` says (capped at :data:`MAX_WAIT`) or an exponential
back-off with jitter. What remains a failure becomes a :class:`ProviderError` naming the
resource (``where``): never a secret, which is replaced by ``***`` should a server echo it.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from typing import Any

import httpx
import tenacity

from workers.builtin.providers.errors import ProviderError

__all__ = ["MAX_WAIT", "ProviderClient", "retry_after_seconds"]

MAX_WAIT = 60.0
"""The longest wait between two tries, whatever ``Retry-After`` says."""

_MALFORMED = (ValueError, KeyError, TypeError, IndexError, AttributeError)


class _Status(Exception):
    """An error status; retried when it is 429 or 5xx."""

    def __init__(self, status: int, detail: str, retry_after: float | None) -> None:
        super().__init__(status)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after

    @property
    def retriable(self) -> bool:
        return self.status == 429 or self.status >= 500


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    return None


def _retriable(error: BaseException) -> bool:
    if isinstance(error, _Status):
        return error.retriable
    return isinstance(error, httpx.TransportError)


def _wait(state: tenacity.RetryCallState) -> float:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    if isinstance(error, _Status) and error.retry_after is not None:
        return min(error.retry_after, MAX_WAIT)
    backoff: float = min(0.5 * 2.0 ** (state.attempt_number - 1), 8.0)
    return backoff + random.uniform(0, 0.25)


def _detail(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text[:200] + ("..." if len(text) > 200 else "")


class ProviderClient:
    """Calls to one resource's server (see the module's documentation)."""

    def __init__(
        self,
        where: str,
        *,
        timeout: float,
        max_retries: int,
        secrets: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.where = where
        self.timeout = timeout
        self.max_retries = max_retries
        self._secrets = [secret for secret in secrets if secret]
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), headers=dict(headers or {}), auth=auth
        )

    def hide(self, secret: str) -> None:
        """Hide ``secret`` (a token got later) from messages too."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def failure(self, what: str) -> ProviderError:
        """The error of a call to this resource: ``<where> <what>``, secrets hidden."""
        message = f"{self.where} {what}"
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return ProviderError(message)

    @contextlib.contextmanager
    def calling(self, answer: str) -> Iterator[None]:
        """Turn what fails in the block into :class:`ProviderError`: an error status, a
        timeout, a server that cannot be reached, an answer that is not ``answer``."""
        try:
            yield
        except ProviderError:
            raise
        except _Status as error:
            raise self.failure(f"answered {error.status}: {error.detail}") from None
        except httpx.TimeoutException:
            raise self.failure(f"did not answer within {self.timeout:g}s") from None
        except httpx.TransportError as error:
            raise self.failure(f"cannot be reached: {type(error).__name__}: {error}") from None
        except _MALFORMED as error:
            what = f"gave an answer that is not {answer} ({type(error).__name__}: {error})"
            raise self.failure(what) from None

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """The response to ``request`` once its status is not an error (body not read yet),
        retried as the module says."""
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(_retriable),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=_wait,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                response = await self._client.send(request, stream=True)
                if response.status_code >= 400:
                    try:
                        body = await response.aread()
                    finally:
                        await response.aclose()
                    raise _Status(
                        response.status_code,
                        _detail(body),
                        retry_after_seconds(response.headers.get("Retry-After")),
                    )
                return response
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        answer: str,
    ) -> Any:
        """The JSON answer of one call (``body`` sent as JSON)."""
        with self.calling(answer):
            request = self._client.build_request(method, url, json=body, headers=headers)
            response = await self._send(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
            return json.loads(content)

    async def stream_lines(self, url: str, *, body: Any, answer: str) -> AsyncGenerator[str, None]:
        """The non-blank lines of a POST's answer as they arrive (JSON lines, events)."""
        with self.calling(answer):
            request = self._client.build_request("POST", url, json=body)
            response = await self._send(request)
            try:
                async for line in response.aiter_lines():
                    if line.strip():
                        yield line
            finally:
                await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
