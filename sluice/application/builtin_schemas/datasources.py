"""Configuration of the datasource agents: ``query``, ``query-vector-db`` and ``vector-db-sink``
(LangStream's keys and defaults).

``query`` and ``query-vector-db`` share their keys. Besides the key table, their check compiles
each of ``fields`` (an expression per ``?`` of the query) with LangStream's rule on what a field
reads: without ``loop-over`` one of ``value``, ``key``, ``destinationTopic``, ``messageKey``,
``topicName``, ``eventTime`` or an expression containing ``value.``, ``key.``, ``properties.`` or
``fn:now``; with ``loop-over`` an expression containing ``record.`` or ``fn:now`` (each element
is ``record``). ``output-field`` must be a name of the result field grammar.

``vector-db-sink``'s keys depend on the datasource's service; the table lists those of ``jdbc``
(``table-name``, ``fields`` with ``name``, ``expression``, ``primary-key``), which the agent
requires when it starts, once it knows the service, and Sluice's ``batch-size`` (100 rows per
transaction) and ``flush-interval`` (100 ms: how long a partial batch waits for more rows).
Pinecone's ``vector.metadata.<name>`` keys (one per metadata field, LangStream's) are a key
family (:data:`PREFIXED`): known whatever the name, each value an expression that must compile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.application.builtin_keys import (
    COMPOSABLE,
    TOOLKIT,
    Check,
    Key,
    Problem,
    field_name_problem,
)
from sluice.expressions import ExpressionSyntaxError, compile_expression

_QUERY: tuple[Key, ...] = (
    *TOOLKIT,
    Key("datasource", "string", required=True),
    Key("query", "string", required=True),
    Key("fields", "texts", default=()),
    Key("output-field", "string", required=True),
    Key("only-first", "boolean", default=False),
    Key("loop-over", "expression"),
    Key("mode", "string", default="query", choices=("query", "execute")),
    Key("generated-keys", "names", default=()),
)

SINK_FIELD: tuple[Key, ...] = (
    Key("name", "string", required=True),
    Key("expression", "expression", required=True),
    Key("primary-key", "boolean", default=False),
)
"""One ``fields[]`` entry of ``vector-db-sink`` on a jdbc datasource."""

SCHEMAS: dict[str, tuple[Key, ...]] = {
    "query": _QUERY,
    "query-vector-db": _QUERY,
    "vector-db-sink": (
        COMPOSABLE,
        Key("datasource", "string", required=True),
        Key("table-name", "string"),
        Key("fields", "objects", items=SINK_FIELD, default=()),
        # cassandra / astra: the table's keyspace and the Kafka sink's column=field mapping
        Key("keyspace", "string"),
        Key("table", "string"),
        Key("mapping", "string"),
        # milvus: the collection written (database-name read and ignored, as LangStream did)
        Key("collection-name", "string"),
        Key("database-name", "string"),
        # pinecone: the vector's id, values and namespace (and vector.metadata.<name>: PREFIXED)
        Key("vector.id", "string"),
        Key("vector.vector", "string"),
        Key("vector.namespace", "string"),
        # opensearch: the document's id and the request's parameters; solr: commitWithin (ms)
        Key("id", "string"),
        Key("bulk-parameters", "mapping"),
        Key("commit-within", "integer", default=1000),
        # Sluice's batching of jdbc writes (these defaults) and LangStream's of opensearch
        # (its writer reads them with LangStream's defaults, 10 and 1000 ms).
        Key("batch-size", "integer", default=100, minimum=1),
        Key("flush-interval", "integer", default=100, minimum=0),
    ),
}

_RECORD_WHOLE = ("value", "key", "destinationTopic", "messageKey", "topicName", "eventTime")
_RECORD_PARTS = ("value.", "key.", "properties.", "fn:now")
_ELEMENT_PARTS = ("record.", "fn:now")


def _query(config: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    looping = config.get("loop-over") is not None
    for index, field in enumerate(config.get("fields") or ()):
        text = str(field).strip()
        try:
            compile_expression(text)
        except ExpressionSyntaxError as error:
            message = f"{error.reason} at column {error.column} of the expression {text!r}"
            out.append((("fields", index), message, True))
            continue
        if looping:
            valid = any(part in text for part in _ELEMENT_PARTS)
            expected = "with loop-over, a field reads the element: record.<name> (or fn:now)"
        else:
            valid = text in _RECORD_WHOLE or any(part in text for part in _RECORD_PARTS)
            expected = (
                "a field reads the record: value, key, value.<name>, key.<name>, "
                "properties.<name> (or fn:now)"
            )
        if not valid:
            out.append((("fields", index), f"invalid field {text!r}: {expected}", True))
    problem = field_name_problem(str(config.get("output-field", "")))
    if problem is not None:
        out.append((("output-field",), problem, True))
    if config.get("generated-keys") and str(config.get("mode", "query")) != "execute":
        out.append((("generated-keys",), "is read only with mode: execute", False))
    return out


METADATA = "vector.metadata."
"""The prefix of pinecone's metadata keys: ``vector.metadata.<name>: <expression>``."""

PREFIXED: dict[str, tuple[str, ...]] = {"vector-db-sink": (METADATA,)}
"""Key families whose names vary: ``vector-db-sink``'s ``vector.metadata.<name>`` (read on a
pinecone datasource; :mod:`sluice.application.datasources` warns on other services)."""


def _sink(config: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for name, value in config.items():
        if not str(name).startswith(METADATA):
            continue
        if not isinstance(value, str):
            out.append(((str(name),), "must be an expression (text)", True))
            continue
        try:
            compile_expression(value)
        except ExpressionSyntaxError as error:
            message = f"{error.reason} at column {error.column} of the expression {value!r}"
            out.append(((str(name),), message, True))
    return out


CHECKS: dict[str, Check] = {"query": _query, "query-vector-db": _query, "vector-db-sink": _sink}
"""Checks of the whole configuration, after its keys are checked."""
