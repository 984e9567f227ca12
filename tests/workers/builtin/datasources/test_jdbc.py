"""LangStream's jdbc datasource keys read as PostgreSQL connection arguments."""

from __future__ import annotations

import pytest

from workers.builtin.datasources import DataSourceResourceError, jdbc_settings
from workers.builtin.datasources.jdbc import redact

BASE = {"service": "jdbc", "driverClass": "org.postgresql.Driver"}


def test_langstream_example_keys() -> None:
    settings = jdbc_settings(
        "JdbcDatasource",
        {**BASE, "url": "jdbc:postgresql://db.local:5433/", "user": "postgres", "password": "pw"},
    )
    assert dict(settings.arguments) == {
        "host": "db.local",
        "port": "5433",
        "user": "postgres",
        "password": "pw",
        "options": "-c statement_timeout=60000",
    }
    assert settings.shown == "postgresql://db.local:5433/"
    assert "pw" not in repr(settings)
    assert settings.secrets == ("pw",)
    assert settings.ignored == ()


def test_hosts_database_and_url_properties() -> None:
    settings = jdbc_settings(
        "ds",
        {
            "service": "jdbc",
            "url": "jdbc:postgresql://a,b:6000,[::1]:7000/my%20db?sslmode=require&user=u",
            "user": "overridden",
            "currentSchema": "app",
            "ApplicationName": "chat",
            "connectTimeout": 7,
            "targetServerType": "primary",
            "query-timeout-seconds": 0,
            "max-connections": 2,
            "prepareThreshold": 5,
        },
    )
    arguments = dict(settings.arguments)
    assert arguments == {
        "host": "a,b,::1",
        "port": "5432,6000,7000",
        "dbname": "my db",
        "sslmode": "require",
        "user": "u",
        "options": "-c search_path=app",
        "application_name": "chat",
        "connect_timeout": "7",
        "target_session_attrs": "read-write",
    }
    assert settings.max_connections == 2
    assert settings.query_timeout == 0
    assert settings.ignored == ("prepareThreshold",)


def test_short_url_and_ssl() -> None:
    settings = jdbc_settings("ds", {**BASE, "url": "jdbc:postgresql:app", "ssl": True})
    assert dict(settings.arguments)["host"] == "localhost"
    assert dict(settings.arguments)["dbname"] == "app"
    assert dict(settings.arguments)["sslmode"] == "verify-full"


def test_a_postgresql_url_runs_whatever_the_driver_class() -> None:
    """As JDBC's DriverManager picks the driver accepting the URL: HerdDB's examples."""
    settings = jdbc_settings(
        "ds", {**BASE, "driverClass": "herddb.jdbc.Driver", "url": "jdbc:postgresql://h:5433/db"}
    )
    assert (settings.arguments["host"], settings.arguments["port"]) == ("h", "5433")
    assert settings.ignored == ()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"driverClass": "herddb.jdbc.Driver", "url": "jdbc:herddb:server:h:7000"},
            r'datasource "ds": the JDBC driver herddb.jdbc.Driver is not supported',
        ),
        (
            {"url": "jdbc:mysql://h/db?password=hunter2"},
            r"the JDBC URL jdbc:mysql\.\.\. is not supported",
        ),
        ({"driverClass": "org.postgresql.Driver"}, "url is required"),
        ({"url": "jdbc:postgresql://u:hunter2@h/db"}, "must not carry credentials"),
        ({"url": "jdbc:postgresql://h:port/db"}, "port 'port' is not a number"),
        (
            {"url": "jdbc:postgresql://h/db", "max-connections": "many"},
            "max-connections must be a number",
        ),
    ],
)
def test_what_is_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(DataSourceResourceError, match=message) as caught:
        jdbc_settings("ds", {"service": "jdbc", "password": "hunter2", **config})
    assert "hunter2" not in str(caught.value)


def test_redact() -> None:
    assert redact("bad pw s3cret here", ("s3cret",)) == "bad pw **** here"
