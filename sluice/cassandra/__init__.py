"""An Apache Cassandra 5 node on this machine, for ``sluice run`` and the tests.

The node runs from Maven jars (``pom.xml`` here, resolved once into the user cache) on Java 17,
on loopback: :mod:`~sluice.cassandra.server` starts and stops it.
"""

from __future__ import annotations

from sluice.cassandra.errors import LocalCassandraError
from sluice.cassandra.server import (
    VERSION,
    LocalCassandra,
    LocalCassandraSettings,
    NativeTls,
    cassandra_jars,
    jars_cache,
)

__all__ = [
    "VERSION",
    "LocalCassandra",
    "LocalCassandraError",
    "LocalCassandraSettings",
    "NativeTls",
    "cassandra_jars",
    "jars_cache",
]
