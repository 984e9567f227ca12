"""The provider module that calls each AI resource type, imported when an agent opens one (so a
worker loads only the client libraries its resources need)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.builtin.providers.base import AIProvider
from workers.builtin.providers.errors import ResourceError
from workers.builtin.providers.resources import BEDROCK, HUGGING_FACE, OLLAMA, VERTEX, AIResource

__all__ = ["open_provider"]


def open_provider(
    agent_type: str,
    resource: AIResource,
    *,
    timeout: float,
    max_retries: int,
    options: Mapping[str, Any] | None = None,
) -> AIProvider:
    """The provider that calls ``resource`` (not OpenAI's, which the agents call with the
    official client), ``options`` being the agent's (Hugging Face's embeddings options).
    Raises :class:`ResourceError` for a resource that lacks a key."""
    kwargs: dict[str, Any] = {"timeout": timeout, "max_retries": max_retries}
    if resource.type == OLLAMA:
        from workers.builtin.providers.ollama import Ollama

        return Ollama(agent_type, resource, **kwargs)
    if resource.type == VERTEX:
        from workers.builtin.providers.vertex import Vertex

        return Vertex(agent_type, resource, **kwargs)
    if resource.type == HUGGING_FACE and resource.hugging_face_provider == "api":
        from workers.builtin.providers.huggingface import HuggingFaceAPI

        return HuggingFaceAPI(agent_type, resource, options=options, **kwargs)
    if resource.type == BEDROCK:
        from workers.builtin.providers.bedrock import Bedrock

        return Bedrock(agent_type, resource, options=options, **kwargs)
    raise ResourceError(
        f'{agent_type}: resource "{resource.id}" is a {resource.type}, which Sluice does not '
        f"call for {agent_type} yet"
    )
