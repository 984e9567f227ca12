"""What goes wrong with an AI provider: its resource (at ``init``) or one call (per record)."""

from __future__ import annotations

from sluice.errors import SluiceError

__all__ = ["ProviderError", "ResourceError"]


class ProviderError(SluiceError, RuntimeError):
    """A call the provider did not answer as asked: an error status, a timeout, a server that
    cannot be reached, an answer of another shape. The record fails (the ``errors`` policy)."""


class ResourceError(SluiceError, ValueError):
    """The agent's AI resource is missing or incomplete (no key, no URL...): the worker stops at
    ``init`` with the resource and the key in the message."""
