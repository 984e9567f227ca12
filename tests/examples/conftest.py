"""The session's PostgreSQL server, for the examples with a jdbc datasource (examples/rag)."""

from tests.postgres import postgres_server

__all__ = ["postgres_server"]
