"""Hugging Face's inference API (``hugging-face-configuration`` with ``provider: api``), as
LangStream called it.

Embeddings: ``POST <api-url><model>`` (``api-url`` default
``https://api-inference.huggingface.co/pipeline/feature-extraction/``) with ``{"inputs":
[texts], "options": <the agent's options, default {"wait_for_model": "true"}>}``, answered with
one vector per text. Before the first call the model is checked as LangStream checked it at
start: ``GET <model-check-url><model>`` (default ``https://huggingface.co/api/models/``) must
name the model and carry the ``sentence-transformers`` tag, else every record fails with why.

Completions: ``POST <inference-url><"/models/"><model>`` (``inference-url`` default
``https://api-inference.huggingface.co``) with the JSON list of the messages' contents (or the
prompts); the answer is a list of fill-mask candidates (``{"score", "token_str",
"sequence"}``) and the completion is the first one's ``sequence``, given as one piece.

Every call carries ``Authorization: Bearer <access-key>``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from workers.builtin.providers.base import CompletionRequest, Piece
from workers.builtin.providers.client import ProviderClient
from workers.builtin.providers.resources import AIResource

__all__ = ["API_URL", "INFERENCE_URL", "MODEL_CHECK_URL", "HuggingFaceAPI"]

API_URL = "https://api-inference.huggingface.co/pipeline/feature-extraction/"
MODEL_CHECK_URL = "https://huggingface.co/api/models/"
INFERENCE_URL = "https://api-inference.huggingface.co"


class HuggingFaceAPI:
    """The :class:`~workers.builtin.providers.base.AIProvider` of a Hugging Face API resource."""

    def __init__(
        self,
        agent_type: str,
        resource: AIResource,
        *,
        timeout: float,
        max_retries: int,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        key = resource.required(agent_type, "access-key")
        self.api_url = resource.text("api-url") or API_URL
        self.check_url = resource.text("model-check-url") or MODEL_CHECK_URL
        self.inference_url = (resource.text("inference-url") or INFERENCE_URL).rstrip("/")
        self.options = dict(options) if options else {"wait_for_model": "true"}
        self.checked: set[str] = set()
        self.client = ProviderClient(
            f'{agent_type}: hugging-face-configuration resource "{resource.id}"',
            timeout=timeout,
            max_retries=max_retries,
            secrets=[key],
            headers={"Authorization": f"Bearer {key}"},
        )

    def chat(
        self, messages: list[dict[str, str]], request: CompletionRequest
    ) -> AsyncGenerator[Piece, None]:
        return self._complete([m["content"] for m in messages], request.model)

    def text(self, prompts: list[str], request: CompletionRequest) -> AsyncGenerator[Piece, None]:
        return self._complete(prompts, request.model)

    async def _complete(self, contents: list[str], model: str) -> AsyncGenerator[Piece, None]:
        answer = await self.client.request_json(
            "POST", f"{self.inference_url}/models/{model}", body=contents, answer="a completion"
        )
        with self.client.calling("a completion"):
            sequence = answer[0]["sequence"]
            if not isinstance(sequence, str):
                raise TypeError(f"sequence is {type(sequence).__name__}, not text")
        yield Piece(sequence, True, str(uuid.uuid4()))

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        if model not in self.checked:
            await self._check(model)
        answer = await self.client.request_json(
            "POST",
            f"{self.api_url}{model}",
            body={"inputs": texts, "options": self.options},
            answer="a list of embeddings",
        )
        with self.client.calling("a list of embeddings"):
            if not isinstance(answer, list) or len(answer) != len(texts):
                raise ValueError(f"expected {len(texts)} vectors")
            return [[float(number) for number in vector] for vector in answer]

    async def _check(self, model: str) -> None:
        """LangStream's check: the model exists and is a sentence-transformers model."""
        found = await self.client.request_json(
            "GET", f"{self.check_url}{model}", answer="a model description"
        )
        with self.client.calling("a model description"):
            if found.get("modelId") != model:
                raise self.client.failure(f"does not know the model {model!r}")
            if "sentence-transformers" not in (found.get("tags") or []):
                raise self.client.failure(
                    f"says the model {model!r} is not a sentence-transformers model, so not "
                    "one for embeddings"
                )
        self.checked.add(model)

    async def aclose(self) -> None:
        await self.client.aclose()
