"""LangStream's ``opensearch`` datasource through OpenSearch's REST API (httpx).

The resource's keys: ``host`` (required: a name, or a URL whose scheme and port win), ``port``
(9200), ``https`` (true), ``index-name`` (required), ``username`` and ``password`` (HTTP basic
authentication when ``username`` is given), Sluice's ``request-timeout-seconds`` (30) and
``max-retries`` (3), and Sluice's ``endpoint-override`` (a URL every request goes to instead,
e.g. a local server in tests, the requests still signed as for ``host``).

A host ending in ``amazonaws.com`` is OpenSearch on AWS, as LangStream read it: requests go to
``https://<host>`` (``port`` and ``https`` not read) signed with AWS Signature Version 4
(httpx-auth), ``username`` the access key, ``password`` the secret key and ``region`` the
region (all three required). The signing service is ``aoss`` (OpenSearch Serverless, the one
LangStream signed for), or ``es`` for a managed domain's host (``*.es.amazonaws.com``;
LangStream signed those for ``aoss`` too). At start such a host is reached with
``GET /<index-name>`` (a missing index is fine) rather than ``GET /``.

``query`` is a ``_search`` body (LangStream's JSON, its ``?`` filled by
:func:`~.interpolate.json_query`), sent to ``POST /<index-name>/_search``::

    {"size": 1, "query": {"knn": {"embeddings": {"vector": ?, "k": 1}}}}

Each hit is a row ``{"id": _id, "document": _source, "score": _score, "index": _index}``.

``vector-db-sink`` reads ``fields`` (``{name, expression}``: the document), ``id`` (an
expression; none or empty: OpenSearch picks an id, so a redelivered record is indexed twice),
``bulk-parameters`` (``pipeline``, ``routing``, ``refresh`` (``true``, ``false`` or
``wait_for``), ``timeout``, ``wait_for_active_shards``, ``require_alias``: query parameters of
the request), ``batch-size`` (10) and ``flush-interval`` (1000 ms), LangStream's keys and
defaults. As LangStream's writer did, documents go in batches through the bulk API
(``POST /<index>/_bulk``, one NDJSON line of action and one of document each): a batch leaves
with ``batch-size`` documents, or ``flush-interval`` milliseconds after its first one arrived
(0: at once, with what waits), one request at a time, in the order the records came, so the
last write of an id is the one kept. A record is indexed by id (an ``index`` action: written
again after a redelivery, it replaces the document); a record whose value is null deletes the
document of its id (a ``delete`` action; a missing document is no error). The worker lets two
batches into the agent at once (``records_in_flight``) and commits offsets in input order.

An item that fails in the bulk answer (``mapper_parsing_exception``...) fails its record only,
with the item's error type and reason, and that record's ``errors`` policy decides; the other
records of the batch are written. A request that fails as a whole (the service unreachable
after the retries, refused credentials) fails every record of the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from sluice.expressions import compile_expression
from sluice.record import Record
from workers.builtin.batching import Batcher
from workers.builtin.datasources.base import FieldValues, evaluate, required_text
from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError
from workers.builtin.datasources.http import HttpSettings, JsonHttp, number_key
from workers.builtin.datasources.interpolate import json_query

__all__ = [
    "BULK_PARAMETERS",
    "OpenSearchDataSource",
    "OpenSearchWriter",
    "Operation",
    "bulk_errors",
    "opensearch_settings",
    "search_rows",
]

BATCH_SIZE = 10
"""LangStream's ``batch-size`` of the opensearch writer: documents per ``_bulk`` request."""
FLUSH_INTERVAL = 1000
"""LangStream's ``flush-interval`` (ms): how long a partial batch waits for more documents."""
MAX_RECORDS_IN_FLIGHT = 800
"""At most this many records in the sink at once, whatever ``batch-size`` (the executor holds
at most 1,000 unfinished records, see ``table_sink``)."""
REFRESH = ("true", "false", "wait_for")
"""The values of ``bulk-parameters.refresh``."""

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
    username = str(config.get("username") or "")
    password = str(config.get("password") or "")
    override = str(config.get("endpoint-override") or "").strip().rstrip("/")
    aws = aws_service(host)
    auth: tuple[str, str] | httpx.Auth | None
    if aws is not None:
        # LangStream's AwsSdk2Transport: https://<host> (port and https not read), signed.
        base_url = "https://" + host.split("://", 1)[-1].rstrip("/")
        auth = aws_signature(where, config, aws, username, password)
    else:
        scheme = "https" if flag(where, config, "https", True) else "http"
        port = int(number_key(where, config, "port", 9200))
        if "://" in host:
            split = urlsplit(host)
            scheme, host = split.scheme, split.hostname or ""
            port = split.port or port
        base_url = f"{scheme}://{host}:{port}"
        auth = (username, password) if username else None
    return (
        HttpSettings(
            resource=resource,
            service=f'opensearch index "{index}"',
            base_url=override or base_url,
            auth=auth,
            timeout=number_key(where, config, "request-timeout-seconds", 30) or 30,
            retries=int(number_key(where, config, "max-retries", 3)),
            secrets=tuple(s for s in (password,) if s),
        ),
        index,
    )


