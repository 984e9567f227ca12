"""LangStream's ``solr`` vector database through Solr's HTTP APIs (httpx).

The resource's keys (LangStream's defaults): ``host`` (``localhost``), ``port`` (8983),
``protocol`` (``http``), ``collection-name`` (``documents``), ``user`` and ``password`` (HTTP
basic authentication when ``user`` is given), Sluice's ``request-timeout-seconds`` (30) and
``max-retries`` (3). The collection is ``<protocol>://<host>:<port>/solr/<collection-name>``.

``query`` is a JSON object of Solr query parameters (its ``?`` filled by
:func:`~.interpolate.json_query`, inside strings too)::

    {"q": "{!knn f=embeddings topK=10}?", "fl": "id,text,score"}

sent as the ``params`` of Solr's JSON Request API (``POST /solr/<collection>/select``, each value
as text, as LangStream's SolrJ query had them, so the vector is never in the URL). A row per
document: its fields as Solr returns them.

``vector-db-sink`` reads ``fields`` (``{name, expression}``: the document; ``id`` is Solr's key,
so a record written again replaces its document) and ``commit-within`` (ms, 1000; 0 or less: a
commit after each write). A record whose value is null deletes the document of its ``id`` field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from sluice.record import Record
from workers.builtin.datasources.base import FieldValues
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.http import HttpSettings, JsonHttp, number_key
from workers.builtin.datasources.interpolate import json_query

__all__ = ["SolrDataSource", "SolrWriter", "solr_settings"]


def solr_settings(resource: str, config: Mapping[str, Any]) -> tuple[HttpSettings, str]:
    """(how to reach Solr, the collection name) of the ``solr`` resource ``resource``."""
    where = f'datasource "{resource}"'
    host = str(config.get("host") or "localhost").strip()
    protocol = str(config.get("protocol") or "http").strip().lower()
    if protocol not in ("http", "https"):
        raise DataSourceResourceError(f"{where}: protocol must be http or https, got {protocol!r}")
    port = int(number_key(where, config, "port", 8983))
    collection = str(config.get("collection-name") or "documents").strip()
    user = str(config.get("user") or "")
    password = str(config.get("password") or "")
    settings = HttpSettings(
        resource=resource,
        service=f'solr collection "{collection}"',
        base_url=f"{protocol}://{host}:{port}",
        auth=(user, password) if user else None,
        timeout=number_key(where, config, "request-timeout-seconds", 30) or 30,
        retries=int(number_key(where, config, "max-retries", 3)),
        secrets=tuple(s for s in (password,) if s),
    )
    return settings, collection


def query_params(parsed: Mapping[str, Any]) -> dict[str, str]:
    """Solr's parameters of LangStream's query object: each value as text (pure)."""
    return {
        str(name): value if isinstance(value, str) else json.dumps(value)
        for name, value in parsed.items()
        if value is not None
    }


class SolrDataSource:
    """``query`` and ``query-vector-db`` on a Solr collection (see the module)."""

    def __init__(self, resource: str, config: Mapping[str, Any]) -> None:
        self.resource = resource
        settings, self.collection = solr_settings(resource, config)
        self.http = JsonHttp(settings)
        self.path = f"/solr/{quote(self.collection, safe='')}"

    async def start(self) -> None:
        await reach(self.http)

    async def close(self) -> None:
        await self.http.close()

    async def fetch(self, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        parsed = json_query(self.http.where, query, params)
        body = {"params": query_params(parsed)}
        _, answer = await self.http.request(
            "POST", f"{self.path}/select", body, params={"wt": "json"}
        )
        docs = answer.get("response", {}).get("docs", []) if isinstance(answer, Mapping) else []
        return [dict(doc) for doc in docs]

    async def execute(
        self, query: str, params: Sequence[Any], generated_keys: Sequence[str] = ()
    ) -> dict[str, Any]:
        raise DataSourceError(
            f"{self.http.where}: mode execute is not supported on solr (use vector-db-sink)"
        )


class SolrWriter:
    """``vector-db-sink`` on a Solr collection (see the module)."""

    def __init__(self, resource: str, config: Mapping[str, Any], agent: Mapping[str, Any]) -> None:
        settings, self.collection = solr_settings(resource, config)
        self.http = JsonHttp(settings)
        self.where = f"vector-db-sink ({self.http.where})"
        self.path = f"/solr/{quote(self.collection, safe='')}/update"
        self.fields = FieldValues(self.where, agent.get("fields"))
        within = commit_within(self.where, agent.get("commit-within"))
        self.params = {"commit": "true"} if within <= 0 else {"commitWithin": str(within)}

    async def start(self) -> None:
        await reach(self.http)

    async def close(self) -> None:
        await self.http.close()

    async def write(self, record: Record) -> None:
        document = self.fields.values(record)
        if record.value is not None:
            await self.http.request("POST", self.path, [document], params=self.params)
            return
        ident = document.get("id")
        if ident is None or ident == "":
            raise DataSourceError(
                f"{self.where}: a null value deletes the document of its id: give a field "
                "named id (it gave none)"
            )
        await self.http.request(
            "POST", self.path, {"delete": {"id": str(ident)}}, params=self.params
        )


def commit_within(where: str, value: Any) -> int:
    """``commit-within`` in ms (1000 when absent); 0 or less asks for a commit per write, as
    LangStream read it."""
    if value is None or value == "":
        return 1000
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise DataSourceResourceError(
            f"{where}: commit-within must be a number of ms, got {value!r}"
        ) from None


async def reach(http: JsonHttp) -> None:
    """Reach Solr once (``GET /solr/admin/info/system``): wrong credentials or no answer stop
    the worker at start."""
    try:
        await http.request("GET", "/solr/admin/info/system", params={"wt": "json"})
    except DataSourceError as error:
        raise DataSourceResourceError(str(error)) from None
