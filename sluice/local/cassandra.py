"""The Cassandra node ``sluice run`` starts for an application's ``cassandra`` datasources, as it
starts PostgreSQL for ``jdbc`` ones.

A ``cassandra`` datasource whose ``contact-points`` all name this machine (``localhost``,
``127.0.0.1``, ``::1`` or Docker's ``host.docker.internal``) on a ``port`` (9042 by default) where
nothing listens gets a local Cassandra 5 node (:mod:`sluice.cassandra`, Java 17 and the jars
Maven downloads once) on that port; the agents then connect as the datasource says. Its
``username`` and ``password`` (or ``clientId`` and ``secret``) become a login role of the node.
A port where something listens is left alone (a Cassandra of your own), and so is a datasource
naming another host, or an ``astra`` one.

The node's directory is ``<data dir>/cassandra-<port>`` (the PostgreSQL data directory's base,
by default Sluice's user data directory): keyspaces and tables stay from one run to the next.
Each node started here is stopped when the run ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import platformdirs

from sluice.application import Application
from sluice.cassandra import LocalCassandra, LocalCassandraError, LocalCassandraSettings
from sluice.local.databases import LOCAL_HOSTS
from sluice.local.events import RunEvents
from sluice.local.servers import first_per_port, start_unless_listening

__all__ = ["LocalCassandraWanted", "local_cassandra", "wanted_cassandra"]

DEFAULT_PORT = 9042


@dataclass(frozen=True)
class LocalCassandraWanted:
    """A Cassandra node the application expects on this machine: its port, the login, and the
    datasource that names it first."""

    port: int
    user: str | None
    password: str | None = field(repr=False)
    resource: str


def wanted_cassandra(app: Application) -> list[LocalCassandraWanted]:
    """The local Cassandra nodes the ``cassandra`` datasources of ``app`` name, one per port
    (the first datasource naming a port decides its login)."""
    return first_per_port(app, "cassandra", _local)


def _local(resource: str, config: Mapping[str, Any]) -> LocalCassandraWanted | None:
    points = config.get("contact-points") or ()
    if isinstance(points, str):
        points = points.split(",")
    hosts = [str(p).strip().strip("[]").lower() for p in points if str(p).strip()]
    port = str(config.get("port") or DEFAULT_PORT).strip()
    if not hosts or any(h not in LOCAL_HOSTS for h in hosts) or not port.isdigit():
        return None
    user = _text(config.get("username")) or _text(config.get("clientId"))
    password = _text(config.get("password")) or _text(config.get("secret"))
    return LocalCassandraWanted(
        port=int(port),
        user=user if password is not None else None,
        password=password if user is not None else None,
        resource=resource,
    )


def _text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


@contextlib.asynccontextmanager
async def local_cassandra(
    app: Application,
    data_dir: Path | None,
    events: RunEvents,
    java_home: Path | None = None,
) -> AsyncIterator[None]:
    """Start the Cassandra nodes ``app`` expects here and nothing listens for; stop them at the
    end. ``data_dir``: the base of their directories (None: Sluice's user data directory)."""
    wanted = wanted_cassandra(app)
    if not wanted:
        yield
        return
    async with contextlib.AsyncExitStack() as stack:
        for node in wanted:
            base = data_dir or platformdirs.user_data_path("sluice")
            settings = LocalCassandraSettings(
                directory=base / f"cassandra-{node.port}",
                port=node.port,
                user=node.user,
                password=node.password,
                java_home=java_home,
            )
            try:
                await start_unless_listening(
                    stack,
                    events,
                    partial(LocalCassandra, settings, progress=events.working),
                    kind="Cassandra",
                    port=node.port,
                    resource=node.resource,
                    described="local Cassandra 5 node",
                )
            except LocalCassandraError as error:
                raise LocalCassandraError(
                    f'the local Cassandra for datasource "{node.resource}" (port {node.port}) '
                    f"did not start: {error}"
                ) from None
        yield
