"""The vector databases reached over HTTP, by their ``service``: the module of each kind.

Each kind gives a :class:`~.base.QueryDataSource` for ``query`` / ``query-vector-db`` (made from
the resource's name and configuration) and a :class:`~.base.VectorWriter` for ``vector-db-sink``
(also given the agent's configuration, whose keys depend on the service).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workers.builtin.datasources.astra_vector import AstraVectorDataSource, AstraVectorWriter
from workers.builtin.datasources.base import QueryDataSource, VectorWriter
from workers.builtin.datasources.opensearch import OpenSearchDataSource, OpenSearchWriter
from workers.builtin.datasources.pinecone import PineconeDataSource, PineconeWriter
from workers.builtin.datasources.solr import SolrDataSource, SolrWriter

__all__ = ["HTTP_QUERY_KINDS", "HTTP_SERVICES", "HTTP_WRITER_KINDS"]

QueryKind = Callable[[str, Mapping[str, Any]], QueryDataSource]
WriterKind = Callable[[str, Mapping[str, Any], Mapping[str, Any]], VectorWriter]

HTTP_QUERY_KINDS: dict[str, QueryKind] = {
    "pinecone": PineconeDataSource,
    "opensearch": OpenSearchDataSource,
    "solr": SolrDataSource,
    "astra-vector-db": AstraVectorDataSource,
}
HTTP_WRITER_KINDS: dict[str, WriterKind] = {
    "pinecone": PineconeWriter,
    "opensearch": OpenSearchWriter,
    "solr": SolrWriter,
    "astra-vector-db": AstraVectorWriter,
}
HTTP_SERVICES = tuple(HTTP_QUERY_KINDS)
