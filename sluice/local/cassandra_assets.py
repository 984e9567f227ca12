"""Creating and deleting the Cassandra assets of an application: ``cassandra-keyspace``,
``cassandra-table`` and ``astra-keyspace``, on a ``cassandra`` or ``astra`` datasource.

As LangStream's asset manager did:

- ``cassandra-keyspace`` (``keyspace``, ``create-statements``, ``delete-statements``): when the
  keyspace is not there, each create statement runs; deletion runs the delete statements when
  it is there.
- ``cassandra-table`` (``keyspace``, ``table-name``, the same statements): the keyspace must
  exist (else an error suggesting a ``cassandra-keyspace`` asset); when the table is not there,
  each create statement runs in that keyspace. Deletion runs the delete statements when the
  table is there.
- A statement answered "already exists" (another agent or process made it meanwhile) counts as
  done.

``astra-keyspace`` (``keyspace``): on an ``astra`` datasource that names its database for
Astra's DevOps API (``database`` or ``database-id``, with ``token``), the keyspace is looked up,
created (``POST .../keyspaces/<name>``) and deleted through that API, as LangStream did
(:mod:`workers.builtin.datasources.astra_devops`); after creating it Sluice waits until CQL sees
it (Astra makes it in the background), so the tables that follow find it. Otherwise (a
``cassandra`` datasource, an application pointed at its own Cassandra, or an ``astra`` one with
only a bundle) it is made with CQL, ``CREATE KEYSPACE IF NOT EXISTS ... SimpleStrategy,
replication_factor 1`` (one node for development), and deleted with ``DROP KEYSPACE IF EXISTS``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sluice.application import Application
from sluice.application.model import AssetSpec
from sluice.local.asset_errors import AssetError

if TYPE_CHECKING:
    from workers.builtin.datasources.cassandra import CassandraDataSource

__all__ = ["CASSANDRA_ASSETS", "create_cassandra_asset", "delete_cassandra_asset"]

CASSANDRA_ASSETS = ("cassandra-keyspace", "cassandra-table", "astra-keyspace")
_VISIBLE_WITHIN = 120.0
"""Seconds a keyspace created through the DevOps API has to show in CQL."""


def _error(message: str) -> AssetError:
    return AssetError(message)


async def create_cassandra_asset(app: Application, asset: AssetSpec) -> str:
    """Create ``asset`` when it is not there; what was done, one line."""
    where = _where(asset)
    keyspace = str(asset.config.get("keyspace") or "")
    async with _Session(app, asset) as (source, service):
        present = await source.keyspaces()
        if asset.asset_type == "cassandra-table":
            table = str(asset.config.get("table-name") or "")
            if keyspace not in present:
                raise _error(
                    f"{where}: the keyspace {keyspace} does not exist; a cassandra-keyspace "
                    "asset can create it"
                )
            if table in present[keyspace] or table.lower() in present[keyspace]:
                return f"{asset.id}: table {keyspace}.{table} is there"
            await _run(asset, source, asset.config.get("create-statements") or (), keyspace)
            return f"{asset.id}: table {keyspace}.{table} created"
        if _devops(asset, source, service):
            return await _create_through_devops(asset, source, keyspace)
        if keyspace in present or keyspace.lower() in present:
            return f"{asset.id}: keyspace {keyspace} is there"
        if asset.asset_type == "astra-keyspace":
            statement = (
                f"CREATE KEYSPACE IF NOT EXISTS {_quoted(keyspace)} WITH replication = "
                "{'class': 'SimpleStrategy', 'replication_factor': 1}"
            )
            await _run(asset, source, [statement], None)
        else:
            await _run(asset, source, asset.config.get("create-statements") or (), None)
        return f"{asset.id}: keyspace {keyspace} created"


async def delete_cassandra_asset(app: Application, asset: AssetSpec) -> str:
    """Delete ``asset`` (its delete statements); what was done, one line."""
    keyspace = str(asset.config.get("keyspace") or "")
    async with _Session(app, asset) as (source, service):
        if _devops(asset, source, service):
            return await _delete_through_devops(asset, source, keyspace)
        if asset.asset_type == "astra-keyspace":
            statements: Sequence[Any] = [f"DROP KEYSPACE IF EXISTS {_quoted(keyspace)}"]
        else:
            statements = asset.config.get("delete-statements") or ()
        present = await source.keyspaces()
        if asset.asset_type == "cassandra-table":
            table = str(asset.config.get("table-name") or "")
            if table not in present.get(keyspace, ()) and table.lower() not in present.get(
                keyspace, ()
            ):
                return f"{asset.id}: table {keyspace}.{table} is not there"
            await _run(asset, source, statements, keyspace)
            return f"{asset.id}: table {keyspace}.{table} deleted"
        if keyspace not in present and keyspace.lower() not in present:
            return f"{asset.id}: keyspace {keyspace} is not there"
        await _run(asset, source, statements, None)
    return f"{asset.id}: keyspace {keyspace} deleted"


def _devops(asset: AssetSpec, source: CassandraDataSource, service: str) -> bool:
    """Whether ``asset`` is an astra-keyspace made through Astra's DevOps API."""
    return (
        asset.asset_type == "astra-keyspace"
        and service == "astra"
        and source.settings.astra is not None
    )


