"""LangStream's ``pinecone`` vector database through Pinecone's REST data plane API (httpx).

The resource's keys: ``api-key``, ``environment``, ``project-name`` and ``index-name`` (all
required, as LangStream's schema has them), ``endpoint`` (the index's URL; without it
``https://<index-name>-<project-name>.svc.<environment>.pinecone.io``, the address of a pod
index), ``server-side-timeout-sec`` (10: how long one request may take) and Sluice's
``max-retries`` (3). Every request carries the key in Pinecone's ``Api-Key`` header.

``query`` is LangStream's JSON (its ``?`` filled by :func:`~.interpolate.json_query`)::

    {"vector": ?, "topK": 5, "includeMetadata": true, "filter": {"genre": {"$eq": "docs"}},
     "namespace": "ns", "includeValues": false, "sparseVector": {"indices": [], "values": []}}

sent to ``POST /query`` (``topK`` 1 and ``includeMetadata`` true by default). Each match is a
row: ``id`` and, with ``includeMetadata``, every metadata field as text (LangStream's rows).

``vector-db-sink`` reads ``vector.id``, ``vector.vector`` (numbers or numeric texts),
``vector.namespace`` and ``vector.metadata.<name>`` (expressions) and upserts the vector by id
(``POST /vectors/upsert``): a record written twice leaves one vector. A record whose value is
null deletes the vector of its id (``POST /vectors/delete``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sluice.expressions import Expression, compile_expression
from sluice.record import Record
from workers.builtin.datasources.base import evaluate, required_text
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.http import HttpSettings, JsonHttp, number_key
from workers.builtin.datasources.interpolate import json_query

__all__ = ["PineconeDataSource", "PineconeWriter", "pinecone_settings"]

API_VERSION = "2024-07"
"""The data plane API version asked for (``X-Pinecone-API-Version``)."""


def pinecone_settings(resource: str, config: Mapping[str, Any]) -> HttpSettings:
    """How to reach the index of the ``pinecone`` resource ``resource``."""
    where = f'datasource "{resource}"'
    key = required_text(where, config, "api-key")
    environment = required_text(where, config, "environment")
    project = required_text(where, config, "project-name")
    index = required_text(where, config, "index-name")
    endpoint = str(config.get("endpoint") or "").strip().rstrip("/")
    if not endpoint:
        endpoint = f"https://{index}-{project}.svc.{environment}.pinecone.io"
    elif not endpoint.startswith(("http://", "https://")):
        raise DataSourceResourceError(f"{where}: endpoint must be an http(s) URL, got {endpoint!r}")
    return HttpSettings(
        resource=resource,
        service=f'pinecone index "{index}"',
        base_url=endpoint,
        headers={"Api-Key": key, "X-Pinecone-API-Version": API_VERSION},
        timeout=number_key(where, config, "server-side-timeout-sec", 10) or 10,
        retries=int(number_key(where, config, "max-retries", 3)),
        secrets=(key,),
    )


class PineconeDataSource:
    """``query`` and ``query-vector-db`` on a Pinecone index (see the module)."""

    def __init__(self, resource: str, config: Mapping[str, Any]) -> None:
        self.resource = resource
        self.http = JsonHttp(pinecone_settings(resource, config))

    async def start(self) -> None:
        await start_index(self.http)

    async def close(self) -> None:
        await self.http.close()

    async def fetch(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        parsed = json_query(self.http.where, query, params)
        body = query_request(parsed)
        _, answer = await self.http.request("POST", "/query", body)
        return query_rows(answer, include_metadata=bool(body["includeMetadata"]))

    async def execute(
        self, query: str, params: Sequence[Any], generated_keys: Sequence[str] = ()
    ) -> dict[str, Any]:
        raise DataSourceError(
            f"{self.http.where}: mode execute is not supported on pinecone (use vector-db-sink)"
        )


def query_request(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``POST /query`` for LangStream's query JSON (pure)."""
    body: dict[str, Any] = {
        "topK": int(parsed.get("topK", 1)),
        "includeMetadata": bool(parsed.get("includeMetadata", True)),
        "includeValues": bool(parsed.get("includeValues", False)),
    }
    if parsed.get("vector") is not None:
        body["vector"] = [float(number) for number in parsed["vector"]]
    sparse = parsed.get("sparseVector")
    if isinstance(sparse, Mapping) and sparse.get("indices"):
        body["sparseVector"] = {
            "indices": [int(i) for i in sparse["indices"]],
            "values": [float(v) for v in sparse.get("values") or ()],
        }
    if parsed.get("filter"):
        body["filter"] = parsed["filter"]
    if parsed.get("namespace") is not None:
        body["namespace"] = str(parsed["namespace"])
    return body


