"""Errors of the local PostgreSQL server (:mod:`sluice.postgres.server`)."""

from __future__ import annotations

from sluice.errors import SluiceError

__all__ = ["LocalPostgresError"]


class LocalPostgresError(SluiceError, RuntimeError):
    """The local PostgreSQL server could not be set up, started or stopped: the message says
    which step failed and quotes the end of its output or of the server's log."""