def aws_service(host: str) -> str | None:
    """The AWS service whose SigV4 signs requests to ``host`` (pure): None when the host is not
    on AWS; ``es`` for a managed domain (``*.es.amazonaws.com``); ``aoss`` (OpenSearch
    Serverless, the one LangStream signed for) for any other ``amazonaws.com`` host."""
    name = host.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    if not name.endswith("amazonaws.com"):
        return None
    return "es" if name.endswith(".es.amazonaws.com") else "aoss"


def aws_signature(
    where: str, config: Mapping[str, Any], service: str, access_key: str, secret_key: str
) -> httpx.Auth:
    """The SigV4 signer of an AWS host: ``username`` is the access key, ``password`` the secret
    key, ``region`` the region (all required), as LangStream read them."""
    region = required_text(where, config, "region")
    if not access_key or not secret_key:
        raise DataSourceResourceError(
            f"{where}: an AWS OpenSearch host needs username (the access key) and password "
            "(the secret key) to sign its requests"
        )
    try:
        from httpx_auth import AWS4Auth
    except ImportError:
        raise DataSourceResourceError(
            f"{where}: signing requests to AWS needs httpx-auth (pip install 'sluicegate[ai]')"
        ) from None
    signer: httpx.Auth = AWS4Auth(access_key, secret_key, region, service)
    return signer


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
        await reach(self.http, self.index)

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
    """``vector-db-sink`` on an OpenSearch index, through ``_bulk`` (see the module)."""

    def __init__(self, resource: str, config: Mapping[str, Any], agent: Mapping[str, Any]) -> None:
        settings, self.index = opensearch_settings(resource, config)
        self.http = JsonHttp(settings)
        self.where = f"vector-db-sink ({self.http.where})"
        self.path = f"/{quote(self.index, safe='')}/_bulk"
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
        refresh = self.params.get("refresh")
        if refresh is not None and refresh not in REFRESH:
            raise DataSourceResourceError(
                f"{self.where}: bulk-parameters refresh must be one of {', '.join(REFRESH)}, "
                f"got {refresh!r}"
            )
        self.batch_size = _whole(self.where, agent, "batch-size", BATCH_SIZE, 1)
        interval = _whole(self.where, agent, "flush-interval", FLUSH_INTERVAL, 0)
        # One request at a time, in the order the records arrived: the last write of an id wins.
        self.batcher: Batcher[Operation, DataSourceError | None] = Batcher(
            self._bulk, size=self.batch_size, interval=interval / 1000, concurrency=1
        )

    @property
    def records_in_flight(self) -> int:
        """Two batches: one being written while the next one fills."""
        return min(2 * self.batch_size, MAX_RECORDS_IN_FLIGHT)

    async def start(self) -> None:
        await reach(self.http, self.index)

    async def close(self) -> None:
        await self.batcher.close()
        await self.http.close()

    async def write(self, record: Record) -> None:
        """Index (or delete) ``record``'s document with its batch; :class:`DataSourceError` when
        the request or its item fails."""
        ident = evaluate(self.id, record)
        key = None if ident is None or ident == "" else str(ident)
        if record.value is None:
            if key is None:
                raise DataSourceError(f"{self.where}: a null value deletes by id; id gave none")
            operation = Operation(key, None)
        else:
            operation = Operation(key, self.fields.values(record))
        [error] = await self.batcher.submit([operation])
        if error is not None:
            raise error

    async def _bulk(self, operations: list[Operation]) -> list[DataSourceError | None]:
        """One ``_bulk`` request for ``operations``: an error per failed item, None for the
        others (a request that fails as a whole raises, failing every record of the batch)."""
        lines: list[Any] = []
        for operation in operations:
            target = {"_index": self.index}
            if operation.id is not None:
                target["_id"] = operation.id
            if operation.document is None:
                lines.append({"delete": target})
            else:
                lines.extend(({"index": target}, operation.document))
        _, answer = await self.http.request("POST", self.path, params=self.params, ndjson=lines)
        return bulk_errors(self.where, operations, answer)


