"""A fake of Ollama's API: a real HTTP server on loopback (``ollama-configuration``'s ``url``).

``POST /api/generate`` (``{"model", "prompt"}``) streams JSON lines as Ollama does, one
``{"model", "created_at", "response": <piece>, "done": false}`` per piece of
``reply(prompt)`` (by default ``Fake answer to: <prompt>`` a word at a time), then
``{"response": "", "done": true, ...}``. ``POST /api/embeddings`` (``{"model", "prompt"}``)
answers ``{"embedding": fake_embedding(prompt)}``. An unknown model (``missing_model``) gets
Ollama's 404 ``{"error": "model ... not found"}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.fakes.provider_server import FakeProvider, Handler, Recorded, fake_embedding

__all__ = ["FakeOllama", "words"]

CREATED = "2024-01-01T00:00:00Z"


def words(prompt: str) -> list[str]:
    """``Fake answer to: <prompt>``, a word at a time."""
    answer = f"Fake answer to: {prompt}".split(" ")
    return [answer[0], *(f" {word}" for word in answer[1:])]


@dataclass
class FakeOllama(FakeProvider):
    reply: Callable[[str], list[str]] = words
    missing_model: str = "missing"

    def answer(self, handler: Handler, request: Recorded) -> None:
        body = request.body if isinstance(request.body, dict) else {}
        model = str(body.get("model"))
        if request.method != "POST" or request.path not in ("/api/generate", "/api/embeddings"):
            super().answer(handler, request)
        elif model == self.missing_model:
            handler.send_json(404, {"error": f"model '{model}' not found, try pulling it first"})
        elif request.path == "/api/embeddings":
            handler.send_json(200, {"embedding": fake_embedding(str(body.get("prompt")))})
        else:
            handler.send_lines(self._lines(model, self.reply(str(body.get("prompt")))))

    def _lines(self, model: str, pieces: list[str]) -> Iterator[dict[str, Any]]:
        for piece in pieces:
            yield {"model": model, "created_at": CREATED, "response": piece, "done": False}
        yield {"model": model, "created_at": CREATED, "response": "", "done": True}
