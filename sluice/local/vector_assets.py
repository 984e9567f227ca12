"""Creating and deleting the assets of the vector databases reached over HTTP:
``opensearch-index``, ``solr-collection`` and ``astra-collection``, as LangStream's asset
managers did.

- ``opensearch-index`` (``datasource``, ``settings`` and ``mappings`` as JSON texts): when the
  datasource's ``index-name`` is not there (``HEAD /<index>``), ``PUT /<index>`` with them.
  Deletion: ``DELETE /<index>`` (nothing to do when it is not there).
- ``solr-collection`` (``datasource``, ``create-statements``: each ``{api, method, body}`` with
  ``api`` ``/api/collections`` or ``/schema``, ``method`` POST by default, ``body`` JSON with or
  without its braces): when the datasource's ``collection-name`` is not there
  (``GET /api/collections/<name>`` answering 400 or 404, as Solr 9.3 does), each statement is
  sent in order. Deletion: ``DELETE /api/collections/<name>``.
- ``astra-collection`` (``datasource``, ``collection-name``, ``vector-dimension`` 1536): when
  ``findCollections`` does not list it, ``createCollection`` with that vector dimension.
  Deletion: ``deleteCollection``.

A service that refuses the credentials, cannot be reached or answers an error stops the start
with the asset and the reason, never a credential.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sluice.application import Application
from sluice.application.model import AssetSpec
from sluice.local.asset_errors import AssetError

if TYPE_CHECKING:
    from workers.builtin.datasources.http import JsonHttp

__all__ = ["VECTOR_ASSETS", "create_vector_asset", "delete_vector_asset"]

VECTOR_ASSETS = ("opensearch-index", "solr-collection", "astra-collection")
_SERVICES = {
    "opensearch-index": "opensearch",
    "solr-collection": "solr",
    "astra-collection": "astra-vector-db",
}


async def create_vector_asset(app: Application, asset: AssetSpec) -> str:
    """Create ``asset`` when it is not there; what was done, one line."""
    return await _apply(app, asset, create=True)


async def delete_vector_asset(app: Application, asset: AssetSpec) -> str:
    """Delete ``asset`` when it is there; what was done, one line."""
    return await _apply(app, asset, create=False)


async def _apply(app: Application, asset: AssetSpec, *, create: bool) -> str:
    from workers.builtin.datasources import DataSourceError, DataSourceResourceError

    where = f'asset "{asset.id}" ({asset.pipeline_file})'
    resource = _resource(app, asset, where)
    try:
        if asset.asset_type == "opensearch-index":
            return await _opensearch(asset, resource, create)
        if asset.asset_type == "solr-collection":
            return await _solr(asset, resource, create, where)
        return await _astra(asset, resource, create, where)
    except (DataSourceError, DataSourceResourceError) as error:
        raise AssetError(f"{where}: {error}") from None


def _resource(app: Application, asset: AssetSpec, where: str) -> tuple[str, Mapping[str, Any]]:
    name = str(asset.config.get("datasource") or "")
    found = {r.id: r for r in app.resources}.get(name)
    if found is None:
        raise AssetError(f'{where}: datasource "{name}" is not a resource of the application')
    service = str(found.configuration.get("service") or "")
    wanted = _SERVICES[asset.asset_type]
    if service != wanted:
        raise AssetError(
            f'{where}: {asset.asset_type} needs a {wanted} datasource; "{name}" has service '
            f"{service or '(none)'!r}"
        )
    return name, found.configuration


async def _opensearch(
    asset: AssetSpec, resource: tuple[str, Mapping[str, Any]], create: bool
) -> str:
    from workers.builtin.datasources.http import JsonHttp
    from workers.builtin.datasources.opensearch import opensearch_settings

    settings, index = opensearch_settings(*resource)
    http = JsonHttp(settings)
    path = f"/{quote(index, safe='')}"
    try:
        status, _ = await http.request("HEAD", path, allowed=(404,))
        there = status != 404
        if create:
            if there:
                return f"{asset.id}: index {index} is there"
            body = {
                key: _json(asset, key, text)
                for key in ("settings", "mappings")
                if (text := str(asset.config.get(key) or "").strip())
            }
            await http.request("PUT", path, body)
            return f"{asset.id}: index {index} created"
        if not there:
            return f"{asset.id}: index {index} is not there"
        await http.request("DELETE", path, allowed=(404,))
        return f"{asset.id}: index {index} deleted"
    finally:
        await http.close()


async def _solr(
    asset: AssetSpec, resource: tuple[str, Mapping[str, Any]], create: bool, where: str
) -> str:
    from workers.builtin.datasources.http import JsonHttp
    from workers.builtin.datasources.solr import solr_settings

    settings, collection = solr_settings(*resource)
    http = JsonHttp(settings)
    described = f"/api/collections/{quote(collection, safe='')}"
    try:
        status, _ = await http.request("GET", described, allowed=(400, 404))
        there = status not in (400, 404)
        if not create:
            if not there:
                return f"{asset.id}: collection {collection} is not there"
            await http.request("DELETE", described)
            return f"{asset.id}: collection {collection} deleted"
        if there:
            return f"{asset.id}: collection {collection} is there"
        statements = asset.config.get("create-statements") or ()
        for position, statement in enumerate(statements, start=1):
            await _solr_statement(http, collection, statement, f"{where}: statement {position}")
        return f"{asset.id}: collection {collection} created"
    finally:
        await http.close()


async def _solr_statement(http: JsonHttp, collection: str, statement: Any, where: str) -> None:
    if not isinstance(statement, Mapping):
        raise AssetError(f"{where} must be a mapping with api, method and body")
    api = str(statement.get("api") or "")
    paths = {"/api/collections": "/api/collections", "/schema": f"/solr/{quote(collection)}/schema"}
    if api not in paths:
        raise AssetError(f"{where}: api must be /api/collections or /schema, got {api!r}")
    text = str(statement.get("body") or "").strip()
    text = text if text.startswith("{") else "{" + text + "}"
    try:
        body = json.loads(text)
    except ValueError as error:
        raise AssetError(f"{where}: body is not JSON ({error})") from None
    method = str(statement.get("method") or "POST").upper()
    await http.request(method, paths[api], body)


async def _astra(
    asset: AssetSpec, resource: tuple[str, Mapping[str, Any]], create: bool, where: str
) -> str:
    from workers.builtin.datasources.astra_vector import DataApi

    collection = str(asset.config.get("collection-name") or "")
    if not collection:
        raise AssetError(f"{where}: collection-name is required by astra-collection")
    api = DataApi(*resource)
    try:
        answer = await api.command(None, "findCollections", {})
        there = collection in ((answer.get("status") or {}).get("collections") or ())
        if create:
            if there:
                return f"{asset.id}: collection {collection} is there"
            try:
                dimension = int(asset.config.get("vector-dimension") or 1536)
            except (TypeError, ValueError):
                raise AssetError(f"{where}: vector-dimension must be a number") from None
            options = {"vector": {"dimension": dimension}}
            await api.command(None, "createCollection", {"name": collection, "options": options})
            return f"{asset.id}: collection {collection} created"
        if not there:
            return f"{asset.id}: collection {collection} is not there"
        await api.command(None, "deleteCollection", {"name": collection})
        return f"{asset.id}: collection {collection} deleted"
    finally:
        await api.close()


def _json(asset: AssetSpec, key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise AssetError(
            f'asset "{asset.id}" ({asset.pipeline_file}): {key} is not JSON ({error})'
        ) from None
