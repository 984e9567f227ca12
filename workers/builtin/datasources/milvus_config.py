"""LangStream's ``milvus`` vector database read as pymilvus arguments (pure): the resource, the
search queries of ``query-vector-db`` and the statements of ``milvus-collection`` assets.

The resource (``type: vector-database`` or ``datasource``, ``service: milvus``) has LangStream's
keys: ``host`` and ``port`` (19530) with ``user`` (``default``) and ``password``, or Zilliz's
``url`` and ``token`` (``url`` wins when both are given). ``username`` is read when there is no
``user`` (LangStream's query-milvus example wrote it; its runtime ignored it). ``write-mode`` is
``upsert`` (the default) or ``delete-insert`` (a delete by primary key, then an insert: for
services without upsert). Sluice's own keys: ``connection-timeout-seconds`` (30: reaching the
server at start) and ``query-timeout-seconds`` (60: one call). Docker's ``host.docker.internal``
means 127.0.0.1 where it does not resolve (at connection).

A search query is LangStream's JSON, its ``?`` filled from ``fields`` (:mod:`~.interpolate`),
with the keys LangStream's Milvus client builder took: ``collection-name`` (required),
``vectors`` (one vector: a list of numbers; required), ``limit`` (10), ``offset`` (0),
``filter`` (a Milvus boolean expression), ``output-fields`` and ``consistency-level``
(``STRONG``, ``BOUNDED``, ``SESSION``, ``EVENTUALLY``). Other keys, as ``top-k`` in LangStream's
example, meant nothing to that builder and are ignored here too (:attr:`SearchRequest.ignored`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.builtin.datasources.errors import DataSourceError, DataSourceResourceError

__all__ = [
    "CONSISTENCY_LEVELS",
    "MILVUS_EXTRA_HINT",
    "MilvusSettings",
    "SearchRequest",
    "milvus_settings",
    "missing_client",
    "search_request",
]

MILVUS_EXTRA_HINT = "install the milvus extra: pip install 'sluicegate[milvus]'"
DEFAULT_PORT = 19530
WRITE_MODES = ("upsert", "delete-insert")
CONSISTENCY_LEVELS = {
    "STRONG": "Strong",
    "BOUNDED": "Bounded",
    "SESSION": "Session",
    "EVENTUALLY": "Eventually",
}
_SEARCH_KEYS = (
    "collection-name",
    "vectors",
    "limit",
    "offset",
    "filter",
    "output-fields",
    "consistency-level",
)


@dataclass(frozen=True)
class MilvusSettings:
    """How to reach the server of a ``milvus`` resource."""

    uri: str
    """``http://host:port`` or the resource's ``url``."""
    user: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    write_mode: str = "upsert"
    connection_timeout: float = 30
    query_timeout: float = 60

    @property
    def shown(self) -> str:
        """The server as messages name it (no credentials)."""
        return self.uri

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.token) if s)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "****")
        return text


def missing_client(resource: str, error: ImportError) -> DataSourceResourceError:
    """The error of an agent on a ``milvus`` resource in a worker without pymilvus."""
    hint = f"the milvus service needs pymilvus ({MILVUS_EXTRA_HINT})"
    return DataSourceResourceError(f'datasource "{resource}": {hint}: {error}')


def milvus_settings(resource: str, config: Mapping[str, Any]) -> MilvusSettings:
    """The settings of the ``milvus`` resource ``resource``; :class:`DataSourceResourceError`
    naming the key when one is wrong."""
    where = f'datasource "{resource}"'
    url = _text(config.get("url"))
    if url:
        if not url.startswith(("http://", "https://", "tcp://", "unix:")):
            url = "http://" + url
        uri = url
    else:
        host = _text(config.get("host"))
        if not host:
            raise DataSourceResourceError(f"{where}: host (or url) is required")
        port = _number(where, "port", config.get("port"), DEFAULT_PORT)
        if not 0 < port < 65536 or port != int(port):
            raise DataSourceResourceError(f"{where}: port must be a port number, got {port:g}")
        shown_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        uri = f"http://{shown_host}:{int(port)}"
    write_mode = _text(config.get("write-mode")) or "upsert"
    if write_mode not in WRITE_MODES:
        raise DataSourceResourceError(
            f"{where}: write-mode must be upsert or delete-insert, got {write_mode!r}"
        )
    user = _text(config.get("user")) or _text(config.get("username"))
    password = _text(config.get("password"))
    return MilvusSettings(
        uri=uri,
        # LangStream's default user "default" goes with no password: no credentials then.
        user=user if password else "",
        password=password,
        token=_text(config.get("token")) if url else "",
        write_mode=write_mode,
        connection_timeout=_number(where, "connection-timeout-seconds", None, 30, config),
        query_timeout=_number(where, "query-timeout-seconds", None, 60, config),
    )


@dataclass(frozen=True)
class SearchRequest:
    """One search, as the query's JSON asks it."""

    collection: str
    vector: list[float]
    limit: int = 10
    offset: int = 0
    filter: str = ""
    output_fields: tuple[str, ...] = ()
    consistency_level: str | None = None
    ignored: tuple[str, ...] = ()
    """Keys of the query that mean nothing to a Milvus search (LangStream ignored them too)."""


def search_request(where: str, query: Mapping[str, Any]) -> SearchRequest:
    """The search the JSON query ``query`` (its ``?`` filled) asks for; :class:`DataSourceError`
    naming the key when one is wrong."""
    collection = query.get("collection-name")
    if not isinstance(collection, str) or not collection:
        raise DataSourceError(f"{where}: the query needs a collection-name")
    vectors = query.get("vectors")
    if not isinstance(vectors, list) or not vectors or not all(_is_number(n) for n in vectors):
        raise DataSourceError(
            f"{where}: the query's vectors must be a non-empty list of numbers, got "
            f"{json.dumps(vectors)[:100]}"
        )
    outputs = query.get("output-fields") or []
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        raise DataSourceError(f"{where}: the query's output-fields must be a list of names")
    filter_text = query.get("filter") or ""
    if not isinstance(filter_text, str):
        raise DataSourceError(f"{where}: the query's filter must be a Milvus expression (text)")
    level = query.get("consistency-level")
    consistency = None
    if level is not None:
        consistency = CONSISTENCY_LEVELS.get(str(level).upper())
        if consistency is None:
            raise DataSourceError(
                f"{where}: consistency-level must be one of {', '.join(CONSISTENCY_LEVELS)}, "
                f"got {level!r}"
            )
    return SearchRequest(
        collection=collection,
        vector=[float(n) for n in vectors],
        limit=_count(where, "limit", query.get("limit"), 10, minimum=1),
        offset=_count(where, "offset", query.get("offset"), 0, minimum=0),
        filter=filter_text,
        output_fields=tuple(outputs),
        consistency_level=consistency,
        ignored=tuple(sorted(k for k in query if k not in _SEARCH_KEYS)),
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(where: str, key: str, value: Any, default: int, *, minimum: int) -> int:
    if value is None:
        return default
    if not _is_number(value) or value != int(value) or value < minimum:
        raise DataSourceError(f"{where}: the query's {key} must be a whole number >= {minimum}")
    return int(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _number(
    where: str,
    key: str,
    value: Any,
    default: float,
    config: Mapping[str, Any] | None = None,
) -> float:
    if config is not None:
        value = config.get(key)
    if value is None or _text(value) == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or number < 0:
        raise DataSourceResourceError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return number
