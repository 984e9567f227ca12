"""Build the provider an application's gateway names (``authentication.provider``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from auth.clock import SYSTEM_CLOCK, Clock
from auth.github import GithubProvider
from auth.google import GoogleProvider
from auth.http import HttpProvider
from auth.jwt import JwtProvider
from auth.provider import AuthProvider
from auth.provider_config import InvalidProviderConfiguration

__all__ = ["PROVIDER_NAMES", "build_provider"]

_Builder = Callable[[Mapping[str, Any], str, Clock], AuthProvider]

_BUILDERS: dict[str, _Builder] = {
    "github": lambda configuration, tenant, clock: GithubProvider(configuration, clock=clock),
    "google": lambda configuration, tenant, clock: GoogleProvider(configuration, clock=clock),
    "http": lambda configuration, tenant, clock: HttpProvider(configuration, tenant=tenant),
    "jwt": lambda configuration, tenant, clock: JwtProvider(configuration, clock=clock),
}

PROVIDER_NAMES = tuple(sorted(_BUILDERS))


def build_provider(
    name: str, configuration: Mapping[str, Any], *, tenant: str, clock: Clock = SYSTEM_CLOCK
) -> AuthProvider:
    """The provider ``name`` with its ``configuration``, for gateways of ``tenant``; ``clock``
    is the time its token expiries and caches go by.

    Raises :class:`~auth.provider_config.InvalidProviderConfiguration` when the name is unknown
    or the configuration is wrong; nothing is contacted until the first token arrives.
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise InvalidProviderConfiguration(
            f"unknown authentication provider {name!r}; known: {', '.join(PROVIDER_NAMES)}"
        )
    return builder(configuration, tenant, clock)
