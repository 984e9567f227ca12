"""The session's PostgreSQL server for these tests."""

from tests.postgres import postgres_server

__all__ = ["postgres_server"]
