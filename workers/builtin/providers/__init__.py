"""The AI providers the AI agents call besides OpenAI: Ollama, Hugging Face's inference API,
Vertex AI and Bedrock, each in its own module behind one seam (:class:`AIProvider`)."""

from workers.builtin.providers.base import AIProvider, CompletionRequest, Piece
from workers.builtin.providers.errors import ProviderError, ResourceError
from workers.builtin.providers.registry import open_provider
from workers.builtin.providers.resources import AIResource, choose_resource

__all__ = [
    "AIProvider",
    "AIResource",
    "CompletionRequest",
    "Piece",
    "ProviderError",
    "ResourceError",
    "choose_resource",
    "open_provider",
]
