"""Which AI resource an agent uses.

An AI agent names its resource with ``ai-service``; without it, the first resource of the
first type in LangStream's order: OpenAI, Vertex, Hugging Face, Bedrock, Ollama. The worker
passes each resource's type (``resource-types``); for an agent made by hand without them, a
resource's type is read from its keys (:func:`resource_type`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workers.builtin.providers.errors import ResourceError

__all__ = [
    "BEDROCK",
    "HUGGING_FACE",
    "OLLAMA",
    "OPENAI",
    "ORDER",
    "VERTEX",
    "AIResource",
    "choose_resource",
    "resource_type",
]

OPENAI = "open-ai-configuration"
VERTEX = "vertex-configuration"
HUGGING_FACE = "hugging-face-configuration"
BEDROCK = "bedrock-configuration"
OLLAMA = "ollama-configuration"
ORDER = (OPENAI, VERTEX, HUGGING_FACE, BEDROCK, OLLAMA)
"""LangStream's order of providers when an agent names none."""

NO_AI_SERVICE = (
    "No ai service resource found in application configuration. One of vertex-configuration, "
    "hugging-face-configuration, open-ai-configuration, bedrock-configuration, "
    "ollama-configuration must be defined."
)
"""LangStream's error when an application has no AI resource."""


@dataclass(frozen=True)
class AIResource:
    """An AI resource of ``configuration.yaml``: its id, type and configuration."""

    id: str
    type: str
    configuration: Mapping[str, Any]

    def text(self, key: str) -> str | None:
        """The value of ``key`` as text, or None when it is not set (or blank)."""
        value = self.configuration.get(key)
        if value is None or not str(value).strip():
            return None
        return str(value)

    def required(self, agent_type: str, key: str) -> str:
        """The value of ``key``, or :class:`ResourceError` naming the resource and the key."""
        value = self.text(key)
        if value is None:
            raise ResourceError(f'{agent_type}: resource "{self.id}" ({self.type}) has no {key}')
        return value

    @property
    def hugging_face_provider(self) -> str:
        """``provider`` of a Hugging Face resource: ``api`` (the default) or ``local``."""
        return str(self.configuration.get("provider") or "api").strip().lower()


def resource_type(configuration: Any) -> str | None:
    """The AI resource type a configuration has the keys of, or None (a datasource...)."""
    if not isinstance(configuration, Mapping) or "service" in configuration:
        return None
    keys = set(configuration)
    provider = str(configuration.get("provider", "")).strip().lower()
    if "secret-key" in keys:
        return BEDROCK
    if keys & {"project", "region", "token", "serviceAccountJson"}:
        return VERTEX
    if provider in ("api", "local") or keys & {"api-url", "model-check-url", "inference-url"}:
        return HUGGING_FACE
    if "access-key" in keys:
        return OPENAI
    if keys == {"url"}:
        return OLLAMA
    return None


def choose_resource(agent_type: str, config: Mapping[str, Any]) -> AIResource:
    """The resource an agent uses (see the module's documentation); :class:`ResourceError`
    when ``ai-service`` names none or the application has no AI resource."""
    resources: Mapping[str, Any] = config.get("resources") or {}
    given: Mapping[str, str] = config.get("resource-types") or {}

    def type_of(ident: str) -> str | None:
        return given[ident] if given else resource_type(resources[ident])

    service = config.get("ai-service")
    if service:
        if service not in resources:
            known = ", ".join(sorted(map(str, resources))) or "none"
            raise ResourceError(
                f'{agent_type}: ai-service "{service}" is not a resource of the application '
                f"(resources: {known})"
            )
        kind = type_of(service)
        if kind not in ORDER:
            raise ResourceError(
                f'{agent_type}: ai-service "{service}" is not an AI resource '
                f"({kind or 'unknown type'}); one of {', '.join(ORDER)} is needed"
            )
        return _resource(str(service), kind, resources[service])
    for kind in ORDER:
        for ident in resources:
            if type_of(ident) == kind:
                return _resource(str(ident), kind, resources[ident])
    raise ResourceError(f"{agent_type}: {NO_AI_SERVICE}")


def _resource(ident: str, kind: str, configuration: Any) -> AIResource:
    return AIResource(
        ident, kind, dict(configuration) if isinstance(configuration, Mapping) else {}
    )
