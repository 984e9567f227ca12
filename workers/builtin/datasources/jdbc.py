"""A LangStream ``jdbc`` datasource read as PostgreSQL connection arguments (pure).

LangStream handed every key of the resource to the JDBC driver as a connection property; its
``url`` and ``driverClass`` chose the database. Sluice speaks PostgreSQL only, through psycopg
(libpq): the PostgreSQL JDBC driver's URL and properties are mapped onto libpq's, and any other
URL is refused with its name (and the driver's). As JDBC's ``DriverManager`` picks the driver that
accepts the URL, a ``jdbc:postgresql:`` URL runs on PostgreSQL whatever ``driverClass`` says
(LangStream's HerdDB examples with a PostgreSQL URL in their secrets). The mapping:

==============================  ==============================================================
JDBC (``org.postgresql.Driver``)  libpq / psycopg
==============================  ==============================================================
``jdbc:postgresql://h:p/db``     ``host``, ``port`` (5432), ``dbname`` (empty: the user's name)
``jdbc:postgresql://h1:p1,h2/db``  ``host=h1,h2`` ``port=p1,5432`` (tried in order)
``jdbc:postgresql:db``           ``host=localhost`` ``dbname=db``
``host.docker.internal``         127.0.0.1 where the name does not resolve (at connection)
``user``, ``password``           ``user``, ``password``
``ssl`` (true)                   ``sslmode=verify-full`` unless ``sslmode`` is given
``sslmode``, ``sslcert``...      the same names (``sslkey``, ``sslrootcert``, ``sslpassword``)
``connectTimeout``, ``loginTimeout``  ``connect_timeout`` (seconds)
``ApplicationName``              ``application_name``
``currentSchema``                ``options=-c search_path=<schema>``
``options``                      ``options``
``targetServerType``             ``target_session_attrs`` (primary: read-write...)
``tcpKeepAlive``                 ``keepalives``
==============================  ==============================================================

Properties in the URL's query string (``?sslmode=require&user=x``) count as resource keys and
win over them, as with the JDBC driver. Other keys are not connection settings here and are
listed in :attr:`JdbcSettings.ignored` (the agent logs their names, never their values), except
Sluice's own: ``max-connections`` (default 4: the pool of each agent), ``connection-timeout-
seconds`` (default 30: how long a statement may wait for a connection, connecting included) and
``query-timeout-seconds`` (default 60: PostgreSQL's ``statement_timeout``; 0 for none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from sluice.application.datasources import POSTGRES_DRIVER
from workers.builtin.datasources.errors import DataSourceResourceError

__all__ = ["DOCKER_HOST", "POSTGRES_DRIVER", "JdbcSettings", "jdbc_settings", "redact"]

DOCKER_HOST = "host.docker.internal"
"""Docker's name of the machine running the containers: 127.0.0.1 where it does not resolve."""

_SAME_NAME = ("user", "password", "sslmode", "sslcert", "sslkey", "sslrootcert", "sslpassword")
_RENAMED = {
    "connectTimeout": "connect_timeout",
    "ApplicationName": "application_name",
    "applicationName": "application_name",
    "options": "options",
    "gssEncMode": "gssencmode",
}
_TARGETS = {
    "any": "any",
    "primary": "read-write",
    "master": "read-write",
    "secondary": "standby",
    "slave": "standby",
    "preferSecondary": "prefer-standby",
    "preferSlave": "prefer-standby",
    "preferPrimary": "any",
}
_SLUICE_KEYS = {
    "max-connections": 4,
    "connection-timeout-seconds": 30,
    "query-timeout-seconds": 60,
}
_RESOURCE_KEYS = ("service", "driverClass", "url", "ssl", "loginTimeout", "currentSchema")
_SECRET_KEYS = ("password", "sslpassword")


