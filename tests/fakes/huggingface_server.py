"""A fake of Hugging Face's inference API and model hub: a real HTTP server on loopback.

``GET /api/models/<model>`` describes a model (``{"modelId", "tags"}``): the models of
:attr:`FakeHuggingFace.models` with their tags (``sentence-transformers`` for embedding
models), 404 for any other. ``POST /pipeline/feature-extraction/<model>`` (``{"inputs":
[texts], "options"}``) answers one :func:`fake_embedding` per text. ``POST /models/<model>``
(a JSON list of texts, LangStream's fill-mask call) answers a list of candidates
``{"score", "token", "token_str", "sequence"}``, the first one's sequence being
``reply(texts)``. Requests without a bearer token get 401, as the API gives them.

A resource points here with ``api-url: <url>/pipeline/feature-extraction/``,
``model-check-url: <url>/api/models/`` and ``inference-url: <url>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.fakes.provider_server import FakeProvider, Handler, Recorded, fake_embedding

__all__ = ["FakeHuggingFace", "fill"]


def fill(texts: list[str]) -> str:
    """The fake's completion: the first text with ``[MASK]`` filled with ``paris``."""
    return (texts[0] if texts else "").replace("[MASK]", "paris")


def _models() -> dict[str, list[str]]:
    return {
        "sentence-transformers/all-MiniLM-L6-v2": ["sentence-transformers", "feature-extraction"],
        "bert-base-uncased": ["fill-mask", "transformers"],
    }


@dataclass
class FakeHuggingFace(FakeProvider):
    reply: Callable[[list[str]], str] = fill
    models: dict[str, list[str]] = field(default_factory=_models)

    def resource(self, key: str = "hf_fake") -> dict[str, str]:
        """A ``hugging-face-configuration`` (``provider: api``) pointing here."""
        return {
            "provider": "api",
            "access-key": key,
            "api-url": f"{self.url}/pipeline/feature-extraction/",
            "model-check-url": f"{self.url}/api/models/",
            "inference-url": self.url,
        }

    def answer(self, handler: Handler, request: Recorded) -> None:
        if not re.fullmatch(r"Bearer \S+", request.headers.get("Authorization", "")):
            handler.send_json(401, {"error": "Authorization header is correct, but the token"})
            return
        path = request.path
        if request.method == "GET" and path.startswith("/api/models/"):
            model = path.removeprefix("/api/models/")
            if model in self.models:
                handler.send_json(200, {"modelId": model, "tags": self.models[model]})
            else:
                handler.send_json(404, {"error": "Repository not found"})
        elif request.method == "POST" and path.startswith("/pipeline/feature-extraction/"):
            inputs = request.body["inputs"]
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            handler.send_json(200, [fake_embedding(str(text)) for text in texts])
        elif request.method == "POST" and path.startswith("/models/"):
            texts = [str(text) for text in request.body]
            sequence = self.reply(texts)
            candidates = [
                {"score": 0.9, "token": 3000, "token_str": "paris", "sequence": sequence},
                {"score": 0.1, "token": 3001, "token_str": "lyon", "sequence": "other"},
            ]
            handler.send_json(200, candidates)
        else:
            super().answer(handler, request)
