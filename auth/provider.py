"""What every authentication provider is: a token in, an :class:`Identity` or a failure out.

A provider is built once when an application is loaded (docs/auth.md) and used by every request
of its gateway; it may keep caches and an HTTP client, released by :meth:`AuthProvider.aclose`.

Failures are of two kinds, because a client must tell them apart:

- :class:`AuthenticationFailed`: the token is not acceptable (401). ``reason`` is safe to show to
  the client and never contains the token.
- :class:`ProviderUnavailable`: the identity provider could not be asked and nothing cached answers
  (503 with ``Retry-After``). The token may well be valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from sluice.errors import SluiceError

__all__ = [
    "AuthProvider",
    "AuthenticationFailed",
    "Identity",
    "ProviderUnavailable",
]


def _frozen(values: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to.

    ``principal`` holds the fields that ``value-from-authentication`` reads (``subject``,
    ``email``, ``login``...), all strings; a field the provider does not know is absent, never
    empty. ``expires_at`` is the token's expiry in seconds since the epoch when the provider knows
    it: a WebSocket authenticated with it is closed with 1008 at that instant.
    """

    principal: Mapping[str, str] = field(default_factory=_frozen)
    expires_at: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.principal, MappingProxyType):
            object.__setattr__(self, "principal", _frozen(self.principal))


class AuthenticationFailed(SluiceError, PermissionError):
    """The token was rejected; ``reason`` says why without repeating the token (401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderUnavailable(SluiceError, ConnectionError):
    """The identity provider could not be reached and no cached answer exists (503).

    ``retry_after`` is the number of seconds after which asking again may succeed.
    """

    def __init__(self, reason: str, *, retry_after: int = 5) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@runtime_checkable
class AuthProvider(Protocol):
    """Checks bearer tokens for one gateway (or for the server's test mode)."""

    async def authenticate(self, token: str) -> Identity:
        """The identity of ``token``.

        Raises :class:`AuthenticationFailed` or :class:`ProviderUnavailable`; never anything else
        for a token a client sent, however malformed.
        """
        ...

    async def aclose(self) -> None:
        """Release the provider's HTTP clients and background tasks."""
        ...