@dataclass(frozen=True)
class Operation:
    """One record's item of a ``_bulk`` request: its document id (None: OpenSearch picks one)
    and its document (None: delete the document of ``id``)."""

    id: str | None
    document: dict[str, Any] | None


def bulk_errors(
    where: str, operations: Sequence[Operation], answer: Any
) -> list[DataSourceError | None]:
    """The error of each operation from a ``_bulk`` answer (pure): its item's ``error`` (type
    and reason) or None; a delete of a missing document (404, ``not_found``) is no error."""
    items = answer.get("items") if isinstance(answer, Mapping) else None
    if not isinstance(items, list) or len(items) != len(operations):
        raise DataSourceError(
            f"{where}: _bulk answered {len(items) if isinstance(items, list) else 'no'} items "
            f"for {len(operations)} operations"
        )
    errors: list[DataSourceError | None] = []
    for operation, item in zip(operations, items, strict=True):
        action, result = (
            next(iter(item.items())) if isinstance(item, Mapping) and item else ("?", {})
        )
        error = result.get("error") if isinstance(result, Mapping) else f"no result: {result!r}"
        if error is None:
            errors.append(None)
            continue
        if isinstance(error, Mapping):
            error = f"{error.get('type')} - {error.get('reason')}"
        ident = result.get("_id", operation.id) if isinstance(result, Mapping) else operation.id
        errors.append(DataSourceError(f"{where}: {action} of document {ident} failed: {error}"))
    return errors


async def reach(http: JsonHttp, index: str) -> None:
    """Reach the service once: wrong credentials or no answer stop the worker at start.
    ``GET /`` (the cluster's information), or on AWS ``GET /<index>`` (a missing index is
    fine), since OpenSearch Serverless does not serve every cluster API."""
    try:
        if http.settings.auth is None or isinstance(http.settings.auth, tuple):
            await http.request("GET", "/")
        else:
            await http.request("GET", f"/{quote(index, safe='')}", allowed=(404,))
    except DataSourceError as error:
        raise DataSourceResourceError(str(error)) from None


def _whole(where: str, agent: Mapping[str, Any], key: str, default: int, least: int) -> int:
    value = agent.get(key)
    if value is None or value == "":
        return default
    try:
        number = int(str(value))
    except ValueError:
        number = least - 1
    if isinstance(value, bool) or number < least:
        raise DataSourceResourceError(f"{where}: {key} must be a whole number >= {least}")
    return number


def _parameter(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