async def _create_through_devops(
    asset: AssetSpec, source: CassandraDataSource, keyspace: str
) -> str:
    from workers.builtin.datasources.errors import DataSourceResourceError

    try:
        async with source.devops() as api:
            if keyspace in await api.keyspaces():
                return f"{asset.id}: keyspace {keyspace} is there"
            await api.create_keyspace(keyspace)
    except DataSourceResourceError as error:
        raise _error(f"{_where(asset)}: {error}") from None
    deadline = time.monotonic() + _VISIBLE_WITHIN
    while keyspace not in await source.keyspaces():
        if time.monotonic() > deadline:
            raise _error(
                f"{_where(asset)}: the keyspace {keyspace} was created through Astra's DevOps "
                f"API but CQL does not show it after {_VISIBLE_WITHIN:g} s"
            )
        await asyncio.sleep(1)
    return f"{asset.id}: keyspace {keyspace} created"


async def _delete_through_devops(
    asset: AssetSpec, source: CassandraDataSource, keyspace: str
) -> str:
    from workers.builtin.datasources.errors import DataSourceResourceError

    try:
        async with source.devops() as api:
            if keyspace not in await api.keyspaces():
                return f"{asset.id}: keyspace {keyspace} is not there"
            await api.delete_keyspace(keyspace)
    except DataSourceResourceError as error:
        raise _error(f"{_where(asset)}: {error}") from None
    return f"{asset.id}: keyspace {keyspace} deleted"


def _where(asset: AssetSpec) -> str:
    return f'asset "{asset.id}" ({asset.pipeline_file})'


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Session:
    """The started datasource of a Cassandra asset and its service, closed at the end."""

    def __init__(self, app: Application, asset: AssetSpec) -> None:
        where = _where(asset)
        name = str(asset.config.get("datasource") or "")
        resources = {r.id: r for r in app.resources}
        if name not in resources:
            known = ", ".join(sorted(resources)) or "none"
            raise _error(f'{where}: datasource "{name}" is not a resource (resources: {known})')
        configuration = dict(resources[name].configuration)
        self.service = str(configuration.get("service") or "")
        if self.service not in ("cassandra", "astra"):
            raise _error(
                f'{where}: datasource "{name}" has service "{self.service}"; '
                f"{asset.asset_type} needs a cassandra or astra datasource"
            )
        try:
            from workers.builtin.datasources.cassandra import (
                CassandraDataSource,
                cassandra_settings,
            )
            from workers.builtin.datasources.errors import DataSourceResourceError
        except ImportError as error:
            raise _error(
                f"{where}: Cassandra assets need cassandra-driver (Sluice's db extra: "
                f"pip install 'sluicegate[db]'): {error}"
            ) from None
        try:
            self.source = CassandraDataSource(name, cassandra_settings(name, configuration))
        except DataSourceResourceError as error:
            raise _error(f"{where}: {error}") from None

    async def __aenter__(self) -> tuple[CassandraDataSource, str]:
        from workers.builtin.datasources.errors import DataSourceResourceError

        try:
            await self.source.start()
        except DataSourceResourceError as error:
            raise _error(str(error)) from None
        return self.source, self.service

    async def __aexit__(self, *exc_info: object) -> None:
        await self.source.close()


async def _run(
    asset: AssetSpec,
    source: CassandraDataSource,
    statements: Sequence[Any],
    keyspace: str | None,
) -> None:
    from workers.builtin.datasources.errors import DataSourceError

    for position, statement in enumerate(statements, start=1):
        try:
            await source.statement(str(statement), keyspace)
        except DataSourceError as error:
            raise _error(
                f"{_where(asset)}: statement {position} of {len(statements)} failed: {error}"
            ) from None
