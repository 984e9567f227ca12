"""LangStream's ``astra-vector-db`` datasource through Astra DB's Data API (JSON commands over
httpx; LangStream used the astra-db Java client over the same API).

The resource's keys: ``token`` (sent in the ``Token`` header) and ``endpoint`` (the database's
API endpoint, ``https://<id>-<region>.apps.astra.datastax.com``), both required, Sluice's
``keyspace`` (``default_keyspace``, the client's default namespace), ``request-timeout-seconds``
(30) and ``max-retries`` (3). Commands go to ``POST
<endpoint>/api/json/v1/<keyspace>/<collection>``. The Data API answers errors in the body
(``{"errors": [{"errorCode", "message"}]}``, often with HTTP 200): they fail the record with the
code and message.

``query`` is LangStream's JSON (its ``?`` filled by :func:`~.interpolate.json_query`)::

    {"collection-name": "docs", "vector": ?, "limit": 5, "include-similarity": true,
     "select": ["text"], "filter": {"source": "web"}}

a ``find`` command sorted by ``$vector`` (similarity included by default with a vector). A row
per document: its fields, ``id``, ``similarity`` and ``vector`` when the answer has them.
``mode: execute`` takes LangStream's ``action``: ``findOneAndUpdate`` (the default; ``filter``,
``update``, ``return-document``) giving ``{"count": modified}``, ``deleteOne`` and
``deleteMany`` (``filter``) giving ``{"count": deleted}``, ``insertOne`` (``document``, whose
``id``, ``vector`` and ``data`` are special as in the sink) giving ``{"id": ...}``.

``vector-db-sink`` reads ``collection-name`` and ``fields`` (``{name, expression}``; ``id`` is the
document's ``_id``, ``vector`` its ``$vector``, ``data`` a mapping merged into it). A record is
inserted (``insertOne``); when its id is there (``DOCUMENT_ALREADY_EXISTS``) the document is
replaced (``findOneAndReplace`` by ``_id``), so a record written twice leaves one document. A
record without an id gets a random one (so a redelivery writes it twice), and one whose value is
null deletes the document of its id (``deleteOne``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from sluice.record import Record
from workers.builtin.datasources.base import FieldValues, required_text
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.http import HttpSettings, JsonHttp, number_key
from workers.builtin.datasources.interpolate import json_query

__all__ = ["AstraVectorDataSource", "AstraVectorWriter", "DataApi", "astra_settings"]

DEFAULT_KEYSPACE = "default_keyspace"


def astra_settings(resource: str, config: Mapping[str, Any]) -> tuple[HttpSettings, str]:
    """(how to reach the Data API, the keyspace) of the ``astra-vector-db`` resource."""
    where = f'datasource "{resource}"'
    token = required_text(where, config, "token")
    endpoint = required_text(where, config, "endpoint").rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise DataSourceResourceError(f"{where}: endpoint must be an http(s) URL, got {endpoint!r}")
    keyspace = str(config.get("keyspace") or DEFAULT_KEYSPACE).strip()
    settings = HttpSettings(
        resource=resource,
        service=f'astra data API, keyspace "{keyspace}"',
        base_url=endpoint,
        headers={"Token": token},
        timeout=number_key(where, config, "request-timeout-seconds", 30) or 30,
        retries=int(number_key(where, config, "max-retries", 3)),
        secrets=(token,),
    )
    return settings, keyspace


class CommandError(DataSourceError):
    """The Data API answered a command with ``errors``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class DataApi:
    """JSON commands to one keyspace of the Data API."""

    def __init__(self, resource: str, config: Mapping[str, Any]) -> None:
        settings, self.keyspace = astra_settings(resource, config)
        self.http = JsonHttp(settings)
        self.where = self.http.where
        self.path = f"/api/json/v1/{quote(self.keyspace, safe='')}"

    async def command(self, collection: str | None, name: str, body: Any) -> dict[str, Any]:
        """The answer of command ``name`` (on ``collection``, or the keyspace when None)."""
        path = self.path if collection is None else f"{self.path}/{quote(collection, safe='')}"
        _, answer = await self.http.request("POST", path, {name: body})
        answer = answer if isinstance(answer, dict) else {}
        errors = answer.get("errors") or []
        if errors:
            first = errors[0] if isinstance(errors[0], Mapping) else {}
            code = str(first.get("errorCode") or "")
            text = "; ".join(str(e.get("message") or e) for e in errors if isinstance(e, Mapping))
            target = f' on collection "{collection}"' if collection else ""
            raise CommandError(f"{self.where}: {name}{target} failed: {code} {text}".strip(), code)
        return answer

    async def start(self) -> None:
        """Reach the keyspace once (``findCollections``): a refused token stops the worker."""
        try:
            await self.command(None, "findCollections", {})
        except DataSourceError as error:
            raise DataSourceResourceError(str(error)) from None

    async def close(self) -> None:
        await self.http.close()


def document_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """A Data API document of LangStream's fields: ``id`` -> ``_id``, ``vector`` -> ``$vector``,
    ``data`` merged, nulls left out (pure)."""
    document: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name == "id":
            document["_id"] = str(value)
        elif name == "vector":
            document["$vector"] = [float(v) for v in value]
        elif name == "data" and isinstance(value, Mapping):
            document.update(value)
        else:
            document[name] = value
    return document


