"""LangStream's ``opensearch`` datasource through OpenSearch's REST API (httpx).

The resource's keys: ``host`` (required: a name, or a URL whose scheme and port win), ``port``
(9200), ``https`` (true), ``index-name`` (required), ``username`` and ``password`` (HTTP basic
authentication when ``username`` is given), Sluice's ``request-timeout-seconds`` (30) and
``max-retries`` (3). A host ending in ``amazonaws.com`` (LangStream signed those requests with
AWS SigV4) is refused by name.

``query`` is a ``_search`` body (LangStream's JSON, its ``?`` filled by
:func:`~.interpolate.json_query`), sent to ``POST /<index-name>/_search``::

    {"size": 1, "query": {"knn": {"embeddings": {"vector": ?, "k": 1}}}}

Each hit is a row ``{"id": _id, "document": _source, "score": _score, "index": _index}``.

``vector-db-sink`` reads ``fields`` (``{name, expression}``: the document), ``id`` (an
expression; none or empty: OpenSearch picks an id, so a redelivered record is indexed twice)
and ``bulk-parameters`` (``pipeline``, ``routing``, ``refresh``, ``timeout``,
``wait_for_active_shards``, ``require_alias``: query parameters of the request). A record is
indexed by id (``PUT /<index>/_doc/<id>``: written again, it replaces the document); a record
whose value is null deletes the document of its id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from sluice.expressions import compile_expression
from sluice.record import Record
from workers.builtin.datasources.base import FieldValues, evaluate, required_text
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.http import HttpSettings, JsonHttp, number_key
from workers.builtin.datasources.interpolate import json_query

__all__ = [
    "BULK_PARAMETERS",
    "OpenSearchDataSource",
    "OpenSearchWriter",
    "opensearch_settings",
    "search_rows",
]

BULK_PARAMETERS = (
    "pipeline",
    "routing",
    "refresh",
    "timeout",
    "wait_for_active_shards",
    "require_alias",
)


def flag(where: str, config: Mapping[str, Any], key: str, default: bool) -> bool:
    """A boolean key of a resource: true/false or their texts (``${secrets...}`` gives text)."""
    value = config.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise DataSourceResourceError(f"{where}: {key} must be true or false, got {value!r}")
    return text == "true"


def opensearch_settings(resource: str, config: Mapping[str, Any]) -> tuple[HttpSettings, str]:
    """(how to reach the service, the index name) of the ``opensearch`` resource ``resource``."""
    where = f'datasource "{resource}"'
    host = required_text(where, config, "host")
    index = required_text(where, config, "index-name")
    if host.rstrip("/").endswith("amazonaws.com"):
        raise DataSourceResourceError(
            f"{where}: the host {host} is an AWS OpenSearch service, whose requests are signed "
            "with AWS SigV4: Sluice does not support that yet (basic authentication only)"
        )
    scheme = "https" if flag(where, config, "https", True) else "http"
    port = int(number_key(where, config, "port", 9200))
    if "://" in host:
        split = urlsplit(host)
        scheme, host = split.scheme, split.hostname or ""
        port = split.port or port
    username = str(config.get("username") or "")
    password = str(config.get("password") or "")
    return (
        HttpSettings(
            resource=resource,
            service=f'opensearch index "{index}"',
            base_url=f"{scheme}://{host}:{port}",
            auth=(username, password) if username else None,
            timeout=number_key(where, config, "request-timeout-seconds", 30) or 30,
            retries=int(number_key(where, config, "max-retries", 3)),
            secrets=tuple(s for s in (password,) if s),
        ),
        index,
    )


def search_rows(answer: Any) -> list[dict[str, Any]]:
    """LangStream's rows of a ``_search`` answer (pure)."""
    hits = answer.get("hits", {}).get("hits", []) if isinstance(answer, Mapping) else []
    return [
        {
            "id": hit.get("_id"),
            "document": hit.get("_source"),
            "score": hit.get("_score"),
            "index": hit.get("_index"),
        }
        for hit in hits
    ]


class OpenSearchDataSource:
    """``query`` and ``query-vector-db`` on an OpenSearch index (see the module)."""

    def __init__(self, resource: str, config: Mapping[str, Any]) -> None:
        self.resource = resource
        settings, self.index = opensearch_settings(resource, config)
        self.http = JsonHttp(settings)
        self.path = f"/{quote(self.index, safe='')}"

    async def start(self) -> None:
        await reach(self.http)

    async def close(self) -> None:
        await self.http.close()

    async def fetch(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        body = json_query(self.http.where, query, params)
        _, answer = await self.http.request("POST", f"{self.path}/_search", body)
        return search_rows(answer)

    async def execute(
        self, query: str, params: Sequence[Any], generated_keys: Sequence[str] = ()
    ) -> dict[str, Any]:
        raise DataSourceError(
            f"{self.http.where}: mode execute is not supported on opensearch (use vector-db-sink)"
        )


class OpenSearchWriter:
    """``vector-db-sink`` on an OpenSearch index (see the module)."""

    def __init__(self, resource: str, config: Mapping[str, Any], agent: Mapping[str, Any]) -> None:
        settings, self.index = opensearch_settings(resource, config)
        self.http = JsonHttp(settings)
        self.where = f"vector-db-sink ({self.http.where})"
        self.path = f"/{quote(self.index, safe='')}/_doc"
        self.fields = FieldValues(self.where, agent.get("fields"))
        ident = str(agent.get("id") or "").strip()
        self.id = compile_expression(ident) if ident else None
        given = agent.get("bulk-parameters") or {}
        if not isinstance(given, Mapping):
            raise DataSourceResourceError(f"{self.where}: bulk-parameters must be a mapping")
        unknown = sorted(set(map(str, given)) - set(BULK_PARAMETERS))
        if unknown:
            raise DataSourceResourceError(
                f"{self.where}: unknown bulk-parameters {', '.join(unknown)} (known: "
                f"{', '.join(BULK_PARAMETERS)})"
            )
        self.params = {
            str(key): _parameter(value) for key, value in given.items() if value is not None
        }

    async def start(self) -> None:
        await reach(self.http)

    async def close(self) -> None:
        await self.http.close()

    async def write(self, record: Record) -> None:
        ident = evaluate(self.id, record)
        path = (
            self.path
            if ident is None or ident == ""
            else f"{self.path}/{quote(str(ident), safe='')}"
        )
        if record.value is None:
            if path == self.path:
                raise DataSourceError(f"{self.where}: a null value deletes by id; id gave none")
            await self.http.request("DELETE", path, params=self._delete_params(), allowed=(404,))
            return
        method = "POST" if path == self.path else "PUT"
        await self.http.request(method, path, self.fields.values(record), params=self.params)

    def _delete_params(self) -> dict[str, str]:
        return {k: v for k, v in self.params.items() if k in ("routing", "refresh", "timeout")}


async def reach(http: JsonHttp) -> None:
    """Reach the service once (``GET /``): wrong credentials or no answer stop the worker at
    start."""
    try:
        await http.request("GET", "/")
    except DataSourceError as error:
        raise DataSourceResourceError(str(error)) from None


def _parameter(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
