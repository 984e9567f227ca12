"""The seam between the AI agents and a provider: a completion as a stream of pieces, vectors
of texts. The agents group pieces into ``stream-to-topic`` chunks and write the answer; a
provider only speaks its protocol."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["AIProvider", "CompletionRequest", "Piece"]


@dataclass(frozen=True)
class Piece:
    """One piece of an answer: its text, whether it is the last, and the answer's id (the
    ``stream-id`` header of the chunks). A provider that does not stream gives one last piece."""

    text: str
    last: bool
    stream_id: str


@dataclass(frozen=True)
class CompletionRequest:
    """What the agent asks besides the prompt: the model, the provider parameters that are set
    (under the agent's keys: ``max-tokens``, ``temperature``, ``top-p``...), the agent's
    ``options`` (Bedrock's request shape) and whether to stream."""

    model: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    stream: bool = True


class AIProvider(Protocol):
    """A provider the AI agents call (one per agent, opened at ``start``)."""

    def chat(
        self, messages: list[dict[str, str]], request: CompletionRequest
    ) -> AsyncGenerator[Piece, None]:
        """The answer to chat ``messages`` (``role``, ``content``), piece by piece; the last
        piece has ``last`` set."""
        ...

    def text(self, prompts: list[str], request: CompletionRequest) -> AsyncGenerator[Piece, None]:
        """The completion of ``prompts``, piece by piece."""
        ...

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        """One vector per text, in order."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...