def query_rows(answer: Any, *, include_metadata: bool) -> list[dict[str, Any]]:
    """LangStream's rows of a ``POST /query`` answer: ``id`` and the metadata as texts."""
    rows: list[dict[str, Any]] = []
    matches = answer.get("matches") if isinstance(answer, Mapping) else None
    for match in matches or ():
        row: dict[str, Any] = {}
        if include_metadata:
            for name, value in (match.get("metadata") or {}).items():
                row[name] = None if value is None else _text(value)
        row["id"] = match.get("id")
        rows.append(row)
    return rows


class PineconeWriter:
    """``vector-db-sink`` on a Pinecone index (see the module)."""

    def __init__(self, resource: str, config: Mapping[str, Any], agent: Mapping[str, Any]) -> None:
        self.resource = resource
        self.http = JsonHttp(pinecone_settings(resource, config))
        self.where = self.http.where

        def compiled(key: str) -> Expression | None:
            text = str(agent.get(key) or "").strip()
            return compile_expression(text) if text else None

        self.id = compiled("vector.id")
        if self.id is None:
            raise DataSourceResourceError(
                f"vector-db-sink ({self.where}): vector.id is required (vectors are written by id)"
            )
        self.vector = compiled("vector.vector")
        self.namespace = compiled("vector.namespace")
        self.metadata = {
            str(key)[len("vector.metadata.") :]: compile_expression(str(value))
            for key, value in agent.items()
            if str(key).startswith("vector.metadata.") and str(value or "").strip()
        }

    async def start(self) -> None:
        await start_index(self.http)

    async def close(self) -> None:
        await self.http.close()

    async def write(self, record: Record) -> None:
        ident = evaluate(self.id, record)
        if ident is None or ident == "":
            raise DataSourceError(f"{self.where}: vector.id gave no id for the record")
        namespace = evaluate(self.namespace, record)
        scope = {} if namespace is None else {"namespace": str(namespace)}
        if record.value is None:
            await self.http.request("POST", "/vectors/delete", {"ids": [str(ident)], **scope})
            return
        vector: dict[str, Any] = {"id": str(ident), "values": self._values(record)}
        metadata = {
            name: value
            for name, expression in self.metadata.items()
            if (value := evaluate(expression, record)) is not None
        }
        if metadata:
            vector["metadata"] = metadata
        await self.http.request("POST", "/vectors/upsert", {"vectors": [vector], **scope})

    def _values(self, record: Record) -> list[float]:
        values = evaluate(self.vector, record)
        if not isinstance(values, list):
            raise DataSourceError(
                f"{self.where}: vector.vector must give a list of numbers, got "
                f"{type(values).__name__}"
            )
        try:
            if any(isinstance(v, bool) for v in values):
                raise TypeError("a boolean is not a number")
            return [float(v) for v in values]
        except (TypeError, ValueError):
            raise DataSourceError(
                f"{self.where}: vector.vector must give numbers (or numeric texts)"
            ) from None


async def start_index(http: JsonHttp) -> None:
    """Reach the index once (``POST /describe_index_stats``): wrong credentials or an index that
    does not answer stop the worker at start."""
    try:
        await http.request("POST", "/describe_index_stats", {})
    except DataSourceError as error:
        raise DataSourceResourceError(str(error)) from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(float(value))  # Pinecone's numbers are doubles (LangStream: "1.0")
    return json.dumps(value)
