"""Ollama (``ollama-configuration``: ``url``), as LangStream called it.

Completions: ``POST <url>/api/generate`` with ``{"model", "prompt"}``, the answer streamed as
JSON lines (``{"response": <piece>, "done": false}``... then ``"done": true``); the prompt is
the chat messages' contents (or the text prompts) joined with a double quote, LangStream's
join. The answer's id (``stream-id``) is a random UUID, as Ollama gives none. No other
parameter is sent: LangStream sent none. Embeddings: ``POST <url>/api/embeddings`` with
``{"model", "prompt"}`` for each text, answered ``{"embedding": [...]}``. A line or an answer
with ``error`` fails the record.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from workers.builtin.providers.base import CompletionRequest, Piece
from workers.builtin.providers.client import ProviderClient
from workers.builtin.providers.resources import AIResource

__all__ = ["Ollama"]


class Ollama:
    """The :class:`~workers.builtin.providers.base.AIProvider` of an Ollama resource."""

    def __init__(
        self, agent_type: str, resource: AIResource, *, timeout: float, max_retries: int
    ) -> None:
        self.url = resource.required(agent_type, "url").rstrip("/")
        self.client = ProviderClient(
            f'{agent_type}: ollama resource "{resource.id}" ({self.url})',
            timeout=timeout,
            max_retries=max_retries,
        )

    def chat(
        self, messages: list[dict[str, str]], request: CompletionRequest
    ) -> AsyncGenerator[Piece, None]:
        return self._generate(request.model, '"'.join(m["content"] for m in messages))

    def text(self, prompts: list[str], request: CompletionRequest) -> AsyncGenerator[Piece, None]:
        return self._generate(request.model, '"'.join(prompts))

    async def _generate(self, model: str, prompt: str) -> AsyncGenerator[Piece, None]:
        stream_id = str(uuid.uuid4())
        lines = self.client.stream_lines(
            f"{self.url}/api/generate",
            body={"model": model, "prompt": prompt},
            answer="a completion",
        )
        async for line in lines:
            with self.client.calling("a completion"):
                event = _object(json.loads(line))
                _raise_error(self.client, event)
                text = event.get("response") or ""
                if not isinstance(text, str):
                    raise TypeError(f"response is {type(text).__name__}, not text")
                done = bool(event.get("done"))
            yield Piece(text, done, stream_id)
            if done:
                await lines.aclose()
                return
        yield Piece("", True, stream_id)  # an answer that ended without "done": what came

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        vectors = []
        for text in texts:
            answer = await self.client.request_json(
                "POST",
                f"{self.url}/api/embeddings",
                body={"model": model, "prompt": text},
                answer="an embedding",
            )
            with self.client.calling("an embedding"):
                event = _object(answer)
                _raise_error(self.client, event)
                vectors.append([float(number) for number in event["embedding"]])
        return vectors

    async def aclose(self) -> None:
        await self.client.aclose()


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"a {type(value).__name__}, not a JSON object")
    return value


def _raise_error(client: ProviderClient, event: dict[str, Any]) -> None:
    if event.get("error") is not None:
        raise client.failure(f"answered an error: {event['error']}")
