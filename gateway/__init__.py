"""The gateway: HTTP and WebSocket requests to records on Kafka and back (docs/gateway.md).

The names below are imported from their modules on first use: ``sluice run`` imports
``gateway.settings`` for every command, and Quart (``gateway.app``) is too slow for that. The
functions named like their module (``gateway.serving.serving``, ``gateway.main.main``) are not
here: importing the module sets the package's attribute of that name to the module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.app import create_app
    from gateway.settings import GatewaySettings, gateway_settings
    from sluice.commands import GatewayCommand, GatewayOptions

__all__ = [
    "GatewayCommand",
    "GatewayOptions",
    "GatewaySettings",
    "create_app",
    "gateway_settings",
]

_HOMES = {
    "create_app": "gateway.app",
    "GatewaySettings": "gateway.settings",
    "gateway_settings": "gateway.settings",
    "GatewayCommand": "sluice.commands",
    "GatewayOptions": "sluice.commands",
}


def __getattr__(name: str) -> object:
    """Import a re-exported name from its home on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
