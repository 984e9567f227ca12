"""Creating and deleting ``milvus-collection`` assets, on a ``milvus`` resource of the
application, as LangStream's asset manager did: when the collection ``collection-name`` is not
there, each of ``create-statements`` (JSON commands: ``create-collection``, ``create-index``,
``load-collection``, ``create-simple-collection``) runs in order; a collection that is there is
left as it is. Deletion (``deletion-mode: delete``) drops the collection when it is there.
``database-name`` is read and not used (the resource's default database), as LangStream's client
did not pass it on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.application import Application
from sluice.application.model import AssetSpec
from sluice.local.asset_errors import AssetError

if TYPE_CHECKING:
    from workers.builtin.datasources.milvus import MilvusCollections

__all__ = ["MILVUS_ASSETS", "create_milvus_collection", "delete_milvus_collection"]

MILVUS_ASSETS = ("milvus-collection",)


async def create_milvus_collection(app: Application, asset: AssetSpec) -> str:
    """Create ``asset``'s collection when it is not there; what was done, one line."""
    from workers.builtin.datasources.errors import DataSourceError
    from workers.builtin.datasources.milvus_statements import parse_statement

    name = str(asset.config.get("collection-name") or "")
    statements = list(asset.config.get("create-statements") or ())
    collections = await _open(app, asset)
    try:
        if await collections.exists(name):
            return f"{asset.id}: collection {name} is there"
        for position, text in enumerate(statements, start=1):
            where = f"{_where(asset)}: statement {position} of {len(statements)}"
            try:
                await collections.run(parse_statement(where, str(text), name))
            except DataSourceError as error:
                message = str(error)
                text = message if message.startswith(where) else f"{where}: {message}"
                raise AssetError(text) from None
        return f"{asset.id}: collection {name} created"
    except DataSourceError as error:
        raise AssetError(f"{_where(asset)}: {error}") from None
    finally:
        await collections.close()


async def delete_milvus_collection(app: Application, asset: AssetSpec) -> str:
    """Drop ``asset``'s collection when it is there; what was done, one line."""
    from workers.builtin.datasources.errors import DataSourceError

    name = str(asset.config.get("collection-name") or "")
    collections = await _open(app, asset)
    try:
        if not await collections.exists(name):
            return f"{asset.id}: collection {name} is not there"
        await collections.drop(name)
        return f"{asset.id}: collection {name} deleted"
    except DataSourceError as error:
        raise AssetError(f"{_where(asset)}: {error}") from None
    finally:
        await collections.close()


def _where(asset: AssetSpec) -> str:
    return f'asset "{asset.id}" ({asset.pipeline_file})'


async def _open(app: Application, asset: AssetSpec) -> MilvusCollections:
    where = _where(asset)
    name = str(asset.config.get("datasource") or "")
    config: dict[str, Any] = {
        "datasource": name,
        "resources": {r.id: dict(r.configuration) for r in app.resources},
        "resource-types": {r.id: r.type for r in app.resources},
    }
    try:
        from workers.builtin.datasources import (
            DATASOURCE,
            VECTOR_DATABASE,
            DataSourceResourceError,
            datasource_resource,
        )
        from workers.builtin.datasources.milvus import MilvusCollections
    except ImportError as error:
        raise AssetError(
            f"{where}: milvus-collection assets need pymilvus (Sluice's milvus extra: "
            f"pip install 'sluicegate[milvus]'): {error}"
        ) from None
    try:
        resource, configuration = datasource_resource(where, config, (DATASOURCE, VECTOR_DATABASE))
        if str(configuration.get("service") or "") != "milvus":
            raise AssetError(f'{where}: datasource "{resource}" is not a milvus resource')
        collections = MilvusCollections(resource, configuration)
        await collections.start()
    except DataSourceResourceError as error:
        raise AssetError(str(error)) from None
    return collections
