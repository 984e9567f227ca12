"""LangStream's ``milvus`` vector database through pymilvus's asyncio client (gRPC): searches for
``query-vector-db``, writes for ``vector-db-sink`` and the collections of ``milvus-collection``
assets. The resource's keys and the query's JSON: :mod:`~.milvus_config`.

A search (``query-vector-db``) gives one row per hit, nearest first: ``id`` (the primary key's
value), ``distance`` (the metric's value: for ``L2`` smaller is nearer, for ``IP`` / ``COSINE``
larger) and each of ``output-fields``, as LangStream's Milvus client returned them. ``mode:
execute`` is refused: LangStream's milvus datasource ran searches only.

``vector-db-sink`` reads ``collection-name``, ``database-name`` (read and ignored, as
LangStream's client did) and ``fields`` (``name`` and ``expression`` each). At start it reads the
collection's schema for its primary key. Each record's fields become one entity (null values
left out, as Milvus takes no nulls; fields the collection does not have are left out with a
warning, unless it has dynamic fields): upserted by primary key (``write-mode: upsert``), or
deleted by key and inserted (``delete-insert``), so a record written twice leaves one entity. A
record whose value is null deletes the entity of its key.

The client reconnects by itself: while the server is down a call fails its record (the agent's
``errors`` policy decides), and the next one after it is back works. A server that restarted
has its collections released: a search answered so loads the collection and runs again.
Messages name the datasource and the server, never the password or token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import grpc
from pymilvus import AsyncMilvusClient, DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from sluice.net import LOOPBACK
from sluice.record import Record
from workers.builtin.datasources.base import FieldValues, required_text
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.interpolate import json_query
from workers.builtin.datasources.jdbc import DOCKER_HOST
from workers.builtin.datasources.milvus_config import (
    MilvusSettings,
    milvus_settings,
    search_request,
)
from workers.builtin.datasources.milvus_statements import (
    CreateCollection,
    CreateIndex,
    CreateSimpleCollection,
    LoadCollection,
    Statement,
)

__all__ = ["MilvusCollections", "MilvusDataSource", "MilvusWriter"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_FAILURES = (MilvusException, grpc.RpcError, OSError, TimeoutError)


class _Connection:
    """The client of one resource: made at :meth:`open`, every call's failure a
    :class:`DataSourceError` naming the datasource."""

    def __init__(self, resource: str, settings: MilvusSettings) -> None:
        self.resource = resource
        self.settings = settings
        self._client: AsyncMilvusClient | None = None

    @property
    def where(self) -> str:
        return f'datasource "{self.resource}" (milvus {self.settings.shown})'

    @property
    def client(self) -> AsyncMilvusClient:
        if self._client is None:
            raise DataSourceError(f"{self.where} used before start")
        return self._client

    async def open(self) -> None:
        """Connect and list the collections once: :class:`DataSourceResourceError` when the
        server cannot be reached within ``connection-timeout-seconds``."""
        settings = self.settings
        arguments: dict[str, Any] = {"uri": await _this_machine(settings.uri)}
        if settings.token:
            arguments["token"] = settings.token
        elif settings.user:
            arguments["user"] = settings.user
            arguments["password"] = settings.password
        try:
            self._client = AsyncMilvusClient(**arguments, timeout=settings.query_timeout)
            await asyncio.wait_for(
                self._client.list_collections(), settings.connection_timeout or None
            )
        except (*_FAILURES, ValueError) as error:
            await self.close()
            raise DataSourceResourceError(
                f"{self.where}: cannot connect within {settings.connection_timeout:g} s: "
                f"{self.message(error)}"
            ) from None

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.close()
            except _FAILURES as error:
                _log.debug("%s: closing: %s", self.where, self.message(error))

    def message(self, error: BaseException) -> str:
        text = error.message if isinstance(error, MilvusException) else str(error)
        return self.settings.redact(text or type(error).__name__)

    async def call(self, what: str, action: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await action()
        except _FAILURES as error:
            raise DataSourceError(f"{self.where}: {what}: {self.message(error)}") from None


async def _this_machine(uri: str) -> str:
    """``uri`` with Docker's ``host.docker.internal`` as 127.0.0.1 where the name does not
    resolve (LangStream's examples for ``langstream docker run`` use it)."""
    parts = urlsplit(uri)
    if parts.hostname != DOCKER_HOST:
        return uri
    try:
        await asyncio.get_running_loop().getaddrinfo(DOCKER_HOST, None)
    except OSError:
        netloc = parts.netloc.replace(DOCKER_HOST, LOOPBACK)
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def _released(error: MilvusException) -> bool:
    """Whether the server refused a search because the collection is not loaded (after a
    restart, collections come back released)."""
    return "load()" in error.message or "not loaded" in error.message


def _plain(value: Any) -> Any:
    """A value of a hit as JSON data (numpy numbers and bytes of vectors made plain)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return list(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _plain(value.tolist())
    return value


class MilvusDataSource:
    """The searches of ``query-vector-db`` on a ``milvus`` resource."""

    def __init__(self, resource: str, config: Mapping[str, Any]) -> None:
        self.resource = resource
        self.connection = _Connection(resource, milvus_settings(resource, config))
        self._warned: set[tuple[str, ...]] = set()

    async def start(self) -> None:
        await self.connection.open()

    async def close(self) -> None:
        await self.connection.close()

    async def fetch(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        where = self.connection.where
        request = search_request(where, json_query(where, query, params))
        if request.ignored and request.ignored not in self._warned:
            self._warned.add(request.ignored)
            _log.warning(
                "%s: the query's keys %s mean nothing to a Milvus search and are ignored",
                where,
                ", ".join(request.ignored),
            )
        arguments: dict[str, Any] = {
            "collection_name": request.collection,
            "data": [request.vector],
            "limit": request.limit,
            "filter": request.filter,
            "output_fields": list(request.output_fields),
        }
        if request.offset:
            arguments["offset"] = request.offset
        if request.consistency_level is not None:
            arguments["consistency_level"] = request.consistency_level
        client = self.connection.client
        try:
            hits = await client.search(**arguments)
        except MilvusException as error:
            if not _released(error):
                raise DataSourceError(
                    f"{where}: search in {request.collection}: {self.connection.message(error)}"
                ) from None
            await self.connection.call(
                f"loading {request.collection}",
                lambda: client.load_collection(request.collection),
            )
            hits = await self.connection.call(
                f"search in {request.collection}", lambda: client.search(**arguments)
            )
        except _FAILURES as error:
            raise DataSourceError(
                f"{where}: search in {request.collection}: {self.connection.message(error)}"
            ) from None
        rows: list[dict[str, Any]] = []
        for hit in hits[0] if hits else ():
            row: dict[str, Any] = {"id": _plain(hit.id), "distance": float(hit.distance)}
            row.update(_plain(hit.get("entity") or {}))
            rows.append(row)
        return rows

    async def execute(
        self, query: str, params: Sequence[Any], generated_keys: Sequence[str] = ()
    ) -> dict[str, Any]:
        raise DataSourceError(
            f"{self.connection.where}: mode execute is not supported on milvus (LangStream's "
            "milvus datasource runs searches only); vector-db-sink writes entities"
        )


class MilvusWriter:
    """``vector-db-sink`` on a ``milvus`` resource (see the module's documentation)."""

    def __init__(self, resource: str, config: Mapping[str, Any], agent: Mapping[str, Any]) -> None:
        self.connection = _Connection(resource, milvus_settings(resource, config))
        where = f'vector-db-sink (datasource "{resource}")'
        self.collection = required_text(where, agent, "collection-name")
        self.fields = FieldValues(where, agent.get("fields"))
        if not self.fields.fields:
            raise DataSourceResourceError(f"{where}: fields is required (name and expression)")
        self.primary_key = ""
        self.schema_fields: frozenset[str] = frozenset()
        self.dynamic = False
        self._warned = False

    async def start(self) -> None:
        await self.connection.open()
        client = self.connection.client
        try:
            described = await self.connection.call(
                f"reading the collection {self.collection}",
                lambda: client.describe_collection(self.collection),
            )
        except DataSourceError as error:
            await self.connection.close()
            raise DataSourceResourceError(str(error)) from None
        fields = described.get("fields") or []
        keys = [f["name"] for f in fields if f.get("is_primary")]
        if not keys:
            await self.connection.close()
            raise DataSourceResourceError(
                f"{self.connection.where}: the collection {self.collection} has no primary key"
            )
        self.primary_key = keys[0]
        self.schema_fields = frozenset(f["name"] for f in fields)
        self.dynamic = bool(described.get("enable_dynamic_field"))

    async def close(self) -> None:
        await self.connection.close()

    async def write(self, record: Record) -> None:
        entity = {k: v for k, v in self.fields.values(record).items() if v is not None}
        if not self.dynamic:
            unknown = sorted(set(entity) - self.schema_fields)
            if unknown and not self._warned:
                self._warned = True
                _log.warning(
                    "%s: fields %s are not in the collection %s and are not written",
                    self.connection.where,
                    ", ".join(unknown),
                    self.collection,
                )
            entity = {k: v for k, v in entity.items() if k in self.schema_fields}
        client = self.connection.client
        what = f"writing to {self.collection}"
        if record.value is None or self.connection.settings.write_mode == "delete-insert":
            key = entity.get(self.primary_key)
            if key is None:
                raise DataSourceError(
                    f"{self.connection.where}: the record gives no value for the primary key "
                    f"{self.primary_key} of {self.collection}"
                )
            expression = f"{self.primary_key} in [{json.dumps(key, ensure_ascii=False)}]"
            await self.connection.call(
                f"deleting from {self.collection}",
                lambda: client.delete(self.collection, filter=expression),
            )
            if record.value is None:
                return
            await self.connection.call(what, lambda: client.insert(self.collection, [entity]))
            return
        await self.connection.call(what, lambda: client.upsert(self.collection, [entity]))


class MilvusCollections:
    """The collections of a ``milvus`` resource, for ``milvus-collection`` assets.

    pymilvus's synchronous client, in a thread: its asyncio client waits for an index through
    a call Milvus Lite does not implement, and assets are made once, before the workers start.
    """

    def __init__(self, resource: str, config: Mapping[str, Any]) -> None:
        self.connection = _Connection(resource, milvus_settings(resource, config))
        self._client: MilvusClient | None = None

    async def start(self) -> None:
        await self.connection.open()  # reachable, or the reason
        await self.connection.close()
        settings = self.connection.settings
        arguments: dict[str, Any] = {"uri": await _this_machine(settings.uri)}
        if settings.token:
            arguments["token"] = settings.token
        elif settings.user:
            arguments["user"] = settings.user
            arguments["password"] = settings.password
        self._client = await self._call(
            "connecting", lambda: MilvusClient(**arguments, timeout=settings.query_timeout)
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    @property
    def client(self) -> MilvusClient:
        if self._client is None:
            raise DataSourceError(f"{self.connection.where} used before start")
        return self._client

    async def _call(self, what: str, action: Callable[[], _T]) -> _T:
        try:
            return await asyncio.to_thread(action)
        except _FAILURES as error:
            raise DataSourceError(
                f"{self.connection.where}: {what}: {self.connection.message(error)}"
            ) from None

    async def exists(self, collection: str) -> bool:
        client = self.client
        return await self._call(
            f"looking for {collection}", lambda: client.has_collection(collection)
        )

    async def drop(self, collection: str) -> None:
        client = self.client
        await self._call(f"dropping {collection}", lambda: client.drop_collection(collection))

    async def run(self, statement: Statement) -> None:
        client = self.client
        name = statement.collection
        if isinstance(statement, CreateCollection):
            schema = _schema(statement)
            shards = {} if statement.shards is None else {"num_shards": statement.shards}
            await self._call(
                f"creating {name}", lambda: client.create_collection(name, schema=schema, **shards)
            )
        elif isinstance(statement, CreateIndex):
            index = MilvusClient.prepare_index_params()
            index.add_index(
                statement.field_name,
                index_type=statement.index_type,
                metric_type=statement.metric_type,
                index_name=statement.index_name,
                params=dict(statement.params or {}),
            )
            await self._call(f"indexing {name}", lambda: client.create_index(name, index))
        elif isinstance(statement, LoadCollection):
            await self._call(f"loading {name}", lambda: client.load_collection(name))
        else:
            simple: CreateSimpleCollection = statement
            await self._call(
                f"creating {name}",
                lambda: client.create_collection(
                    name,
                    dimension=simple.dimension,
                    primary_field_name=simple.primary_field,
                    vector_field_name=simple.vector_field,
                    metric_type=simple.metric_type,
                    auto_id=simple.auto_id,
                    description=simple.description,
                ),
            )


def _schema(statement: CreateCollection) -> Any:
    schema = MilvusClient.create_schema(
        enable_dynamic_field=statement.dynamic_fields, description=statement.description
    )
    for field in statement.fields:
        options: dict[str, Any] = {}
        if field.primary_key:
            options["is_primary"] = True
            options["auto_id"] = field.auto_id
        if field.partition_key:
            options["is_partition_key"] = True
        if field.max_length is not None:
            options["max_length"] = field.max_length
        if field.dimension is not None:
            options["dim"] = field.dimension
        if field.element_type is not None:
            options["element_type"] = DataType[field.element_type]
        if field.max_capacity is not None:
            options["max_capacity"] = field.max_capacity
        if field.description:
            options["description"] = field.description
        schema.add_field(field.name, DataType[field.data_type], **options)
    return schema
