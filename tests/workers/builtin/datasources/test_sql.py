"""JDBC's ? placeholders in psycopg's form, and values between rows and records."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from workers.builtin.datasources.sql import bind_value, json_value, to_psycopg


@pytest.mark.parametrize(
    ("query", "expected", "count"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s", 2),
        ("SELECT '?', \"a?\" FROM t WHERE x = ?", "SELECT '?', \"a?\" FROM t WHERE x = %s", 1),
        ("SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , %s", 1),
        ("SELECT E'\\' ?' , ?", "SELECT E'\\' ?' , %s", 1),
        ("SELECT $$ ? $$, $q$ ? $q$, ?", "SELECT $$ ? $$, $q$ ? $q$, %s", 1),
        ("SELECT 1 -- ?\n, ? /* ? */", "SELECT 1 -- ?\n, %s /* ? */", 1),
        ("SELECT d ?? 'k', d ??| ?", "SELECT d ? 'k', d ?| %s", 1),
        ("SELECT 'a%' || ? LIKE '5%'", "SELECT 'a%%' || %s LIKE '5%%'", 1),
        ("SELECT $1", "SELECT $1", 0),
    ],
)
def test_placeholders(query: str, expected: str, count: int) -> None:
    assert to_psycopg(query) == (expected, count)


def test_json_values() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    ident = uuid.UUID(int=1)
    assert json_value(decimal.Decimal("3")) == 3
    assert json_value(decimal.Decimal("2.5")) == 2.5
    assert json_value(when) == "2026-01-02T03:04:05+00:00"
    assert json_value(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert json_value(datetime.timedelta(minutes=1)) == 60.0
    assert json_value(ident) == str(ident)
    assert json_value(b"\x00\x01") == "AAE="
    assert json_value({"a": [decimal.Decimal("1.5"), None]}) == {"a": [1.5, None]}


def test_bind_values() -> None:
    assert bind_value([1, 2, 3]) == [1.0, 2.0, 3.0]
    assert bind_value([True, 1]) == [True, 1]
    assert bind_value(["a"]) == ["a"]
    assert bind_value({"a": 1}) == '{"a": 1}'
    assert bind_value(7) == 7
