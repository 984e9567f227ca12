"""Errors of the local Cassandra server (:mod:`sluice.cassandra.server`)."""

from __future__ import annotations

from sluice.errors import SluiceError

__all__ = ["LocalCassandraError"]


class LocalCassandraError(SluiceError, RuntimeError):
    """The local Cassandra node could not be set up, started or prepared: the message says what
    is missing (Java, Maven) or quotes the end of the node's log."""
