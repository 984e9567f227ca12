"""What goes wrong with a datasource: its resource (at ``init``) or one statement (per record)."""

from __future__ import annotations

from sluice.errors import SluiceError

__all__ = ["DataSourceError", "DataSourceResourceError"]


class DataSourceResourceError(SluiceError, ValueError):
    """The agent's datasource resource is missing, of another type, of a service or JDBC driver
    Sluice does not support, or unreachable at start: the worker stops at ``init`` with the
    resource in the message (never its password)."""


class DataSourceError(SluiceError, RuntimeError):
    """A statement failed: bad SQL, a missing table, a value of the wrong type, the database
    unreachable or too slow. The record fails (the agent's ``errors`` policy decides); the
    message names the datasource and never its password."""