@dataclass(frozen=True)
class JdbcSettings:
    """How to reach the database of a ``jdbc`` datasource."""

    arguments: Mapping[str, Any]
    """Keyword arguments of ``psycopg.connect`` (password included: never print them)."""
    shown: str
    """The database as messages name it: ``postgresql://host:port/db``, no credentials."""
    max_connections: int = 4
    connection_timeout: float = 30
    query_timeout: float = 60
    ignored: tuple[str, ...] = ()
    """Resource keys that mean nothing to PostgreSQL here (their names only)."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """The password values, for :func:`redact`."""

    def __repr__(self) -> str:
        return f"JdbcSettings({self.shown!r})"


def jdbc_settings(resource: str, config: Mapping[str, Any]) -> JdbcSettings:
    """The settings of the ``jdbc`` datasource ``resource`` (its configuration ``config``).

    Raises :class:`DataSourceResourceError` for a URL that is not PostgreSQL's (naming the driver),
    or a Sluice key that is not a number.
    """
    where = f'datasource "{resource}"'
    driver = str(config.get("driverClass") or "").strip()
    url = str(config.get("url") or "").strip()
    # The URL chooses the database, as JDBC's DriverManager chose the driver accepting it: a
    # jdbc:postgresql: URL runs on PostgreSQL whatever driverClass names (HerdDB's examples).
    if driver and driver != POSTGRES_DRIVER and not url.startswith("jdbc:postgresql:"):
        raise DataSourceResourceError(
            f"{where}: the JDBC driver {driver} is not supported: Sluice connects to PostgreSQL "
            f"only (driverClass {POSTGRES_DRIVER}, url jdbc:postgresql://host:port/database)"
        )
    if not url:
        raise DataSourceResourceError(f"{where}: url is required (jdbc:postgresql://host/db)")
    scheme = url.split("//", 1)[0].split("?", 1)[0].rstrip(":/")
    if not url.startswith("jdbc:postgresql:"):
        raise DataSourceResourceError(
            f"{where}: the JDBC URL {scheme}... is not supported: Sluice connects to PostgreSQL "
            "only (jdbc:postgresql://host:port/database)"
        )
    hosts, ports, database, url_properties = _parse_url(where, url[len("jdbc:postgresql:") :])
    properties = {str(k): v for k, v in config.items() if v is not None}
    properties.update(url_properties)
    arguments: dict[str, Any] = {"host": ",".join(hosts), "port": ",".join(ports)}
    if database:
        arguments["dbname"] = database
    ignored: list[str] = []
    options: list[str] = []
    for key, value in properties.items():
        text = _text(value)
        if key in _SAME_NAME:
            arguments[key] = text
        elif key in _RENAMED:
            if _RENAMED[key] == "options":
                options.append(text)
            else:
                arguments[_RENAMED[key]] = text
        elif key == "loginTimeout":
            arguments.setdefault("connect_timeout", text)
        elif key == "currentSchema":
            options.append(f"-c search_path={text}")
        elif key == "targetServerType":
            arguments["target_session_attrs"] = _TARGETS.get(text, text)
        elif key == "tcpKeepAlive":
            arguments["keepalives"] = "1" if text.lower() == "true" else "0"
        elif key == "ssl":
            if text.lower() == "true":
                arguments.setdefault("sslmode", "verify-full")
        elif key not in _RESOURCE_KEYS and key not in _SLUICE_KEYS:
            ignored.append(key)
    if "connectTimeout" in properties:
        arguments["connect_timeout"] = _text(properties["connectTimeout"])
    if ssl_mode := properties.get("sslmode"):
        arguments["sslmode"] = _text(ssl_mode)
    numbers = {key: _number(where, key, properties.get(key, d)) for key, d in _SLUICE_KEYS.items()}
    if numbers["query-timeout-seconds"] > 0:
        milliseconds = int(numbers["query-timeout-seconds"] * 1000)
        options.append(f"-c statement_timeout={milliseconds}")
    if options:
        arguments["options"] = " ".join(options)
    shown_hosts = ",".join(f"{host}:{port}" for host, port in zip(hosts, ports, strict=True))
    return JdbcSettings(
        arguments=arguments,
        shown=f"postgresql://{shown_hosts}/{database}",
        max_connections=max(1, int(numbers["max-connections"])),
        connection_timeout=numbers["connection-timeout-seconds"],
        query_timeout=numbers["query-timeout-seconds"],
        ignored=tuple(ignored),
        secrets=tuple(str(arguments[key]) for key in _SECRET_KEYS if str(arguments.get(key) or "")),
    )


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced by ``****`` (a safety net for driver messages)."""
    for secret in secrets:
        text = text.replace(secret, "****")
    return text


def _parse_url(where: str, rest: str) -> tuple[list[str], list[str], str, dict[str, str]]:
    """(hosts, ports, database, properties) of what follows ``jdbc:postgresql:``."""
    rest, _, query = rest.partition("?")
    properties = dict(parse_qsl(query, keep_blank_values=True))
    if not rest.startswith("//"):
        return ["localhost"], ["5432"], unquote(rest.lstrip("/")), properties
    authority, _, database = rest[2:].partition("/")
    if "@" in authority:
        raise DataSourceResourceError(
            f"{where}: the JDBC URL must not carry credentials before the host: give user and "
            "password as keys of the resource"
        )
    hosts: list[str] = []
    ports: list[str] = []
    for item in authority.split(","):
        host, port = _host_port(item)
        if not host:
            raise DataSourceResourceError(f"{where}: the JDBC URL names no host ({item!r})")
        if not port.isdigit():
            raise DataSourceResourceError(f"{where}: the JDBC URL's port {port!r} is not a number")
        hosts.append(host)
        ports.append(port)
    return hosts, ports, unquote(database), properties


def _host_port(item: str) -> tuple[str, str]:
    if item.startswith("["):  # [IPv6]:port
        host, _, after = item[1:].partition("]")
        return host, after.removeprefix(":") or "5432"
    host, _, port = item.partition(":")
    return host, port or "5432"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(where: str, key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or number < 0:
        raise DataSourceResourceError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return number
