"""Reading ``assets`` of pipeline files: tables and other things an application needs to exist
before its agents run.

An asset has an ``asset-type``, a ``creation-mode`` (``none``, the default, or
``create-if-not-exists``), a ``deletion-mode`` (``none`` or ``delete``) and a ``config``
(LangStream's keys). Sluice creates ``jdbc-table``, ``cassandra-keyspace``, ``cassandra-table``,
``astra-keyspace`` and ``milvus-collection`` assets (``sluice run``, before the workers start);
the other LangStream types (``opensearch-index``...) load with a warning that they are not
created. A
``jdbc-table``'s ``config`` holds ``datasource`` (a resource's name), ``table-name``,
``create-statements`` (run when the table does not exist) and ``delete-statements`` (only, and
then required, with ``deletion-mode: delete``), as LangStream required them. The Cassandra ones
also name their ``keyspace`` (``cassandra-keyspace`` has no ``table-name``; ``astra-keyspace``
has no statements).
"""

from __future__ import annotations

from typing import Any

from sluice.application.model import AssetSpec
from sluice.application.reader import Node

__all__ = ["ASSET_TYPES", "CREATED", "parse_assets"]

ASSET_KEYS = ("id", "name", "asset-type", "creation-mode", "deletion-mode", "config")
ASSET_TYPES = (
    "jdbc-table",
    "cassandra-table",
    "cassandra-keyspace",
    "astra-keyspace",
    "milvus-collection",
    "solr-collection",
    "opensearch-index",
    "astra-collection",
)
"""LangStream's asset types."""
HTTP_VECTOR_ASSETS = {
    "opensearch-index": ("datasource", "settings", "mappings"),
    "solr-collection": ("datasource", "create-statements"),
    "astra-collection": ("datasource", "collection-name", "vector-dimension"),
}
"""The assets of the vector databases reached over HTTP, created by Sluice too, and their keys
(``datasource`` required; ``create-statements`` of solr and ``collection-name`` of astra too)."""
CREATED = (
    "jdbc-table",
    "cassandra-keyspace",
    "cassandra-table",
    "astra-keyspace",
    "milvus-collection",
    *HTTP_VECTOR_ASSETS,
)
"""The asset types Sluice creates."""
_JDBC_TABLE_KEYS = ("datasource", "table-name", "create-statements", "delete-statements")
_CASSANDRA_KEYS = {
    "cassandra-table": ("datasource", "keyspace", "table-name", "create-statements"),
    "cassandra-keyspace": ("datasource", "keyspace", "create-statements"),
    "astra-keyspace": ("datasource", "keyspace"),
}
"""The required keys of each Cassandra asset (``delete-statements`` too with deletion-mode:
delete, except ``astra-keyspace``, which is deleted whole)."""


def parse_assets(node: Node, pipeline_file: str) -> list[AssetSpec]:
    """The assets of a pipeline file's ``assets`` list; problems go to ``node``'s report."""
    out: list[AssetSpec] = []
    for index, item in enumerate(node.items("a list of assets")):
        if not item.is_mapping("an asset (a mapping with an asset-type)"):
            continue
        item.check_keys(ASSET_KEYS)
        asset_type = item.string("asset-type", required=True, choices=ASSET_TYPES)
        creation = item.string(
            "creation-mode", default="none", choices=("none", "create-if-not-exists")
        )
        deletion = item.string("deletion-mode", default="none", choices=("none", "delete"))
        name = item.string("name")
        ident = item.string("id") or name or f"asset-{index + 1}"
        config = item.child("config")
        values: dict[str, Any] = {}
        if config.is_mapping("the asset's configuration (a mapping)", optional=True):
            values = {str(k): v for k, v in config.value.items()}
        if asset_type is None:
            continue
        if asset_type == "jdbc-table":
            _check_jdbc_table(config, deletion == "delete")
        elif asset_type in _CASSANDRA_KEYS:
            _check_cassandra(asset_type, config, deletion == "delete")
        elif asset_type == "milvus-collection":
            _check_milvus_collection(config)
        elif asset_type in HTTP_VECTOR_ASSETS:
            _check_vector_asset(asset_type, config)
        elif asset_type not in CREATED:
            item.warn(
                f'asset type "{asset_type}" is not created by Sluice yet: the application '
                "must find it already there",
                "asset-type",
            )
        out.append(
            AssetSpec(
                id=ident,
                name=name,
                asset_type=asset_type,
                creation_mode="create-if-not-exists" if creation != "none" else "none",
                deletion_mode="delete" if deletion == "delete" else "none",
                config=values,
                pipeline_file=pipeline_file,
            )
        )
    return out


def _check_jdbc_table(config: Node, delete: bool) -> None:
    if config.value is None:
        config.error("is required by jdbc-table (datasource, table-name, create-statements)")
        return
    if not isinstance(config.value, dict):
        return
    config.check_keys(_JDBC_TABLE_KEYS)
    config.string("datasource", required=True)
    config.string("table-name", required=True)
    _statements(config, "create-statements", required=True)
    if delete:
        _statements(config, "delete-statements", required=True)
    elif config.has("delete-statements"):
        config.error("is read only with deletion-mode: delete", "delete-statements")


def _check_cassandra(asset_type: str, config: Node, delete: bool) -> None:
    required = _CASSANDRA_KEYS[asset_type]
    if config.value is None:
        config.error(f"is required by {asset_type} ({', '.join(required)})")
        return
    if not isinstance(config.value, dict):
        return
    statements = asset_type != "astra-keyspace"
    config.check_keys(required + (("delete-statements",) if statements else ()))
    for key in required:
        if key.endswith("-statements"):
            _statements(config, key, required=True)
        else:
            config.string(key, required=True)
    if statements and delete:
        _statements(config, "delete-statements", required=True)
    elif statements and config.has("delete-statements"):
        config.error("is read only with deletion-mode: delete", "delete-statements")


def _check_milvus_collection(config: Node) -> None:
    """LangStream's keys: the statements are JSON commands; deletion drops the collection."""
    if config.value is None:
        config.error(
            "is required by milvus-collection (datasource, collection-name, create-statements)"
        )
        return
    if not isinstance(config.value, dict):
        return
    config.check_keys(("datasource", "collection-name", "database-name", "create-statements"))
    config.string("datasource", required=True)
    config.string("collection-name", required=True)
    config.string("database-name")
    _statements(config, "create-statements", required=True)


def _check_vector_asset(asset_type: str, config: Node) -> None:
    keys = HTTP_VECTOR_ASSETS[asset_type]
    if config.value is None:
        config.error(f"is required by {asset_type} ({', '.join(keys)})")
        return
    if not isinstance(config.value, dict):
        return
    config.check_keys(keys)
    config.string("datasource", required=True)
    if asset_type == "solr-collection":
        for item in config.child("create-statements").items("a list of statements"):
            if not isinstance(item.value, dict) or not item.value.get("api"):
                item.error("must be a mapping with api (/api/collections or /schema), method, body")
        if config.get("create-statements") is None:
            config.error("is required (a list of {api, method, body})", "create-statements")
    if asset_type == "astra-collection":
        config.string("collection-name", required=True)


def _statements(config: Node, key: str, *, required: bool) -> None:
    if config.get(key) is None:
        if required:
            config.error("is required (a list of SQL statements)", key)
        return
    for item in config.child(key).items("a list of SQL statements"):
        if not isinstance(item.value, str) or not item.value.strip():
            item.error("must be an SQL statement (a non-blank string)")
