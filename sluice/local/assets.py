"""Creating an application's assets before its workers start (``sluice run``), and deleting
them when asked.

Sluice manages ``jdbc-table`` assets, as LangStream's asset manager did: with
``creation-mode: create-if-not-exists``, when the table ``table-name`` is not found (as written,
or lowercased: PostgreSQL folds unquoted names), each of ``create-statements`` runs, in order, on
the asset's ``datasource`` (a ``jdbc`` resource of the application); a table that is there is
left as it is. The Cassandra assets (``cassandra-keyspace``, ``cassandra-table``,
``astra-keyspace``) are created first, in their order, by :mod:`sluice.local.cassandra_assets`.
:func:`delete_assets` runs ``delete-statements`` of the assets with
``deletion-mode: delete`` whose table is there. Other asset types are not created (the loader
warned about them).

A datasource that cannot be reached, or a statement that fails, stops the start with the asset,
the statement's position and the reason, never the datasource's password.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sluice.application import Application
from sluice.application.model import AssetSpec
from sluice.local.asset_errors import AssetError
from sluice.local.cassandra_assets import (
    CASSANDRA_ASSETS,
    create_cassandra_asset,
    delete_cassandra_asset,
)
from sluice.local.milvus_assets import (
    MILVUS_ASSETS,
    create_milvus_collection,
    delete_milvus_collection,
)
from sluice.local.vector_assets import (
    VECTOR_ASSETS,
    create_vector_asset,
    delete_vector_asset,
)

if TYPE_CHECKING:
    # Imported when an asset is created: psycopg comes with the db extra.
    from workers.builtin.datasources import PostgresDataSource

__all__ = ["AssetError", "create_assets", "delete_assets"]


async def create_assets(app: Application) -> list[str]:
    """Create the ``jdbc-table`` assets to create; what was done, one line per asset."""
    done: list[str] = []
    for asset in _cassandra_assets(app):
        if asset.creation_mode == "create-if-not-exists":
            done.append(await create_cassandra_asset(app, asset))
    for asset in app.assets:
        if asset.asset_type in MILVUS_ASSETS and asset.creation_mode == "create-if-not-exists":
            done.append(await create_milvus_collection(app, asset))
    for asset in _jdbc_tables(app):
        if asset.creation_mode != "create-if-not-exists":
            continue
        table = str(asset.config["table-name"])
        async with _Table(app, asset) as datasource:
            if await _exists(datasource, table):
                done.append(f"{asset.id}: table {table} is there")
                continue
            await _run(asset, datasource, asset.config.get("create-statements") or ())
        done.append(f"{asset.id}: table {table} created")
    for asset in app.assets:
        if asset.asset_type in VECTOR_ASSETS and asset.creation_mode == "create-if-not-exists":
            done.append(await create_vector_asset(app, asset))
    return done


async def delete_assets(app: Application) -> list[str]:
    """Run ``delete-statements`` of the ``jdbc-table`` assets with ``deletion-mode: delete``
    whose table is there; what was done, one line per asset."""
    done: list[str] = []
    for asset in reversed(_cassandra_assets(app)):  # tables before their keyspace
        if asset.deletion_mode == "delete":
            done.append(await delete_cassandra_asset(app, asset))
    for asset in app.assets:
        if asset.asset_type in MILVUS_ASSETS and asset.deletion_mode == "delete":
            done.append(await delete_milvus_collection(app, asset))
    for asset in _jdbc_tables(app):
        if asset.deletion_mode != "delete":
            continue
        table = str(asset.config["table-name"])
        async with _Table(app, asset) as datasource:
            if not await _exists(datasource, table):
                done.append(f"{asset.id}: table {table} is not there")
                continue
            await _run(asset, datasource, asset.config.get("delete-statements") or ())
        done.append(f"{asset.id}: table {table} deleted")
    for asset in app.assets:
        if asset.asset_type in VECTOR_ASSETS and asset.deletion_mode == "delete":
            done.append(await delete_vector_asset(app, asset))
    return done


def _cassandra_assets(app: Application) -> list[AssetSpec]:
    return [asset for asset in app.assets if asset.asset_type in CASSANDRA_ASSETS]


def _jdbc_tables(app: Application) -> list[AssetSpec]:
    return [asset for asset in app.assets if asset.asset_type == "jdbc-table"]


class _Table:
    """The started datasource of a ``jdbc-table`` asset, closed at the end of the block."""

    def __init__(self, app: Application, asset: AssetSpec) -> None:
        self.asset = asset
        where = f'asset "{asset.id}" ({asset.pipeline_file})'
        name = str(asset.config.get("datasource") or "")
        config: dict[str, Any] = {
            "datasource": name,
            "resources": {r.id: dict(r.configuration) for r in app.resources},
            "resource-types": {r.id: r.type for r in app.resources},
        }
        try:
            from workers.builtin.datasources import DataSourceResourceError, open_datasource
        except ImportError as error:
            raise AssetError(
                f"{where}: jdbc-table assets need psycopg (Sluice's db extra: "
                f"pip install 'sluicegate[db]'): {error}"
            ) from None
        try:
            self.datasource = open_datasource(where, config)
        except DataSourceResourceError as error:
            raise AssetError(str(error)) from None

    async def __aenter__(self) -> PostgresDataSource:
        from workers.builtin.datasources import DataSourceResourceError

        try:
            await self.datasource.start()
        except DataSourceResourceError as error:
            raise AssetError(str(error)) from None
        return self.datasource

    async def __aexit__(self, *exc_info: object) -> None:
        await self.datasource.close()


async def _exists(datasource: PostgresDataSource, table: str) -> bool:
    """Whether ``table`` is found as written or lowercased (LangStream tried the cases too)."""
    async with datasource.connection() as connection:
        for name in dict.fromkeys((table, table.lower())):
            cursor = await connection.execute("SELECT to_regclass(%s) AS found", [name])
            row = await cursor.fetchone()
            if row is not None and row["found"] is not None:
                return True
    return False


async def _run(asset: AssetSpec, datasource: PostgresDataSource, statements: Sequence[Any]) -> None:
    from workers.builtin.datasources import DataSourceError

    for position, statement in enumerate(statements, start=1):
        try:
            async with datasource.connection() as connection:
                await connection.execute(str(statement))  # no parameters: % and ? are SQL's
        except DataSourceError as error:
            raise AssetError(
                f'asset "{asset.id}" ({asset.pipeline_file}): statement {position} of '
                f"{len(statements)} failed: {error}"
            ) from None