def find_command(parsed: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(collection, ``find`` body) of LangStream's query object (pure)."""
    collection = _collection(parsed)
    vector = parsed.pop("vector", None)
    body: dict[str, Any] = {}
    options: dict[str, Any] = {}
    similarity = parsed.pop("include-similarity", None)
    include = vector is not None if similarity is None else str(similarity).lower() == "true"
    if vector is not None:
        body["sort"] = {"$vector": [float(v) for v in vector]}
    if include:
        options["includeSimilarity"] = True
    if parsed.get("filter"):
        body["filter"] = parsed.pop("filter")
    select = parsed.pop("select", None)
    if select is not None:
        if not isinstance(select, list):
            raise ValueError(f"select must be a list of field names, got {select!r}")
        body["projection"] = {str(name): 1 for name in select}
    limit = parsed.pop("limit", None)
    if limit is not None:
        options["limit"] = int(limit)
    if options:
        body["options"] = options
    return collection, body


def row_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """LangStream's row of a found document: its fields, ``id``, ``similarity``, ``vector``."""
    row = {k: v for k, v in document.items() if k not in ("_id", "$vector", "$similarity")}
    row["id"] = document.get("_id")
    if document.get("$similarity") is not None:
        row["similarity"] = document["$similarity"]
    if document.get("$vector") is not None:
        row["vector"] = document["$vector"]
    return row


class AstraVectorDataSource:
    """``query`` and ``query-vector-db`` on Astra DB collections (see the module)."""

    def __init__(self, resource: str, config: Mapping[str, Any]) -> None:
        self.resource = resource
        self.api = DataApi(resource, config)

    async def start(self) -> None:
        await self.api.start()

    async def close(self) -> None:
        await self.api.close()

    async def fetch(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        parsed = json_query(self.api.where, query, params)
        try:
            collection, body = find_command(parsed)
        except ValueError as error:
            raise DataSourceError(f"{self.api.where}: {error}") from None
        answer = await self.api.command(collection, "find", body)
        documents = (answer.get("data") or {}).get("documents") or []
        return [row_of(document) for document in documents]

    async def execute(
        self, query: str, params: Sequence[Any], generated_keys: Sequence[str] = ()
    ) -> dict[str, Any]:
        parsed = json_query(self.api.where, query, params)
        try:
            collection = _collection(parsed)
        except ValueError as error:
            raise DataSourceError(f"{self.api.where}: {error}") from None
        action = str(parsed.pop("action", None) or "findOneAndUpdate")
        where = {"filter": parsed["filter"]} if parsed.get("filter") else {}
        if action == "findOneAndUpdate":
            if not parsed.get("update"):
                raise DataSourceError(f"{self.api.where}: findOneAndUpdate needs an update")
            body: dict[str, Any] = {**where, "update": parsed["update"]}
            if parsed.get("return-document"):
                body["options"] = {"returnDocument": str(parsed["return-document"]).lower()}
            answer = await self.api.command(collection, action, body)
            return {"count": (answer.get("status") or {}).get("modifiedCount", 0)}
        if action in ("deleteOne", "deleteMany"):
            answer = await self.api.command(collection, action, where)
            return {"count": (answer.get("status") or {}).get("deletedCount", 0)}
        if action == "insertOne":
            document = document_of(parsed.get("document") or {})
            document.setdefault("_id", str(uuid.uuid4()))
            answer = await self.api.command(collection, action, {"document": document})
            inserted = (answer.get("status") or {}).get("insertedIds") or [document["_id"]]
            return {"id": inserted[0]}
        raise DataSourceError(
            f"{self.api.where}: unsupported action {action!r} (findOneAndUpdate, deleteOne, "
            "deleteMany, insertOne)"
        )


class AstraVectorWriter:
    """``vector-db-sink`` on an Astra DB collection (see the module)."""

    def __init__(self, resource: str, config: Mapping[str, Any], agent: Mapping[str, Any]) -> None:
        self.api = DataApi(resource, config)
        self.where = f"vector-db-sink ({self.api.where})"
        self.collection = str(agent.get("collection-name") or "").strip()
        if not self.collection:
            raise DataSourceResourceError(
                f"{self.where}: collection-name is required on an astra-vector-db datasource"
            )
        self.fields = FieldValues(self.where, agent.get("fields"))

    async def start(self) -> None:
        await self.api.start()

    async def close(self) -> None:
        await self.api.close()

    async def write(self, record: Record) -> None:
        document = document_of(self.fields.values(record))
        ident = document.setdefault("_id", str(uuid.uuid4()))
        if record.value is None:
            await self.api.command(self.collection, "deleteOne", {"filter": {"_id": ident}})
            return
        try:
            await self.api.command(self.collection, "insertOne", {"document": document})
        except CommandError as error:
            if error.code != "DOCUMENT_ALREADY_EXISTS":
                raise
            replacement = {k: v for k, v in document.items() if k != "_id"}
            await self.api.command(
                self.collection,
                "findOneAndReplace",
                {"filter": {"_id": ident}, "replacement": replacement},
            )


def _collection(parsed: dict[str, Any]) -> str:
    collection = parsed.pop("collection-name", None)
    if not collection:
        raise ValueError("the query names no collection-name")
    return str(collection)
