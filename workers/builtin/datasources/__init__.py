"""The datasources of LangStream's ``query``, ``query-vector-db`` and ``vector-db-sink`` agents.

An agent names a resource of ``configuration.yaml`` with ``datasource``;
:func:`open_query_datasource` (:func:`open_datasource` for ``jdbc`` only) finds it, checks its
type and service, and returns the datasource (started by the agent). Sluice runs the ``jdbc``
service on PostgreSQL (:mod:`~.jdbc` maps LangStream's keys,
:mod:`~.postgres` holds the pool), and the vector databases reached over HTTP listed in
:mod:`~.kinds` (each a module behind :mod:`~.base`'s seam), and ``cassandra`` / ``astra``
over CQL (:mod:`~.cassandra`, :mod:`~.cassandra_sink`), ``milvus`` over gRPC
(:mod:`~.milvus`); other services are refused by name.
psycopg is imported only here, so workers without the ``db`` extra run every other agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.builtin.datasources.base import QueryDataSource, VectorWriter
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.jdbc import JdbcSettings, jdbc_settings
from workers.builtin.datasources.kinds import HTTP_QUERY_KINDS, HTTP_WRITER_KINDS
from workers.builtin.datasources.milvus_config import missing_client
from workers.builtin.datasources.postgres import PostgresDataSource

__all__ = [
    "CQL_SERVICES",
    "DATASOURCE",
    "MILVUS",
    "VECTOR_DATABASE",
    "DataSourceError",
    "DataSourceResourceError",
    "JdbcSettings",
    "PostgresDataSource",
    "QueryDataSource",
    "VectorWriter",
    "datasource_resource",
    "jdbc_settings",
    "open_datasource",
    "open_query_datasource",
    "open_vector_writer",
]

DATASOURCE = "datasource"
CQL_SERVICES = ("cassandra", "astra")
"""The services of :mod:`~.cassandra` (the driver is imported when one is used)."""
MILVUS = "milvus"
"""The service of :mod:`~.milvus` (pymilvus is imported when one is used)."""
VECTOR_DATABASE = "vector-database"


def datasource_resource(
    agent_type: str, config: Mapping[str, Any], accepted: tuple[str, ...]
) -> tuple[str, Mapping[str, Any]]:
    """(name, configuration) of the resource the agent's ``datasource`` names.

    ``accepted``: the resource types the agent takes (``query``: datasource only).
    """
    name = str(config.get("datasource") or "")
    resources: Mapping[str, Any] = config.get("resources") or {}
    types: Mapping[str, str] = config.get("resource-types") or {}
    if name not in resources:
        known = ", ".join(sorted(map(str, resources))) or "none"
        raise DataSourceResourceError(
            f'{agent_type}: datasource "{name}" is not a resource of the application '
            f"(resources: {known})"
        )
    kind = types.get(name)
    if kind is not None and kind not in accepted:
        raise DataSourceResourceError(
            f'{agent_type}: resource "{name}" is a {kind}, not a {" or ".join(accepted)}'
        )
    resource = resources[name]
    if not isinstance(resource, Mapping):
        raise DataSourceResourceError(f'{agent_type}: resource "{name}" has no configuration')
    return name, resource


def open_query_datasource(
    agent_type: str, config: Mapping[str, Any], accepted: tuple[str, ...] = (DATASOURCE,)
) -> QueryDataSource:
    """The datasource of ``query`` / ``query-vector-db``, of any kind, not started yet."""
    name, resource = datasource_resource(agent_type, config, accepted)
    service = str(resource.get("service") or "")
    if service in CQL_SERVICES:
        from workers.builtin.datasources.cassandra import CassandraDataSource, cassandra_settings

        return CassandraDataSource(name, cassandra_settings(name, resource))
    if service == MILVUS:
        try:
            from workers.builtin.datasources.milvus import MilvusDataSource
        except ImportError as error:
            raise missing_client(name, error) from None
        return MilvusDataSource(name, resource)
    kind = HTTP_QUERY_KINDS.get(service)
    if kind is not None:
        return kind(name, resource)
    return open_datasource(agent_type, config, accepted)


def open_datasource(
    agent_type: str, config: Mapping[str, Any], accepted: tuple[str, ...] = (DATASOURCE,)
) -> PostgresDataSource:
    """The ``jdbc`` datasource the agent's ``datasource`` names, not started yet."""
    name, resource = datasource_resource(agent_type, config, accepted)
    service = str(resource.get("service") or "")
    if service != "jdbc":
        raise DataSourceResourceError(
            f'{agent_type}: datasource "{name}" has service {service or "(none)"!r}, which '
            "Sluice does not support yet: jdbc (PostgreSQL) is supported"
        )
    return PostgresDataSource(name, jdbc_settings(name, resource))


def open_vector_writer(agent_type: str, config: Mapping[str, Any]) -> VectorWriter | None:
    """The writer of ``vector-db-sink`` on a vector database reached over HTTP, not started
    yet; None for a ``jdbc`` datasource (the sink writes table rows itself)."""
    name, resource = datasource_resource(agent_type, config, (DATASOURCE, VECTOR_DATABASE))
    service = str(resource.get("service") or "")
    if service in CQL_SERVICES:
        from workers.builtin.datasources.cassandra_sink import CassandraWriter

        return CassandraWriter(name, resource, config)
    if service == MILVUS:
        try:
            from workers.builtin.datasources.milvus import MilvusWriter
        except ImportError as error:
            raise missing_client(name, error) from None
        return MilvusWriter(name, resource, config)
    kind = HTTP_WRITER_KINDS.get(service)
    return None if kind is None else kind(name, resource, config)
