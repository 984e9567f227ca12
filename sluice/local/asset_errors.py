"""The error of creating or deleting an application's assets (:mod:`sluice.local.assets`)."""

from __future__ import annotations

from sluice.errors import SluiceError

__all__ = ["AssetError"]


class AssetError(SluiceError, RuntimeError):
    """An asset could not be created or deleted: the message names it and says why."""
