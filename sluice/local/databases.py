"""The PostgreSQL ``sluice run`` starts for an application's ``jdbc`` datasources, as it starts
Kafka when the instance names none.

A ``jdbc`` datasource whose URL names this machine (``localhost``, ``127.0.0.1``, ``::1``, or
Docker's ``host.docker.internal``, which means the machine running the containers, that is this
one when nothing runs in a container) on a port where nothing listens gets a local PostgreSQL
with pgvector (:mod:`sluice.postgres`) on that port: its superuser is the datasource's ``user``
(``postgres`` if none) with its ``password``, and the URL's database is created. The workers
then connect to the URL as written. A port where something listens is left alone (a PostgreSQL
of your own), and so is a datasource naming another host.

The data directory is ``<data dir>/<port>``: the tables stay from one run to the next (the
superuser's password is the one of the first run). Each server started here is stopped when the
run ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sluice.application import Application
from sluice.local.events import RunEvents
from sluice.local.servers import first_per_port, start_unless_listening

__all__ = ["LOCAL_HOSTS", "LocalDatabase", "local_databases", "wanted_databases"]

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "host.docker.internal")
"""Host names of a JDBC URL that mean this machine to ``sluice run``."""


@dataclass(frozen=True)
class LocalDatabase:
    """A PostgreSQL the application expects on this machine: its port, the superuser and the
    database, and the datasource that names it first."""

    port: int
    user: str
    password: str | None
    database: str
    resource: str


def wanted_databases(app: Application) -> list[LocalDatabase]:
    """The local PostgreSQL servers the ``jdbc`` datasources of ``app`` name, one per port
    (the first datasource naming a port decides its user and database)."""
    return first_per_port(app, "jdbc", _local)


def _local(resource: str, config: Mapping[str, Any]) -> LocalDatabase | None:
    url = str(config.get("url") or "")
    prefix = "jdbc:postgresql://"
    if not url.startswith(prefix):
        return None
    authority, _, rest = url[len(prefix) :].partition("/")
    if "," in authority or "@" in authority:
        return None
    if authority.startswith("["):
        host, _, port_text = authority[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = authority.partition(":")
    if host.lower() not in LOCAL_HOSTS or not (port_text or "5432").isdigit():
        return None
    user = str(config.get("user") or "postgres")
    password = config.get("password")
    database = rest.partition("?")[0] or user
    return LocalDatabase(
        port=int(port_text or "5432"),
        user=user,
        password=None if password in (None, "") else str(password),
        database=database,
        resource=resource,
    )


@contextlib.asynccontextmanager
async def local_databases(
    app: Application, data_dir: Path | None, events: RunEvents
) -> AsyncIterator[None]:
    """Start the PostgreSQL servers ``app`` expects here and nothing listens for; stop them at
    the end. ``data_dir``: where their data goes (None: the local server's default)."""
    wanted = wanted_databases(app)
    if not wanted:
        yield
        return
    from sluice.postgres import LocalPostgres, LocalPostgresSettings

    async with contextlib.AsyncExitStack() as stack:
        for database in wanted:
            base = data_dir or LocalPostgresSettings().resolved_data_dir()
            settings = LocalPostgresSettings(
                port=database.port,
                user=database.user,
                password=database.password,
                database=database.database,
                data_dir=base / str(database.port),
            )
            await start_unless_listening(
                stack,
                events,
                partial(LocalPostgres, settings),
                kind="PostgreSQL",
                port=database.port,
                resource=database.resource,
                described="local server with pgvector",
            )
        yield
