"""The session's PostgreSQL server for the datasource agents' tests."""

from tests.postgres import postgres_server

__all__ = ["postgres_server"]
