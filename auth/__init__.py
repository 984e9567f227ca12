"""Authentication providers of the gateway: a token in, a principal out (docs/auth.md).

The names below are imported from their modules on first use, so that importing one provider
does not import them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auth.clock import SYSTEM_CLOCK, Clock
    from auth.provider import AuthenticationFailed, AuthProvider, Identity, ProviderUnavailable
    from auth.provider_config import InvalidProviderConfiguration
    from auth.providers import build_provider
    from auth.testmode import test_identity

__all__ = [
    "SYSTEM_CLOCK",
    "AuthProvider",
    "AuthenticationFailed",
    "Clock",
    "Identity",
    "InvalidProviderConfiguration",
    "ProviderUnavailable",
    "build_provider",
    "test_identity",
]

_HOMES = {
    "Clock": "auth.clock",
    "SYSTEM_CLOCK": "auth.clock",
    "InvalidProviderConfiguration": "auth.provider_config",
    "AuthProvider": "auth.provider",
    "AuthenticationFailed": "auth.provider",
    "Identity": "auth.provider",
    "ProviderUnavailable": "auth.provider",
    "build_provider": "auth.providers",
    "test_identity": "auth.testmode",
}


def __getattr__(name: str) -> object:
    """Import a re-exported name from its home on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
