"""The Milvus Lite server ``sluice run`` starts for an application's ``milvus`` resources, as it
starts PostgreSQL for ``jdbc`` ones.

A ``milvus`` resource whose ``host`` names this machine (``localhost``, ``127.0.0.1``, ``::1``
or Docker's ``host.docker.internal``) on a port (19530 by default) where nothing listens gets a
Milvus Lite server (:mod:`sluice.milvus`, the ``milvus`` extra) on that port; the agents then
connect as the resource says. A port where something listens is left alone (a Milvus of your
own), and so is a resource naming another host or a ``url``. Milvus Lite has no users: the
resource's ``user`` and ``password`` are not checked.

The data directory is ``<data dir>/milvus-<port>`` (the PostgreSQL data directory's base, by
default Sluice's user data directory): collections stay from one run to the next. Each server
started here is stopped when the run ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import platformdirs

from sluice.application import Application
from sluice.local.databases import LOCAL_HOSTS
from sluice.local.events import RunEvents
from sluice.local.servers import start_unless_listening
from sluice.milvus import LocalMilvus

__all__ = ["local_milvus", "wanted_milvus"]

DEFAULT_PORT = 19530


def wanted_milvus(app: Application) -> dict[int, str]:
    """The local ports the ``milvus`` resources of ``app`` name -> the first resource naming
    each."""
    found: dict[int, str] = {}
    for resource in app.resources:
        config = resource.configuration
        if str(config.get("service") or "") != "milvus" or str(config.get("url") or "").strip():
            continue
        host = str(config.get("host") or "").strip().strip("[]").lower()
        port = str(config.get("port") or DEFAULT_PORT).strip()
        if host in LOCAL_HOSTS and port.isdigit():
            found.setdefault(int(port), resource.id)
    return found


@contextlib.asynccontextmanager
async def local_milvus(
    app: Application, data_dir: Path | None, events: RunEvents
) -> AsyncIterator[None]:
    """Start the Milvus Lite servers ``app`` expects here and nothing listens for; stop them at
    the end."""
    wanted = wanted_milvus(app)
    async with contextlib.AsyncExitStack() as stack:
        for port, resource in wanted.items():
            directory = (data_dir or platformdirs.user_data_path("sluice")) / f"milvus-{port}"
            await start_unless_listening(
                stack,
                events,
                partial(LocalMilvus, directory, port=port),
                kind="Milvus",
                port=port,
                resource=resource,
                described="local Milvus Lite server",
            )
        yield
