"""Vertex AI (``vertex-configuration``), as LangStream called it: the ``predict`` endpoint of a
publisher model, ``<url>/v1/projects/<project>/locations/<region>/publishers/google/models/
<model>:predict`` (``url`` default ``https://<region>-aiplatform.googleapis.com``).

Chat: ``{"instances": [{"context": "", "examples": [], "messages": [{"author": <role>,
"content": <content>}...]}], "parameters": {...}}``, the answer being the first prediction's
first candidate's ``content`` (an empty answer without candidates). Text: exactly one prompt,
``{"instances": [{"prompt": <prompt>}], "parameters": {...}}``, the answer the first
prediction's ``content``. Parameters: ``temperature``, ``max-tokens`` as ``maxOutputTokens``
and ``top-p`` as ``topP``. Embeddings: ``{"instances": [{"content": <text>}...]}``, each
prediction's ``embeddings.values``.

Credentials: ``token`` (a static bearer token), or ``serviceAccountJson`` (a service account
key as JSON text): google-auth signs the service account's JWT and trades it at the key's
``token_uri`` for an access token (scope ``cloud-platform``), renewed when it expires.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import google.auth.exceptions
import google.auth.transport
import httpx
from google.oauth2 import service_account

from workers.builtin.providers.base import CompletionRequest, Piece
from workers.builtin.providers.client import ProviderClient
from workers.builtin.providers.errors import ResourceError
from workers.builtin.providers.resources import AIResource

__all__ = ["SCOPE", "Vertex"]

SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class Vertex:
    """The :class:`~workers.builtin.providers.base.AIProvider` of a Vertex AI resource."""

    def __init__(
        self, agent_type: str, resource: AIResource, *, timeout: float, max_retries: int
    ) -> None:
        project = resource.required(agent_type, "project")
        region = resource.required(agent_type, "region")
        url = (resource.text("url") or f"https://{region}-aiplatform.googleapis.com").rstrip("/")
        self.base = f"{url}/v1/projects/{project}/locations/{region}/publishers/google/models"
        self.token = resource.text("token")
        self.credentials: service_account.Credentials | None = None
        account = resource.text("serviceAccountJson")
        if self.token is None and account is None:
            raise ResourceError(
                f'{agent_type}: resource "{resource.id}" (vertex-configuration) has neither '
                "token nor serviceAccountJson"
            )
        if self.token is None and account is not None:
            self.credentials = _credentials(agent_type, resource.id, account)
        self.timeout = timeout
        self.client = ProviderClient(
            f'{agent_type}: vertex resource "{resource.id}" ({url})',
            timeout=timeout,
            max_retries=max_retries,
            secrets=[self.token or ""],
        )
        self._lock = asyncio.Lock()

    async def _authorization(self) -> dict[str, str]:
        if self.credentials is None:
            return {"Authorization": f"Bearer {self.token}"}
        async with self._lock:
            if not self.credentials.valid:
                credentials = self.credentials
                try:
                    await asyncio.to_thread(credentials.refresh, _Transport(self.timeout))
                except google.auth.exceptions.GoogleAuthError as error:
                    what = f"gave no access token for the service account: {error}"
                    raise self.client.failure(what) from None
                self.client.hide(str(credentials.token))
        return {"Authorization": f"Bearer {self.credentials.token}"}

    async def _predict(self, model: str, body: dict[str, Any], answer: str) -> Any:
        return await self.client.request_json(
            "POST",
            f"{self.base}/{model}:predict",
            body=body,
            headers=await self._authorization(),
            answer=answer,
        )

    async def chat(
        self, messages: list[dict[str, str]], request: CompletionRequest
    ) -> AsyncGenerator[Piece, None]:
        instance = {
            "context": "",
            "examples": [],
            "messages": [{"author": m["role"], "content": m["content"]} for m in messages],
        }
        body = {"instances": [instance], "parameters": _parameters(request.parameters)}
        answer = await self._predict(request.model, body, "a chat prediction")
        with self.client.calling("a chat prediction"):
            candidates = answer["predictions"][0]["candidates"]
            content = _text(candidates[0]["content"]) if candidates else ""
        yield Piece(content, True, str(uuid.uuid4()))

    async def text(
        self, prompts: list[str], request: CompletionRequest
    ) -> AsyncGenerator[Piece, None]:
        if len(prompts) != 1:
            raise self.client.failure(
                f"takes exactly one prompt for text completions, got {len(prompts)}"
            )
        body = {
            "instances": [{"prompt": prompts[0]}],
            "parameters": _parameters(request.parameters),
        }
        answer = await self._predict(request.model, body, "a text prediction")
        with self.client.calling("a text prediction"):
            content = _text(answer["predictions"][0]["content"])
        yield Piece(content, True, str(uuid.uuid4()))

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        body = {"instances": [{"content": text} for text in texts]}
        answer = await self._predict(model, body, "a list of embeddings")
        with self.client.calling("a list of embeddings"):
            predictions = answer["predictions"]
            if len(predictions) != len(texts):
                raise ValueError(f"{len(predictions)} predictions for {len(texts)} texts")
            return [[float(n) for n in p["embeddings"]["values"]] for p in predictions]

    async def aclose(self) -> None:
        await self.client.aclose()


def _parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if parameters.get("temperature") is not None:
        out["temperature"] = float(parameters["temperature"])
    if parameters.get("max-tokens") is not None:
        out["maxOutputTokens"] = int(parameters["max-tokens"])
    if parameters.get("top-p") is not None:
        out["topP"] = float(parameters["top-p"])
    return out


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"content is {type(value).__name__}, not text")
    return value


def _credentials(agent_type: str, ident: str, text: str) -> service_account.Credentials:
    """The service account of ``serviceAccountJson``, or :class:`ResourceError` saying why not
    (never with the key's content)."""
    try:
        info = json.loads(text)
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
        make = service_account.Credentials.from_service_account_info
        credentials: service_account.Credentials = make(info, scopes=[SCOPE])  # type: ignore[no-untyped-call]
        return credentials
    except (ValueError, KeyError, TypeError) as error:
        reason = type(error).__name__ if "PRIVATE KEY" in str(error) else str(error)
        raise ResourceError(
            f'{agent_type}: resource "{ident}" (vertex-configuration) has a serviceAccountJson '
            f"that is not a service account key: {reason}"
        ) from None


class _Response(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class _Transport(google.auth.transport.Request):
    """google-auth's HTTP transport on httpx (blocking: run off the event loop)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        try:
            response = httpx.request(
                method, url, content=body, headers=headers, timeout=timeout or self.timeout
            )
        except httpx.HTTPError as error:
            raise google.auth.exceptions.TransportError(str(error)) from None  # type: ignore[no-untyped-call]
        return _Response(response)
